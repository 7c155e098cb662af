"""What a detector serves, as TensorFlow ops: evaluation and every export call these.

A model scores an image in one or more views (`anomaly_views`): the plain
variants by their reconstruction error alone, the restoration detector
(`keras_ae.variants.restoration`) by the error of restoring each rotated view and
its head's surprise at each. The score is the mean over views of each divided
by its constant (`combine`), the view's mean on the held-out normal validation
images (1 for a single view). The map scores each pixel alike
(`combine_maps`), smoothed by a Gaussian (`smooth`). `Detector` is a
calibrated detector, the one shape it has: `anomaly.json`, what evaluation
scores with, and what an export serves (its threshold and constants then
variables).
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from keras_ae import data as data_lib
from keras_ae.models import autoencoder

TOP_FRACTION = autoencoder.TOP_FRACTION
score = autoencoder.image_error  # an image's reconstruction error, "mse" or "top_k"


def parts(model, images, kind, sigma=0.0):
    """`model.anomaly_parts(images, kind)`: `(reconstruction, views,
    maps)`. With "map_max" the maps are smoothed by a Gaussian of `sigma`
    pixels, and each view that has a map is its map's highest pixel: the
    score of the served map, which a defect of a few pixels decides (the
    others, the restoration detector's head, as they are)."""
    if kind != "map_max":
        return model.anomaly_parts(images, kind)
    reconstruction, views, maps = model.anomaly_parts(images, "mse")
    count, height, width = maps.shape[1:]
    maps = tf.reshape(smooth(tf.reshape(maps, [-1, height, width]), sigma),
                      [-1, count, height, width])
    highest = tf.cast(tf.reduce_max(maps, axis=[2, 3]), views.dtype)
    return reconstruction, tf.concat([highest, views[:, count:]], axis=1), maps


def combine(views, constants):
    """`[batch]` anomaly scores from `[batch, views]` errors (a model's
    `anomaly_views`): the mean over views of each divided by its constant."""
    views = tf.convert_to_tensor(views)
    return tf.reduce_mean(views / tf.cast(constants, views.dtype), axis=1)


def combine_maps(views, maps, constants, sigma=0.0):
    """`[batch, height, width]` anomaly maps: each pixel scored as
    `combine` scores the image, the mean over views of each divided by its
    constant, where `maps` (`[batch, k, height, width]`, a model's
    `anomaly_views(..., maps=True)`) gives the first k views per pixel and the
    other views (the restoration detector's head: of the whole image) count
    alike at every pixel; then `smooth`ed by a Gaussian of `sigma` pixels.
    Unsmoothed, with the "mse" score, a map's mean is the image's score;
    with "top_k", the score averages the worst of each view's errors instead
    of all of them; with "map_max" (`parts`) a single view's score is the
    map's highest pixel."""
    views, maps = tf.convert_to_tensor(views), tf.convert_to_tensor(maps)
    constants = tf.cast(constants, views.dtype)
    pixel_views = maps.shape[1]
    pixels = tf.reduce_sum(maps / constants[None, :pixel_views, None, None], axis=1)
    whole = tf.reduce_sum(views[:, pixel_views:] / constants[pixel_views:], axis=1)
    return smooth((pixels + whole[:, None, None]) / views.shape[1], sigma)


def gaussian(sigma, size):
    """The normalised 1-D Gaussian of `sigma` pixels, cut at 3 sigma and to
    fit a side of `size` pixels with its reflection (a radius below `size`)."""
    radius = min(max(1, math.ceil(3 * sigma)), size - 1)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-offsets ** 2 / (2 * sigma ** 2))
    return (weights / weights.sum()).astype(np.float32)


def blur_matrix(sigma, size):
    """float32 `[size, size]`: `gaussian` along a side of `size` pixels, row i
    the kernel centred at pixel i, its taps past an edge reflected back inside
    (the edge pixel not repeated)."""
    kernel = gaussian(sigma, size)
    radius = len(kernel) // 2
    rows = np.repeat(np.arange(size), len(kernel))
    columns = np.abs(rows + np.tile(np.arange(-radius, radius + 1), size))
    columns = np.where(columns < size, columns, 2 * (size - 1) - columns)
    matrix = np.zeros((size, size), np.float64)
    np.add.at(matrix, (rows, columns), np.tile(kernel, size))
    return matrix.astype(np.float32)


def smooth(maps, sigma):
    """`maps` (`[batch, height, width]`) blurred by a Gaussian of `sigma`
    pixels (0: as they are), the edges reflected: a reconstruction's error is
    scattered over a defect's pixels and speckled elsewhere, and the blur
    gathers it. Two matrix products with `blur_matrix`es, which TFLite runs;
    not `tf.nn.conv2d` with the kernel, which oneDNN's eager kernel aborted
    the process on once a run had trained (kernels of 241 taps at 128x128,
    145 at 384x384: "Check failed: dtype() == expected_dtype")."""
    if not sigma:
        return maps
    maps = tf.convert_to_tensor(maps)
    rows = tf.constant(blur_matrix(sigma, maps.shape[1]), maps.dtype)
    columns = tf.constant(blur_matrix(sigma, maps.shape[2]), maps.dtype)
    return tf.matmul(tf.matmul(rows[None], maps), columns[None], transpose_b=True)


@dataclasses.dataclass(frozen=True)
class Detector:
    """A calibrated detector: stored as `anomaly.json`, scored with in
    evaluation, served by exports (`threshold` and `view_constants` may then
    be variables)."""

    score: str  # each view's error, "mse", "top_k" or "map_max" (`parts`)
    threshold: float
    fpr: float
    normal_classes: tuple
    validation_images: int
    validation_quantiles: dict  # "50", "90", "99", "max": validation scores
    views: tuple = ("reconstruct",)  # the model's `anomaly_views`, named
    view_constants: tuple = (1.0,)  # what `combine` divides each view by
    map_sigma: float = 0.0  # pixels: how `combine_maps` smooths the map
    # The share of normal images the threshold flags, in expectation
    # (`calibration.expected_fpr`): `fpr`, or more with few validation images.
    expected_fpr: float | None = None

    @classmethod
    def from_dict(cls, fields):
        """From `anomaly.json`'s dict (older ones have one view and no
        smoothing; keys it does not know, such as an export's
        `calibrated_threshold`, are left out)."""
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in fields.items() if k in known})

    def served(self, model, images):
        """`(reconstruction, views, outputs)`: one run of `model` on float
        `images`, its views of this detector's score (`parts`) and the served
        `outputs`: what evaluation scores and every export serves."""
        reconstruction, views, maps = parts(model, images, self.score, self.map_sigma)
        return reconstruction, views, self.outputs(views, maps)

    def outputs(self, views, maps):
        """The served anomaly outputs of a batch's `views` and per-view `maps`
        (`parts` of this detector's score): `anomaly_score`, `anomaly_map`,
        `normalized_score` (the threshold at 0.5) and `is_anomaly` (score
        above the threshold)."""
        views = tf.convert_to_tensor(views)
        constants = tf.cast(self.view_constants, views.dtype)
        threshold = tf.cast(self.threshold, views.dtype)
        score = combine(views, constants)
        # "map_max"'s maps are smoothed already (`parts`: its score is theirs).
        sigma = 0.0 if self.score == "map_max" else self.map_sigma
        return {"anomaly_score": score,
                "anomaly_map": combine_maps(views, maps, constants, sigma),
                "normalized_score": 0.5 * score / threshold,
                "is_anomaly": score > threshold}


def traced(model, kind=None, detector=None, sigma=0.0, shape=None):
    """A tf.function of a batch of float images `[None, *shape]` (default
    the model's `image_shape`), traced once for any batch: `{reconstruction,
    views}` from one run of the model (`parts`, views of `kind`, "map_max" of
    maps smoothed by `sigma`), or with `detector` its views and `outputs`
    instead (`Detector.served`, which has its own kind and sigma): one graph,
    not the model called eagerly layer by layer."""
    spec = tf.TensorSpec((None, *(shape or model.image_shape)), tf.float32)

    @tf.function(input_signature=[spec])
    def run(images):
        images = tf.cast(images, model.outputs[0].dtype)  # a float64 model's: float64
        if detector is None:
            reconstruction, views, _ = parts(model, images, kind, sigma)
            return {"reconstruction": reconstruction, "views": views}
        reconstruction, views, outputs = detector.served(model, images)
        return {"reconstruction": reconstruction, "views": views, **outputs}

    return run


def views_of(model, images, kind, batch_size, sigma=0.0):
    """`[n, views]` numpy: the views (`parts`) of `images` (an `Images`, or
    an array), read chunk by chunk through one traced graph."""
    return outputs_of(model, images, batch_size, kind=kind, sigma=sigma)["views"]


def outputs_of(model, images, batch_size, kind=None, detector=None, sigma=0.0):
    """`traced(model, kind, detector, sigma)`'s outputs for `images` (an
    `Images`, or an array), numpy, read chunk by chunk."""
    function = traced(model, kind, detector, sigma)
    pieces = [in_batches(function, chunk, batch_size)
              for chunk in data_lib.as_images(images).float_chunks(batch_size)]
    if not pieces:
        return {"views": np.zeros((0, len(model.view_names())), np.float32)}
    return {name: np.concatenate([piece[name] for piece in pieces]) for name in pieces[0]}


def in_batches(function, images, batch_size):
    """`function`'s dict of outputs for the array `images`, batch by batch,
    as numpy arrays concatenated."""
    parts = [function(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
    return {name: np.concatenate([part[name].numpy() for part in parts]) for name in parts[0]}
