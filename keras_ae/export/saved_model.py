"""SavedModel for TensorFlow Serving: writing it, and running it as a server would.

`write` exports the signatures of `keras_ae.export.signatures` with
`keras.export.ExportArchive`. `run_in_fresh_process` loads the result with
`tf.saved_model.load` in a new Python process, where nothing of the Keras model
is in memory, lists its signatures and runs them: what TF Serving sees.
"""

import json
import os
import subprocess
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_ae.export import signatures

# Images per call in the checking process.
_BATCH = 1000


def write(model, path):
    """Writes `model`'s serving signatures as a SavedModel to `path`."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (function, spec) in signatures.functions(model).items():
        archive.add_endpoint(name, function, input_signature=[spec])
    archive.write_out(path, verbose=False)


def describe(spec):
    """A TensorSpec as JSON: dtype and shape, -1 for a dynamic dimension."""
    return {"dtype": spec.dtype.name, "shape": [-1 if d is None else d for d in spec.shape]}


def run_in_fresh_process(path, signature_inputs, timeout=600):
    """Loads the SavedModel at `path` in a new process and runs its signatures.

    Args:
        path: a SavedModel directory.
        signature_inputs: `{signature: {input name: array}}`.
        timeout: seconds before the process is killed.

    Returns:
        `(outputs, listing)`: `{signature: {output name: array}}` for the
        signatures given, and `{signature: {"inputs": ..., "outputs": ...}}`
        describing every signature the SavedModel has.

    Raises:
        RuntimeError: the process failed; its stderr is in the message.
    """
    with tempfile.TemporaryDirectory() as tmp:
        inputs_file = os.path.join(tmp, "inputs.npz")
        outputs_file = os.path.join(tmp, "outputs.npz")
        np.savez(inputs_file, **_flatten(signature_inputs))
        args = (path, inputs_file, outputs_file)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        result = subprocess.run(
            [sys.executable, "-c", f"from {__name__} import _serve; _serve(*{args!r})"],
            capture_output=True, text=True, timeout=timeout, env=env,
        )
        if result.returncode:
            raise RuntimeError(
                f"loading the SavedModel {path} in a fresh process failed:\n"
                f"{result.stderr[-3000:]}"
            )
        with np.load(outputs_file) as arrays:
            outputs = _unflatten(arrays)
        with open(os.path.join(tmp, "signatures.json")) as f:
            listing = json.load(f)
    return outputs, listing


def _flatten(nested):
    return {f"{outer}/{inner}": value for outer in nested for inner, value in nested[outer].items()}


def _unflatten(flat):
    nested = {}
    for key in flat:
        outer, inner = key.split("/")
        nested.setdefault(outer, {})[inner] = flat[key]
    return nested


def _serve(path, inputs_file, outputs_file):
    """The fresh process: load as TF Serving does, list, run in batches.

    Reads `signature/input` arrays from `inputs_file`; writes `signature/output`
    arrays to `outputs_file` and the listing to `signatures.json` beside it.
    """
    loaded = tf.saved_model.load(path)
    listing = {
        name: {
            "inputs": {k: describe(s) for k, s in function.structured_input_signature[1].items()},
            "outputs": {k: describe(s) for k, s in function.structured_outputs.items()},
        }
        for name, function in loaded.signatures.items()
    }
    with np.load(inputs_file) as arrays:
        signature_inputs = _unflatten(arrays)
    outputs = {}
    for name, named_inputs in signature_inputs.items():
        count = len(next(iter(named_inputs.values())))
        batches = [
            loaded.signatures[name](**{k: tf.constant(v[i : i + _BATCH]) for k, v in named_inputs.items()})
            for i in range(0, count, _BATCH)
        ]
        outputs[name] = {k: np.concatenate([b[k].numpy() for b in batches]) for k in batches[0]}
    np.savez(outputs_file, **_flatten(outputs))
    with open(os.path.join(os.path.dirname(outputs_file), "signatures.json"), "w") as f:
        json.dump(listing, f)
