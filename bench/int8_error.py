"""Where a detector's full-integer (int8) `reconstruct` file goes astray.

    python bench/int8_error.py --model_dir=RUN [--parts=segmenter,segmenter_input,contrast]

`python -m export` leaves a quantized detector out when it decides otherwise than
Keras on more than a tenth of the test images (`keras_ae.export.checks`). This
converts the run's `reconstruct` signature to int8 as the export does (its
calibration inputs; for a model that scores by tiles, the SavedModel of one image),
then once more with each of --parts (PARTS) left in float, by the denylist of
TensorFlow's quantization debugger, and runs each file on the run's test images in
LiteRT: how far its score is from Keras' (mean, root mean square, largest) and on how
many images it decides otherwise. A file with a part in float is a diagnosis, not
one to ship: a full-integer file has none. Writes --out.
"""

import json
import os
import re
import tempfile

from keras_ae import commands  # noqa: E402,F401  first: TensorFlow's environment, as train.py's

from absl import app
from absl import flags
from ai_edge_litert import interpreter as litert
import numpy as np
import tensorflow as tf

from keras_ae import anomaly
from keras_ae import data as data_lib
from keras_ae import model_dir as model_dir_lib
from keras_ae import models
from keras_ae.config.export import ExportConfig
from keras_ae.export import saved_model
from keras_ae.export import signatures
from keras_ae.export import tflite
from keras_ae.export import tflite_files
import environment  # bench/environment.py, beside this file

FLAGS = flags.FLAGS
# The parts of a `draem` graph, by what the names of their tensors hold.
PARTS = {
    "segmenter": r"segmenter",
    "segmenter_input": r"segmenter[^/]*/(contrast|inputs|full)_",  # LocalContrast to 1st conv
    "contrast": r"segmenter[^/]*/contrast_",
    "reconstructive": r"(encoder|decoder)[^/]*/",
}


def define_flags():
    flags.DEFINE_string("model_dir", None, "A detector's train.py run.", required=True)
    flags.DEFINE_list("parts", ["segmenter", "segmenter_input", "contrast"],
                      f"Parts to leave in float, one file each: {', '.join(PARTS)}.")
    flags.DEFINE_string("out", os.path.join(tempfile.gettempdir(), "int8-error.json"),
                        "Where to write the results.")


def int8_source(model, run, detector, directory):
    """The SavedModel the export converts the int8 `reconstruct` file from
    (`tflite_files.write`): for a model that scores by tiles, one image per
    call with all its tiles at once."""
    if model.training_crop is not None:
        return tflite_files.one_image_saved_model(model, run, detector, directory)
    saved_model.write(model, directory, run.data.crop_to_aspect_ratio, detector,
                      names=(signatures.RECONSTRUCT,))
    return directory


def with_float(source, calibration, names):
    """The int8 `reconstruct` file of SavedModel `source` calibrated on
    `calibration` (`{input name: array}`) as `tflite.convert` quantizes, but
    with the tensors `names` left in float."""
    converter = tf.lite.TFLiteConverter.from_saved_model(
        source, signature_keys=[signatures.RECONSTRUCT])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    # As `tflite.convert` quantizes: Dense weights per tensor.
    converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    inputs = list(calibration)

    def samples():  # the debugger takes each sample's inputs as a list, in order
        for i in range(len(calibration[inputs[0]])):
            yield [calibration[name][i:i + 1] for name in inputs]

    converter.representative_dataset = samples
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=samples,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=names))
    return debugger.get_nondebug_quantized_model()


def compared(path, images, keras_scores, threshold):
    """How the score of the file at `path` differs from Keras' on `images`."""
    outputs = tflite.run(path, signatures.RECONSTRUCT, {"images": images})
    scores = np.asarray(outputs["anomaly_score"]).reshape(-1)
    difference = scores - keras_scores
    flips = (scores > threshold) != (keras_scores > threshold)
    return {"mean": float(difference.mean()), "rmse": float(np.sqrt(np.mean(difference ** 2))),
            "largest": float(np.abs(difference).max()), "decided_otherwise": int(flips.sum())}


def main(argv):
    del argv  # environment.command() records the flags
    unknown = sorted(set(FLAGS.parts) - set(PARTS))
    if unknown:
        raise app.UsageError(f"--parts: {', '.join(unknown)} not among {', '.join(PARTS)}")
    config = ExportConfig(export_base=tempfile.gettempdir())  # the export's defaults
    try:
        run, model_file, calibrated = model_dir_lib.read_run(FLAGS.model_dir)
    except model_dir_lib.RunDirError as e:
        raise app.UsageError(f"--model_dir: {e.message}") from e
    model = models.load(model_file)
    if calibrated is None:
        raise app.UsageError(f"--model_dir: {FLAGS.model_dir} holds no detector; "
                             "pass a run trained with --normal_classes")
    detector = anomaly.Detector.from_dict(calibrated)
    data = data_lib.load(run.data)
    images = data_lib.to_float(data.test_images.in_memory()).numpy()
    expected = signatures.keras_outputs(model, signatures.inputs(model, images),
                                        detector=detector)[signatures.RECONSTRUCT]
    keras_scores = np.asarray(expected["anomaly_score"]).reshape(-1)
    calibration = tflite_files.calibration_inputs(
        model, data, config, run.model.variant, data_lib.simulation(run.data)
    )[signatures.RECONSTRUCT]
    results = {"command": environment.command(), "machine": environment.machine(),
               "model_dir": FLAGS.model_dir, "threshold": detector.threshold,
               "test_images": len(images), "files": {}}
    with tempfile.TemporaryDirectory() as scratch:
        source = int8_source(model, run, detector, os.path.join(scratch, "saved_model"))
        full = tflite.convert(source, signatures.RECONSTRUCT, "int8", calibration)
        tensors = [t["name"] for t in litert.Interpreter(model_content=full).get_tensor_details()]
        floated = {part: [name for name in tensors if re.search(PARTS[part], name)]
                   for part in FLAGS.parts}
        missing = [part for part, names in floated.items() if not names]
        if missing:
            raise app.UsageError(f"--parts: no tensor of this model's int8 file is part of "
                                 f"{', '.join(missing)}")
        for part in ["none", *FLAGS.parts]:
            path = os.path.join(scratch, f"{part}.tflite")
            with open(path, "wb") as f:
                f.write(with_float(source, calibration, floated[part]) if part in floated
                        else full)
            results["files"][part] = compared(path, images, keras_scores, detector.threshold)
            print(f"in float: {part:16} {results['files'][part]}", flush=True)
    with open(FLAGS.out, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    define_flags()
    app.run(main)
