"""The checks an export must pass before it is published: each file run the
way its consumer runs it, on the run's test images, and compared with Keras.

The SavedModel is loaded with `tf.saved_model.load` in a fresh process; each
.tflite file runs in the LiteRT interpreter. A float export that differs from
the Keras model by more than `FLOAT_TOLERANCE` is an ExportError; quantized
files report their size and test MSE next to the float model's.
"""

import os

import numpy as np

from keras_ae.export import saved_model
from keras_ae.export import signatures
from keras_ae.export import tflite


# Largest difference accepted between a float32 SavedModel or TFLite file and
# the Keras model, as |export - keras| / max(1, |keras|): absolute for images in
# [0, 1], relative for larger values such as codes (TFLite's kernels sum in
# another order than TensorFlow's: 1.2e-5 absolute on conv codes up to 6.2).
FLOAT_TOLERANCE = 1e-5


class ExportError(Exception):
    """An export cannot be made or failed its checks; nothing was published."""



def check_saved_model(path, inputs, expected):
    """Loads and runs the SavedModel in a fresh process; its report entry."""
    size = tree_size(path)
    try:
        outputs, listing = saved_model.run_in_fresh_process(path, inputs)
    except RuntimeError as e:
        raise ExportError(str(e)) from e
    served = {name: sorted(listing[name]["inputs"]) for name in listing}
    wanted = {name: sorted(inputs[name]) for name in signatures.SAVED_MODEL_NAMES}
    if served != wanted:
        raise ExportError(f"SavedModel signatures {served}, expected {wanted}")
    compare("SavedModel", outputs, expected)
    return {"size_bytes": size, "signatures": listing, **differences(outputs, expected)}


def check_tflite(path, signature, quantize, inputs, expected):
    """Runs a .tflite file in LiteRT on the test inputs; its report entry.

    A float32 file must match the Keras model within FLOAT_TOLERANCE.
    """
    outputs = tflite.run(path, signature, inputs[signature])
    if quantize == "float32":
        compare(os.path.basename(path), {signature: outputs}, {signature: expected[signature]})
    entry = {
        "signature": signature,
        "quantize": quantize,
        "size_bytes": os.path.getsize(path),
        **tflite.describe(tflite.signature_runner(path, signature)),
        **differences({signature: outputs}, {signature: expected[signature]}),
    }
    if signature == signatures.RECONSTRUCT:
        images = inputs[signature]["images"]
        entry["test_mse"] = mse(outputs["reconstruction"], images)
        keras_mse = mse(expected[signature]["reconstruction"], images)
        entry["test_mse_increase"] = entry["test_mse"] / keras_mse - 1
    return entry


def scaled_difference(output, expected):
    output, expected = np.asarray(output, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(output - expected) / np.maximum(1.0, np.abs(expected))))


def differences(outputs, expected):
    """Report figures per output of `{signature: {output: array}}`, flattened to
    "signature/output": max abs, max scaled (see FLOAT_TOLERANCE), MSE."""
    pairs = {  # as float64: is_anomaly is boolean
        f"{signature}/{k}": (np.asarray(outputs[signature][k], np.float64),
                             np.asarray(expected[signature][k], np.float64))
        for signature in expected for k in expected[signature]
    }
    return {
        "max_abs_diff": {k: float(np.max(np.abs(a - b))) for k, (a, b) in pairs.items()},
        "max_scaled_diff": {k: scaled_difference(a, b) for k, (a, b) in pairs.items()},
        "mse_vs_keras": {k: mse(a, b) for k, (a, b) in pairs.items()},
    }


def compare(what, outputs, expected):
    """Checks `outputs` has `expected`'s signatures and outputs, each within
    FLOAT_TOLERANCE; raises ExportError otherwise."""
    for signature in expected:
        if set(outputs.get(signature, {})) != set(expected[signature]):
            raise ExportError(
                f"{what} signature {signature!r} returns {sorted(outputs.get(signature, {}))}, "
                f"expected {sorted(expected[signature])}"
            )
        for output, value in expected[signature].items():
            difference = scaled_difference(outputs[signature][output], value)
            if not difference <= FLOAT_TOLERANCE:
                raise ExportError(
                    f"{what} signature {signature!r} output {output!r} differs from the "
                    f"Keras model by {difference:.3g} (|difference| / max(1, |value|); "
                    f"tolerance {FLOAT_TOLERANCE})"
                )


def mse(a, b):
    return float(np.mean(np.square(a - b)))


def tree_size(path):
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path) for name in names
    )
