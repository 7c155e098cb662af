"""Exporting a trained run for TF Serving (SavedModel) and phones (TFLite).

`export_run(model_dir, config)` reads the run's `model.keras` and writes one
TF Serving version folder:

    export_base/model_name/version/
        saved_model.pb, variables/, ...      SavedModel, signatures serving_default,
                                             encode, decode (`signatures`)
        tflite/reconstruct_float32.tflite    one file per endpoint (reconstruct,
        tflite/encode_int8.tflite ...        encode, decode) and flavour
        export_report.json                   sizes, signatures, checks

Every file is checked the way its consumer uses it before the version is
published: the SavedModel loaded with `tf.saved_model.load` in a fresh process,
each .tflite run by the LiteRT interpreter, both on the run's test images and
compared with the Keras model. A float export that differs by more than
`FLOAT_TOLERANCE` is an error and nothing is published; quantized files report
their size and test MSE next to the float model's.

Example:

    config = keras_ae.config.ExportConfig(export_base="exports", quantize=("float32", "int8"))
    report = keras_ae.export.export_run("runs/conv-fashion_mnist", config)
"""

import dataclasses
import importlib.metadata
import json
import os
import shutil
import tempfile

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from keras_ae import anomaly
from keras_ae import config as config_lib
from keras_ae import data as data_lib
from keras_ae import files
from keras_ae import image_files
from keras_ae import tfds_records
from keras_ae.export import saved_model
from keras_ae.export import signatures
from keras_ae.export import tflite
from keras_ae.export import versions

REPORT_FILE = "export_report.json"
TFLITE_DIR = "tflite"
# What each signature's .tflite files are called.
ENDPOINTS = {
    signatures.RECONSTRUCT: "reconstruct",
    signatures.ENCODE: "encode",
    signatures.DECODE: "decode",
}
# Largest difference accepted between a float32 SavedModel or TFLite file and
# the Keras model, as |export - keras| / max(1, |keras|): absolute for images in
# [0, 1], relative for larger values such as codes (TFLite's kernels sum in
# another order than TensorFlow's: 1.2e-5 absolute on conv codes up to 6.2).
FLOAT_TOLERANCE = 1e-5


class ExportError(Exception):
    """An export cannot be made or failed its checks; nothing was published."""


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
    model, run, detector = _load_run(model_dir, config)
    if data is None:
        data = run.data.load()
    images = data_lib.to_float(data.test_images[: config.eval_examples]).numpy()
    inputs = signatures.inputs(model, images)
    scoring = detector and (detector["score"], detector["threshold"])
    expected = signatures.keras_outputs(model, inputs, detector=scoring)
    report = {
        "model_dir": os.path.abspath(model_dir),
        "variant": run.model.variant,
        "dataset": run.data.dataset,
        "eval_examples": len(images),
        "keras_test_mse": _mse(expected[signatures.RECONSTRUCT]["reconstruction"], images),
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

    staging = versions.staging_dir(path)
    scratch = tempfile.mkdtemp()
    try:
        # The SavedModel is also what TFLite converts from; it stays in the
        # version folder only if asked for.
        wanted = "saved_model" in config.formats
        saved_model_dir = staging if wanted else os.path.join(scratch, "saved_model")
        logging.info("export: SavedModel to %s", saved_model_dir)
        saved_model.write(model, saved_model_dir, run.data.crop_to_aspect_ratio, scoring)
        if wanted:
            report["files"]["saved_model"] = _check_saved_model(
                saved_model_dir, inputs, expected
            )
        if "tflite" in config.formats:
            calibration = _calibration_inputs(model, data, config)
            report["files"].update(_export_tflite(
                saved_model_dir, staging, config.quantize, calibration, inputs, expected
            ))
        files.write_json(os.path.join(staging, REPORT_FILE), report)
        versions.publish(staging, path, config.overwrite)
    except versions.VersionError as e:
        raise ExportError(str(e)) from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    report["path"] = path
    return report


def summarize(report):
    """The report as text: one line per exported file, its size and checks."""
    lines = [f"exported {report['variant']} ({report['model_dir']}) to {report['path']}; "
             f"Keras test MSE {report['keras_test_mse']:.6f} on {report['eval_examples']} images"]
    for name, entry in report["files"].items():
        line = f"  {name}: {entry['size_bytes']:,} bytes"
        if "size_vs_float32" in entry:
            line += f" ({entry['size_vs_float32']:.0%} of float32)"
        line += f", max |diff| vs Keras {max(entry['max_abs_diff'].values()):.2g}"
        if "test_mse" in entry:
            line += f", test MSE {entry['test_mse']:.6f} ({entry['test_mse_increase']:+.2%})"
        lines.append(line)
    return "\n".join(lines)


def _input_description(model, run):
    """What the exported files take, for the report (and so for their users)."""
    crop = " from the largest centred crop of that aspect ratio" if (
        run.data.crop_to_aspect_ratio) else ""
    return {
        "image_shape": list(model.input_shape[1:]),
        "images": "float32 [batch, height, width, channels]: the 8-bit pixels / 255, in "
                  "[0, 1]; the same in the float TFLite files, and in the int8 files "
                  "quantized by each input's scale and zero point",
        "image_bytes": "SavedModel signature serving_bytes: encoded PNG, JPEG, BMP or GIF "
                       "files of any size, decoded, converted to the channels above and "
                       f"resized (bilinear){crop} to the size above, as in training",
    }


def _load_run(model_dir, config):
    """`(model, RunConfig, detector)` of a run; the detector (`anomaly.json`,
    the threshold `config.anomaly_threshold` if set) None without one."""
    paths = [os.path.join(model_dir, name) for name in ("config.json", "model.keras")]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ExportError(
            f"{model_dir} holds no trained run (missing {', '.join(missing)}); "
            "pass the --model_dir a train.py run wrote"
        )
    with open(paths[0]) as f:
        run = config_lib.RunConfig.from_json(f.read())
    model = keras.saving.load_model(paths[1], safe_mode=True)  # no code from the file
    if not all(np.isfinite(w).all() for w in model.get_weights()):
        raise ExportError(
            f"{paths[1]} has NaN or infinite weights; nothing to export. Train again "
            "with a lower --learning_rate"
        )
    detector = None
    anomaly_path = os.path.join(model_dir, anomaly.ANOMALY_FILE)
    if os.path.isfile(anomaly_path):
        with open(anomaly_path) as f:
            detector = json.load(f)
        if config.anomaly_threshold is not None:
            detector["calibrated_threshold"] = detector["threshold"]
            detector["threshold"] = config.anomaly_threshold
    elif config.anomaly_threshold is not None:
        raise ExportError(f"--anomaly_threshold: {model_dir} has no anomaly detector "
                          f"({anomaly.ANOMALY_FILE}); train with --normal_classes")
    return model, run, detector


def _export_tflite(saved_model_dir, directory, flavours, calibration, inputs, expected):
    """Converts each endpoint in each flavour into `directory/tflite/` and checks
    it; returns the report entries."""
    os.mkdir(os.path.join(directory, TFLITE_DIR))
    entries = {}
    for signature, endpoint in ENDPOINTS.items():
        sizes = {}
        # float32 first, for the other flavours' size ratio.
        for quantize in [q for q in config_lib.QUANTIZATIONS if q in flavours]:
            name = os.path.join(TFLITE_DIR, f"{endpoint}_{quantize}.tflite")
            logging.info("export: %s", name)
            with open(os.path.join(directory, name), "wb") as f:
                f.write(tflite.convert(saved_model_dir, signature, quantize, calibration[signature]))
            entries[name] = _check_tflite(
                os.path.join(directory, name), signature, quantize, inputs, expected
            )
            sizes[quantize] = entries[name]["size_bytes"]
            if quantize != "float32" and "float32" in sizes:
                entries[name]["size_vs_float32"] = sizes[quantize] / sizes["float32"]
    return entries


def _calibration_inputs(model, data, config):
    """Each signature's inputs for a seeded random sample of training images
    (of a TFDS stream, its first records)."""
    count = min(config.calibration_examples, len(data.train_images))
    if isinstance(data.train_images, tfds_records.TfdsRecords):
        # Records are read in order: the first ones, which TFDS shuffled
        # when it wrote the files.
        pixels = data.train_images[:count].read()
    else:
        rng = np.random.default_rng(config.seed)
        sample = np.sort(rng.choice(len(data.train_images), count, replace=False))
        pixels = image_files.as_array(data.train_images[sample])  # a stream's files read
    return signatures.inputs(model, data_lib.to_float(pixels).numpy())


def _check_saved_model(path, inputs, expected):
    """Loads and runs the SavedModel in a fresh process; its report entry."""
    size = _tree_size(path)
    try:
        outputs, listing = saved_model.run_in_fresh_process(path, inputs)
    except RuntimeError as e:
        raise ExportError(str(e)) from e
    served = {name: sorted(listing[name]["inputs"]) for name in listing}
    wanted = {name: sorted(inputs[name]) for name in signatures.SAVED_MODEL_NAMES}
    if served != wanted:
        raise ExportError(f"SavedModel signatures {served}, expected {wanted}")
    _compare("SavedModel", outputs, expected)
    return {"size_bytes": size, "signatures": listing, **_differences(outputs, expected)}


def _check_tflite(path, signature, quantize, inputs, expected):
    """Runs a .tflite file in LiteRT on the test inputs; its report entry.

    A float32 file must match the Keras model within FLOAT_TOLERANCE.
    """
    outputs = tflite.run(path, signature, inputs[signature])
    if quantize == "float32":
        _compare(os.path.basename(path), {signature: outputs}, {signature: expected[signature]})
    entry = {
        "signature": signature,
        "quantize": quantize,
        "size_bytes": os.path.getsize(path),
        **tflite.describe(tflite.signature_runner(path, signature)),
        **_differences({signature: outputs}, {signature: expected[signature]}),
    }
    if signature == signatures.RECONSTRUCT:
        images = inputs[signature]["images"]
        entry["test_mse"] = _mse(outputs["reconstruction"], images)
        keras_mse = _mse(expected[signature]["reconstruction"], images)
        entry["test_mse_increase"] = entry["test_mse"] / keras_mse - 1
    return entry


def _scaled_difference(output, expected):
    output, expected = np.asarray(output, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(output - expected) / np.maximum(1.0, np.abs(expected))))


def _differences(outputs, expected):
    """Report figures per output of `{signature: {output: array}}`, flattened to
    "signature/output": max abs, max scaled (see FLOAT_TOLERANCE), MSE."""
    pairs = {  # as float64: is_anomaly is boolean
        f"{signature}/{k}": (np.asarray(outputs[signature][k], np.float64),
                             np.asarray(expected[signature][k], np.float64))
        for signature in expected for k in expected[signature]
    }
    return {
        "max_abs_diff": {k: float(np.max(np.abs(a - b))) for k, (a, b) in pairs.items()},
        "max_scaled_diff": {k: _scaled_difference(a, b) for k, (a, b) in pairs.items()},
        "mse_vs_keras": {k: _mse(a, b) for k, (a, b) in pairs.items()},
    }


def _compare(what, outputs, expected):
    """Checks `outputs` has `expected`'s signatures and outputs, each within
    FLOAT_TOLERANCE; raises ExportError otherwise."""
    for signature in expected:
        if set(outputs.get(signature, {})) != set(expected[signature]):
            raise ExportError(
                f"{what} signature {signature!r} returns {sorted(outputs.get(signature, {}))}, "
                f"expected {sorted(expected[signature])}"
            )
        for output, value in expected[signature].items():
            difference = _scaled_difference(outputs[signature][output], value)
            if not difference <= FLOAT_TOLERANCE:
                raise ExportError(
                    f"{what} signature {signature!r} output {output!r} differs from the "
                    f"Keras model by {difference:.3g} (|difference| / max(1, |value|); "
                    f"tolerance {FLOAT_TOLERANCE})"
                )


def _mse(a, b):
    return float(np.mean(np.square(a - b)))


def _tree_size(path):
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path) for name in names
    )
