"""The checks an export must pass before it is published: each file run the
way its consumer runs it, on the run's test images, and compared with Keras.

The SavedModel is loaded with `tf.saved_model.load` in a fresh process; each
.tflite file runs in the LiteRT interpreter. A float export that differs from
the Keras model by more than `FLOAT_TOLERANCE` is an ExportError; quantized
files report their size and test MSE next to the float model's, and a
quantized detector that decides otherwise than Keras on more than
MAX_DECIDED_OTHERWISE of the test images is left out (`decided_otherwise`).
"""

import os

import numpy as np

from keras_ae import anomaly
from keras_ae.export import saved_model
from keras_ae.export import signatures
from keras_ae.export import tflite


# Largest difference accepted between a float32 SavedModel or TFLite file and
# the Keras model, as |export - keras| / scale, the scale being max(1, |keras|):
# absolute for images in [0, 1], relative for larger values such as codes. The
# anomaly score has the scale its views give it (see `scales`). TFLite's kernels
# sum in another order than TensorFlow's: measured up to 1.2e-5 on conv codes
# and 1.4e-5 on the restoration detector's views (sneakers); a conversion
# mistake moves outputs by far more, and 1e-4 is 1/40 of an 8-bit grey level.
# Round-off grows with the sums a network takes (larger images, wider layers):
# where the Keras model's own float32 outputs stray further from its float64
# twin's, ROUNDOFF_FACTOR times that stray is accepted too (see `scales`):
# TFLite's float32 encoder of a 128x128 restoration model strayed 5 times as
# far as Keras' own (export_report.json's float64_stray against max_abs_diff).
FLOAT_TOLERANCE = 1e-4
# The checks' test images and int8 calibration's training images are held in
# memory as float32, with every output for them: at most this many bytes of
# each (all 10,000 Fashion-MNIST test images; 5 RGB images of 1024x1024).
IMAGE_BUDGET = 64 * 2**20
ROUNDOFF_FACTOR = 30
# The first test images the float64 twin runs: 64, or as many as ROUNDOFF_BYTES
# of float32 hold (two RGB images of 1024x1024, a million strays each).
ROUNDOFF_IMAGES, ROUNDOFF_BYTES = 64, 32 * 2**20
# The largest share of the test images on which a quantized detector's
# `is_anomaly` may differ from the Keras model's. Quantization moves scores by
# a little, so images near the threshold flip: in int8, 18 of 10,000 of the
# one-class Fashion-MNIST detector's, 1% of tests/test_anomaly.py's. A 64 px
# draem detector's int8 file flipped 40 of 140 when its activations were
# calibrated on normal images alone, which clips a defect's segmentation; 4
# calibrated with simulated anomalies too (BUILD.md, "TFLite").
MAX_DECIDED_OTHERWISE = 0.1
# Test images a quantized detector's decisions are checked on, at least where
# the test split has them: the images every check holds (IMAGE_BUDGET) and
# more, read a batch within IMAGE_BUDGET at a time (`Decisions`), so that at
# 1024x1024 the decisions rest on more than the 5 images the budget holds.
DECISION_IMAGES = 64


class ExportError(Exception):
    """An export cannot be made or failed its checks; nothing was published."""



def scales(expected, detector=None, strays_by_signature=None):
    """What each expected output's difference is measured against:
    `{signature: {output: array}}`, max(1, |value|) elementwise; with
    `strays_by_signature` (`{signature: strays(expected outputs, the float64
    twin's)}`) at least ROUNDOFF_FACTOR times each output's stray, over
    FLOAT_TOLERANCE: an export is then refused only for differences larger
    than float32 round-off could make.

    The anomaly score is the mean over views of view / constant (`detector`,
    an `anomaly.Detector`), so views that each err by the tolerance move it by
    up to the mean of max(1, |view|) / constant: its scale. A near-certain
    head's view has a constant of 3e-4 on sneakers, and float32 round-off of
    1e-7 there moves the score by 4e-5. A decision (`is_anomaly`) is not
    checked where the score lies within its tolerance of the threshold.
    """
    result = {}
    for signature, outputs in expected.items():
        result[signature] = {k: np.maximum(1.0, np.abs(np.asarray(v, np.float64)))
                             for k, v in outputs.items()}
        if detector and "anomaly_views" in outputs:
            views = result[signature]["anomaly_views"]
            score = np.mean(views / np.asarray(detector.view_constants, np.float64), axis=1)
            result[signature]["anomaly_score"] = score
            result[signature]["normalized_score"] = 0.5 * score / detector.threshold
            if "anomaly_map" in outputs:  # each pixel combined as the score is
                result[signature]["anomaly_map"] = np.maximum(
                    result[signature]["anomaly_map"], score[:, None, None])
        for name, roundoff in (strays_by_signature or {}).get(signature, {}).items():
            result[signature][name] = np.maximum(result[signature][name],
                                                 ROUNDOFF_FACTOR * roundoff / FLOAT_TOLERANCE)
        if detector and "is_anomaly" in outputs:
            margin = FLOAT_TOLERANCE * result[signature]["anomaly_score"]
            near = np.abs(np.asarray(outputs["anomaly_score"], np.float64)
                          - detector.threshold) <= margin
            result[signature]["is_anomaly"] = np.where(near, np.inf, 1.0)
    return result


def strays(outputs, reference):
    """`{output: largest |expected - reference|}` over the rows `reference`
    has (decisions left out: a flip is no measure of round-off)."""
    return {name: float(np.max(np.abs(np.asarray(outputs[name][:len(value)], np.float64)
                                      - np.asarray(value, np.float64)), initial=0.0))
            for name, value in reference.items() if name != "is_anomaly"}


def check_saved_model(path, inputs, expected, scale):
    """Loads and runs the SavedModel in a fresh process; its report entry.

    `scale`: `scales(expected, ...)`."""
    size = tree_size(path)
    try:
        outputs, listing = saved_model.run_in_fresh_process(path, inputs)
    except RuntimeError as e:
        raise ExportError(str(e)) from e
    served = {name: sorted(listing[name]["inputs"]) for name in listing}
    wanted = {name: sorted(inputs[name]) for name in signatures.SAVED_MODEL_NAMES}
    if served != wanted:
        raise ExportError(f"SavedModel signatures {served}, expected {wanted}")
    compare("SavedModel", outputs, expected, scale)
    return {"size_bytes": size, "signatures": listing, **differences(outputs, expected, scale)}


def check_tflite(path, signature, quantize, inputs, expected, scale):
    """Runs a .tflite file in LiteRT on the test inputs; its report entry.

    A float32 file must match the Keras model within FLOAT_TOLERANCE.
    `scale`: `scales(expected, ...)`.
    """
    outputs = {signature: tflite.run(path, signature, inputs[signature])}
    expected, scale = {signature: expected[signature]}, {signature: scale[signature]}
    if quantize == "float32":
        compare(os.path.basename(path), outputs, expected, scale)
    entry = {
        "signature": signature,
        "quantize": quantize,
        "size_bytes": os.path.getsize(path),
        **tflite.describe(tflite.signature_runner(path, signature)),
        **differences(outputs, expected, scale),
    }
    if signature == signatures.RECONSTRUCT:
        images = inputs[signature]["images"]
        entry["test_mse"] = mse(outputs[signature]["reconstruction"], images)
        keras_mse = mse(expected[signature]["reconstruction"], images)
        entry["test_mse_increase"] = entry["test_mse"] / keras_mse - 1
    return entry


def scaled_differences(output, expected, scale):
    """|output - expected| / scale elementwise, as float64 (see FLOAT_TOLERANCE)."""
    return np.abs(np.asarray(output, np.float64) - np.asarray(expected, np.float64)) / scale


def differences(outputs, expected, scale):
    """Report figures per output of `{signature: {output: array}}`, flattened to
    "signature/output": max abs, max scaled (by `scale`, see FLOAT_TOLERANCE), MSE."""
    pairs = {  # as float64: is_anomaly is boolean
        f"{signature}/{k}": (np.asarray(outputs[signature][k], np.float64),
                             np.asarray(expected[signature][k], np.float64),
                             scale[signature][k])
        for signature in expected for k in expected[signature]
    }
    return {
        "max_abs_diff": {k: float(np.max(np.abs(a - b))) for k, (a, b, _) in pairs.items()},
        "max_scaled_diff": {k: float(np.max(scaled_differences(a, b, s)))
                            for k, (a, b, s) in pairs.items()},
        "mse_vs_keras": {k: mse(a, b) for k, (a, b, _) in pairs.items()},
    }


def compare(what, outputs, expected, scale):
    """Checks `outputs` has `expected`'s signatures and outputs, each within
    FLOAT_TOLERANCE of `scale`; raises ExportError otherwise."""
    for signature in expected:
        if set(outputs.get(signature, {})) != set(expected[signature]):
            raise ExportError(
                f"{what} signature {signature!r} returns {sorted(outputs.get(signature, {}))}, "
                f"expected {sorted(expected[signature])}"
            )
        for output, value in expected[signature].items():
            got = outputs[signature][output]
            scaled = scaled_differences(got, value, scale[signature][output])
            if not scaled.size:
                continue
            worst = np.unravel_index(np.argmax(scaled), scaled.shape)
            if not scaled[worst] <= FLOAT_TOLERANCE:
                raise ExportError(
                    f"{what} signature {signature!r} output {output!r} differs from the "
                    f"Keras model by {scaled[worst]:.3g} at index {tuple(map(int, worst))} "
                    f"({float(np.asarray(got)[worst]):.7g}, Keras "
                    f"{float(np.asarray(value)[worst]):.7g}; |difference| / scale, the scale "
                    f"being max(1, |value|), or for the anomaly score its views'; "
                    f"tolerance {FLOAT_TOLERANCE})"
                )


class Decisions:
    """The Keras model's `is_anomaly` on the test images after the `checked`
    first (which every check holds), up to DECISION_IMAGES in all, read a
    batch within IMAGE_BUDGET at a time; `count` adds a TFLite file's
    differences from it there to those its report entry has."""

    def __init__(self, model, detector, test_images, checked):
        self.checked, self.images = checked, test_images
        self.end = max(checked, min(len(test_images), DECISION_IMAGES))
        self.keras = [self._decided(batch, lambda images: anomaly.outputs_of(
            model, images, test_images.count_within(len(images)), detector=detector))
            for batch in batches_after(test_images, checked, self.end)]

    @staticmethod
    def _decided(images, run):
        return np.asarray(run(images)["is_anomaly"], bool).reshape(-1)

    def count(self, entry, path):
        """Records in the report `entry` of the reconstruct file at `path` on
        how many images (`decided_otherwise`: `images`, `count`) it decides
        otherwise than Keras, of the checked ones (`flipped`) and these."""
        served = (self._decided(batch, lambda images: tflite.run(
            path, signatures.RECONSTRUCT, {"images": images}))
            for batch in batches_after(self.images, self.checked, self.end))
        more = sum(int(np.sum(got != keras)) for got, keras in zip(served, self.keras))
        entry["decided_otherwise"] = {"images": self.end,
                                      "count": flipped(entry, self.checked)[0] + more}


def batches_after(images, first, end):
    """`images` (an `Images`) `first` to `end`, float32, a batch within
    IMAGE_BUDGET at a time: read from the first, as a TFDS split's records
    can only be."""
    if end <= first:
        return
    start = 0
    for chunk in images[:end].float_chunks(1, IMAGE_BUDGET):
        kept, start = chunk[max(0, first - start):], start + len(chunk)
        if len(kept):
            yield kept


def flipped(entry, count):
    """`(decisions, images)`: on how many of the test images a file's report
    `entry` says its `is_anomaly` differs from the Keras model's, and of how
    many: its `decided_otherwise` (`Decisions`), else of the `count` checked
    (the mean squared difference of 0s and 1s is the share of them); None if
    it decides nothing."""
    if "decided_otherwise" in entry:
        return entry["decided_otherwise"]["count"], entry["decided_otherwise"]["images"]
    shares = [v for k, v in entry["mse_vs_keras"].items() if k.endswith("/is_anomaly")]
    return (round(max(shares) * count), count) if shares else None


def decided_otherwise(entry, quantize, count):
    """Why a quantized TFLite file's report `entry` must be left out: its
    `is_anomaly` differs from the Keras model's on more than
    MAX_DECIDED_OTHERWISE of the test images (`flipped`, of the `count`
    checked if it has no `decided_otherwise`); or None. (A float32 file is
    held to FLOAT_TOLERANCE instead: `compare`.)"""
    flips = flipped(entry, count)
    if quantize == "float32" or flips is None:
        return None
    flips, count = flips
    if flips <= MAX_DECIDED_OTHERWISE * count:
        return None
    return (f"{quantize} quantization: is_anomaly other than the Keras model's on {flips} of "
            f"{count} test images, more than {MAX_DECIDED_OTHERWISE:.0%}")


def mse(a, b):
    return float(np.mean(np.square(a - b)))


def tree_size(path):
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path) for name in names
    )
