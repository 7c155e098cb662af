"""SavedModel for TensorFlow Serving: writing it, and running it as a server would.

`write` exports the signatures of `keras_ae.export.signatures` with
`keras.export.ExportArchive`. `run_in_fresh_process` loads the result with
`tf.saved_model.load` in a new Python process, where nothing of the Keras model
is in memory, lists its signatures and runs them: what TF Serving sees.
"""

import dataclasses
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


def write(model, path, crop_to_aspect_ratio=False, detector=None, batch=None, names=None):
    """Writes `model`'s serving signatures as a SavedModel to `path`
    (`crop_to_aspect_ratio`: the run's; `detector`: an anomaly detector's
    `anomaly.Detector`, its threshold and constants then variables; `batch`:
    the images' batch size, None for any; see `signatures.functions`), or
    those of them `names` names."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    if detector is not None:
        threshold = keras.Variable(detector.threshold, dtype="float32", trainable=False,
                                   name=signatures.THRESHOLD)
        constants = keras.Variable(np.asarray(detector.view_constants, np.float32),
                                   trainable=False,
                                   name=signatures.CONSTANTS)
        archive.add_variable_collection(signatures.THRESHOLD, [threshold])
        archive.add_variable_collection(signatures.CONSTANTS, [constants])
        detector = dataclasses.replace(detector, threshold=threshold, view_constants=constants)
    endpoints = signatures.functions(model, crop_to_aspect_ratio, detector, batch)
    for name, (function, spec) in endpoints.items():
        if names is not None and name not in names:
            continue
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
    return run_all_in_fresh_process([(path, signature_inputs)], timeout)[0]


def run_all_in_fresh_process(jobs, timeout=600):
    """`run_in_fresh_process` for several `(path, signature_inputs)` jobs, one
    after the other in one new process (one TensorFlow start for all): a list
    of `(outputs, listing)`, one per job."""
    with tempfile.TemporaryDirectory() as tmp:
        calls = []
        for index, (path, signature_inputs) in enumerate(jobs):
            directory = os.path.join(tmp, str(index))
            os.mkdir(directory)
            np.savez(os.path.join(directory, "inputs.npz"), **_flatten(signature_inputs))
            calls.append((path, directory))
        code = f"from {__name__} import _serve\nfor call in {calls!r}: _serve(*call)"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env,
        )
        if result.returncode:
            raise RuntimeError(
                f"loading the SavedModel(s) {', '.join(path for path, _ in jobs)} in a fresh "
                f"process failed:\n{result.stderr[-3000:]}"
            )
        results = []
        for _, directory in calls:
            with np.load(os.path.join(directory, "outputs.npz")) as arrays:
                outputs = _unflatten(arrays)
            with open(os.path.join(directory, "signatures.json")) as f:
                results.append((outputs, json.load(f)))
    return results


def _flatten(nested):
    """`{outer: {inner: array}}` → `{"outer/inner": array}` for `np.savez`; an
    object array of byte strings becomes its bytes and their end offsets
    (`np.savez` would pickle it)."""
    flat = {}
    for outer in nested:
        for inner, value in nested[outer].items():
            key = f"{outer}/{inner}"
            if value.dtype == object:
                flat[key + "/bytes"] = np.frombuffer(b"".join(value), np.uint8)
                flat[key + "/ends"] = np.cumsum([len(v) for v in value])
            else:
                flat[key] = value
    return flat


def _unflatten(flat):
    nested = {}
    for key in flat:
        outer, inner, *part = key.split("/")
        if part == ["bytes"]:
            raw, ends = flat[key].tobytes(), flat[f"{outer}/{inner}/ends"]
            starts = [0, *ends[:-1]]
            nested.setdefault(outer, {})[inner] = np.array(
                [raw[a:b] for a, b in zip(starts, ends)], dtype=object)
        elif not part:
            nested.setdefault(outer, {})[inner] = flat[key]
    return nested


def _serve(path, directory):
    """The fresh process: load as TF Serving does, list, run in batches.

    Reads `signature/input` arrays from `directory/inputs.npz`; writes
    `signature/output` arrays to `directory/outputs.npz` and the listing to
    `directory/signatures.json`.
    """
    loaded = tf.saved_model.load(path)
    listing = {
        name: {
            "inputs": {k: describe(s) for k, s in function.structured_input_signature[1].items()},
            "outputs": {k: describe(s) for k, s in function.structured_outputs.items()},
        }
        for name, function in loaded.signatures.items()
    }
    with np.load(os.path.join(directory, "inputs.npz")) as arrays:
        signature_inputs = _unflatten(arrays)
    outputs = {}
    for name, named_inputs in signature_inputs.items():
        count = len(next(iter(named_inputs.values())))
        batches = [
            loaded.signatures[name](**{k: tf.constant(v[i : i + _BATCH]) for k, v in named_inputs.items()})
            for i in range(0, count, _BATCH)
        ]
        outputs[name] = {k: np.concatenate([b[k].numpy() for b in batches]) for k in batches[0]}
    np.savez(os.path.join(directory, "outputs.npz"), **_flatten(outputs))
    with open(os.path.join(directory, "signatures.json"), "w") as f:
        json.dump(listing, f)
