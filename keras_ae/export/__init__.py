"""Exporting a trained run for TF Serving (SavedModel) and phones (TFLite).

    exporter.py      export_run: a run → one checked, published version folder
    checks.py        each file run as its consumer runs it, compared with Keras
    saved_model.py   the SavedModel and its signatures (signatures.py)
    tflite_files.py  the TFLite files: converted, checked; int8's calibration
    tflite.py        TFLite conversion and the LiteRT interpreter
    versions.py      TF Serving's numbered version folders, published atomically

Example:

    config = keras_ae.config.ExportConfig(export_base="exports", quantize=("float32", "int8"))
    report = keras_ae.export.export_run("runs/conv-fashion_mnist", config)
"""

from keras_ae.export.checks import FLOAT_TOLERANCE, ExportError
from keras_ae.export.exporter import REPORT_FILE, export_run, summarize, target_dir
from keras_ae.export.tflite_files import ENDPOINTS, TFLITE_DIR

__all__ = ["ENDPOINTS", "ExportError", "FLOAT_TOLERANCE", "REPORT_FILE", "TFLITE_DIR",
           "export_run", "summarize", "target_dir"]
