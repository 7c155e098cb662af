"""The exporter: a trained run → one checked, published TF Serving version.

`export_run(model_dir, config)` reads the run's `model.keras` and writes one
TF Serving version folder:

    export_base/model_name/version/
        saved_model.pb, variables/, ...      SavedModel, signatures serving_default,
                                             encode, decode (`signatures`)
        tflite/reconstruct_float32.tflite    one file per endpoint (reconstruct,
        tflite/encode_int8.tflite ...        encode, decode) and flavour
        export_report.json                   sizes, signatures, checks

Every file is checked the way its consumer uses it before the version is
published (`checks`); a file that fails publishes nothing.

Example:

    config = keras_ae.config.ExportConfig(export_base="exports", quantize=("float32", "int8"))
    report = keras_ae.export.export_run("runs/conv-fashion_mnist", config)
"""

import dataclasses
import importlib.metadata
import os
import shutil
import tempfile

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from keras_ae import anomaly
from keras_ae import data as data_lib
from keras_ae import files
from keras_ae import model_dir as model_dir_lib
from keras_ae import models
from keras_ae.export import checks
from keras_ae.export.checks import FLOAT_TOLERANCE, IMAGE_BUDGET, ExportError
from keras_ae.export import saved_model
from keras_ae.export import signatures
from keras_ae.export import tflite_files
from keras_ae.export import versions

REPORT_FILE = "export_report.json"
def target_dir(model_dir, config):
    """The version folder `config` asks for; raises ExportError if it can't be written.

    Cheap: `train.py` calls it before training, so a bad destination fails
    before hours of work rather than after.
    """
    name = config.model_name or os.path.basename(os.path.abspath(model_dir))
    try:
        return versions.target(config.export_base, name, config.version, config.overwrite)
    except versions.VersionError as e:
        raise ExportError(str(e)) from e


def export_run(model_dir, config, data=None):
    """Exports, checks and publishes the trained run in `model_dir`.

    Args:
        model_dir: a `train.py` run: `config.json` and `model.keras`.
        config: an `ExportConfig`.
        data: the run's `ImageData`, if already loaded; else loaded as the run
            did (local copy first).

    Returns:
        The report also written to `export_report.json` in the version folder.

    Raises:
        ExportError: no trained model in `model_dir`, a version that exists,
            or an export that does not match the Keras model.
        DataError: the run's dataset cannot be loaded.
    """
    path = target_dir(model_dir, config)
    model, run, calibrated = _load_run(model_dir, config)
    detector = calibrated and anomaly.Detector.from_dict(calibrated)
    if data is None:
        data = data_lib.load(run.data)
    images, inputs, expected, strays, scale = _expected(model, data, config, detector)
    report = _report(model_dir, config, model, run, calibrated, images, expected)
    report["float64_stray"] = {f"{signature}/{name}": value
                               for signature, values in strays.items()
                               for name, value in values.items()}
    staging = versions.staging_dir(path)
    scratch = tempfile.mkdtemp()
    try:
        # The SavedModel is also what TFLite converts from; it stays in the
        # version folder only if asked for.
        wanted = "saved_model" in config.formats
        saved_model_dir = staging if wanted else os.path.join(scratch, "saved_model")
        logging.info("export: SavedModel to %s", saved_model_dir)
        saved_model.write(model, saved_model_dir, run.data.crop_to_aspect_ratio, detector)
        if wanted:
            report["files"]["saved_model"] = checks.check_saved_model(
                saved_model_dir, inputs, expected, scale
            )
        if "tflite" in config.formats:
            entries, left_out = tflite_files.write(
                model, run, data, config, detector, (saved_model_dir, scratch), staging,
                (inputs, expected, scale))
            report["files"].update(entries)
            if left_out:
                report["tflite_left_out"] = left_out
        files.write_json(os.path.join(staging, REPORT_FILE), report)
        versions.publish(staging, path, config.overwrite)
    except versions.VersionError as e:
        raise ExportError(str(e)) from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    report["path"] = path
    return report


def _expected(model, data, config, detector):
    """What the exported files are checked against: `(images, inputs,
    expected, strays, scale)`, the test images (as many as
    `--eval_examples`, or as fit IMAGE_BUDGET), each signature's inputs and
    Keras' outputs for them, the float64 twin's strays from those outputs
    on the first few (`checks.strays`), and `checks.scales`."""
    count = config.eval_examples or data.test_images.count_within(len(data.test_images),
                                                                  IMAGE_BUDGET)
    images = data_lib.to_float(data.test_images[:count].in_memory()).numpy()
    inputs = signatures.inputs(model, images)
    expected = signatures.keras_outputs(model, inputs, detector=detector)
    rounding = data.test_images.count_within(checks.ROUNDOFF_IMAGES, checks.ROUNDOFF_BYTES)
    first = {name: {k: v[:rounding] for k, v in values.items()}
             for name, values in inputs.items()}
    reference = signatures.keras_outputs(models.float64_twin(model), first, detector=detector)
    strays = {signature: checks.strays(expected[signature], reference[signature])
              for signature in expected}
    return images, inputs, expected, strays, checks.scales(expected, detector, strays)


def _report(model_dir, config, model, run, detector, images, expected):
    """The export's report before its files: what was exported, and how."""
    return {
        "model_dir": os.path.abspath(model_dir),
        "variant": run.model.variant,
        "dataset": run.data.dataset,
        "eval_examples": len(images),
        "keras_test_mse": checks.mse(expected[signatures.RECONSTRUCT]["reconstruction"], images),
        "input": _input_description(model, run),
        "anomaly": detector,
        "float_tolerance": FLOAT_TOLERANCE,
        "config": dataclasses.asdict(config),
        "versions": {
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "ai_edge_litert": importlib.metadata.version("ai-edge-litert"),
        },
        "files": {},
    }


def summarize(report):
    """The report as text: one line per exported file, its size and checks,
    and one per TFLite file left out, why. The largest difference is the
    values'; a decision (`is_anomaly`), 0 or 1, is counted apart (in the
    SavedModel and float32 files, checked against a tolerance, only where the
    score is at the threshold: `checks.scales`)."""
    lines = [f"exported {report['variant']} ({report['model_dir']}) to {report['path']}; "
             f"Keras test MSE {report['keras_test_mse']:.6f} on {report['eval_examples']} images"]
    for name, entry in report["files"].items():
        line = f"  {name}: {entry['size_bytes']:,} bytes"
        if "size_vs_float32" in entry:
            line += f" ({entry['size_vs_float32']:.0%} of float32)"
        values = [v for k, v in entry["max_abs_diff"].items() if not k.endswith("/is_anomaly")]
        line += f", max |diff| vs Keras {max(values):.2g}"
        flips = checks.flipped(entry, report["eval_examples"])
        if flips and flips[0]:
            line += f", is_anomaly other than Keras' on {flips[0]} of {flips[1]} images"
        if "test_mse" in entry:
            line += f", test MSE {entry['test_mse']:.6f} ({entry['test_mse_increase']:+.2%})"
        lines.append(line)
    left_out = report.get("tflite_left_out", {})
    lines += [f"  {name}: left out, {why}" for name, why in left_out.items()]
    return "\n".join(lines)


def _input_description(model, run):
    """What the exported files take, for the report (and so for their users)."""
    crop = " from the largest centred crop of that aspect ratio" if (
        run.data.crop_to_aspect_ratio) else ""
    return {
        "image_shape": list(model.image_shape),
        "images": "float32 [batch, height, width, channels]: the 8-bit pixels / 255, in "
                  "[0, 1]; the same in the float TFLite files, and in the int8 files "
                  "quantized by each input's scale and zero point",
        "image_bytes": "SavedModel signature serving_bytes: encoded PNG, JPEG, BMP or GIF "
                       "files of any size, decoded, converted to the channels above and "
                       f"resized (bilinear){crop} to the size above, as in training",
    }


def _load_run(model_dir, config):
    """`(model, RunConfig, detector)` of a run (`keras_ae.model_dir.read_run`);
    the detector's threshold `config.anomaly_threshold` if set."""
    try:
        run, model_file, detector = model_dir_lib.read_run(model_dir)
    except model_dir_lib.RunDirError as e:
        raise ExportError(e.message) from e
    try:
        model = models.load(model_file)
    except ValueError as e:
        if not models.weights_misfit(e):
            raise
        raise ExportError(
            f"{model_file}: its weights do not fit the layers this keras-ae builds from its "
            "configuration, so another version, whose layers differ, saved it. Export it "
            "with the version that trained it, or train it again") from e
    if not all(np.isfinite(w).all() for w in model.get_weights()):
        raise ExportError(
            f"{model_file} has NaN or infinite weights; nothing to export. Train again "
            "with a lower --learning_rate"
        )
    if config.anomaly_threshold is not None:
        if detector is None:
            raise ExportError(f"--anomaly_threshold: {model_dir} has no anomaly detector "
                              f"({model_dir_lib.ANOMALY_FILE}); train with --normal_classes")
        detector = detector | {"threshold": config.anomaly_threshold,
                               "calibrated_threshold": detector["threshold"]}
    return model, run, detector
