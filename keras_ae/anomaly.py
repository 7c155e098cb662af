"""Anomaly detection: a score per image, a threshold calibrated on normal
images, and how well the two separate normal from anomalous test images.

A model trained on normal images only (`--normal_classes`) reconstructs them
better than anything else, so its reconstruction error scores anomalies:

    mse     the image's mean squared error (what `reconstruction_error` serves)
    top_k   the mean of its worst TOP_FRACTION of squared pixel errors: a small
            defect on a large image moves it, where it barely moves the mean

A model scores an image in one or more views (`anomaly_views`): the plain
variants by that error alone, the restoration detector
(`keras_ae.models.restoration`) by the error of restoring each rotated view
and its head's surprise at each. The score is the mean over views of each
divided by its constant (`combine`), the view's mean on the held-out normal
validation images (`view_constants`; 1 for a single view).

The threshold is the score that `1 - fpr` of the validation images stay at or
below (`calibrate`), so about `fpr` of normal images are flagged. Exports
also give `normalized_score = 0.5 * score / threshold`, the threshold at 0.5.
The views and the score are computed by the same TensorFlow functions in
training's evaluation and in every exported signature alike.
"""

import dataclasses
import math
import os
import typing
import weakref

from absl import logging

import numpy as np
import tensorflow as tf

from keras_ae import choices
from keras_ae import data as data_lib
from keras_ae import files
from keras_ae import model_dir
from keras_ae import plots
from keras_ae.models import autoencoder

SCORES = choices.ANOMALY_SCORES
TOP_FRACTION = autoencoder.TOP_FRACTION


class CalibrationError(ValueError):
    """Too few validation images for the asked false-positive rate."""


score = autoencoder.image_error  # an image's reconstruction error, "mse" or "top_k"


def combine(views, constants):
    """float32 `[batch]` anomaly scores from `[batch, views]` errors (a model's
    `anomaly_views`): the mean over views of each divided by its constant."""
    return tf.reduce_mean(tf.convert_to_tensor(views) / constants, axis=1)


def combine_maps(views, maps, constants, sigma=0.0):
    """float32 `[batch, height, width]` anomaly maps: each pixel scored as
    `combine` scores the image, the mean over views of each divided by its
    constant, where `maps` (`[batch, k, height, width]`, a model's
    `anomaly_views(..., maps=True)`) gives the first k views per pixel and the
    other views (the restoration detector's head: of the whole image) count
    alike at every pixel; then `smooth`ed by a Gaussian of `sigma` pixels.
    Unsmoothed, with the "mse" score, a map's mean is the image's score;
    with "top_k", the score averages the worst of each view's errors instead
    of all of them."""
    views, maps = tf.convert_to_tensor(views), tf.convert_to_tensor(maps)
    constants = tf.convert_to_tensor(constants, tf.float32)
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


def smooth(maps, sigma):
    """`maps` (`[batch, height, width]`) blurred by a Gaussian of `sigma`
    pixels (0: as they are), rows then columns, the edges reflected: a
    reconstruction's error is scattered over a defect's pixels and speckled
    elsewhere, and the blur gathers it. Convolutions and a mirror pad, so
    TFLite runs it."""
    if not sigma:
        return maps
    maps = tf.convert_to_tensor(maps)[..., None]  # [batch, height, width, 1]
    for axis in (1, 2):
        kernel = gaussian(sigma, maps.shape[axis])
        padding, shape = [[0, 0]] * 4, [1, 1, 1, 1]
        padding[axis], shape[axis - 1] = [len(kernel) // 2] * 2, -1
        maps = tf.nn.conv2d(tf.pad(maps, padding, mode="REFLECT"), kernel.reshape(shape),
                            strides=1, padding="VALID")
    return maps[..., 0]


def view_constants(validation_views):
    """Each view's normalising constant: its mean on the normal validation
    images, so that every view weighs alike in `combine`; 1 for a model with
    one view, whose score is then its error as it is."""
    validation_views = np.asarray(validation_views, np.float64)
    if validation_views.shape[1] == 1:
        return [1.0]
    return [float(m) for m in np.maximum(validation_views.mean(axis=0), 1e-12)]


def needed_images(fpr):
    """Validation images needed to calibrate at `fpr`: with fewer, not one
    normal image could fall above the threshold."""
    return math.ceil(1 / fpr - 1e-9)


def calibrate(validation_scores, fpr):
    """The threshold: the smallest validation score that at least `1 - fpr`
    of the validation scores are at or below."""
    scores = np.sort(np.asarray(validation_scores, np.float64))
    if len(scores) < needed_images(fpr):
        raise CalibrationError(
            f"{len(scores)} validation images cannot calibrate a false-positive rate of "
            f"{fpr:g}: that needs at least {needed_images(fpr)}; raise "
            "--validation_fraction, or raise --anomaly_fpr")
    return float(scores[math.ceil((1 - fpr) * len(scores) - 1e-9) - 1])


def auroc(scores, anomalous):
    """Area under the ROC curve (ties count a half): the chance that an
    anomalous image scores above a normal one. None without both kinds."""
    scores, anomalous = np.asarray(scores, np.float64), np.asarray(anomalous, bool)
    positives, negatives = anomalous.sum(), (~anomalous).sum()
    if not positives or not negatives:
        return None
    ranks = _average_ranks(scores)
    return float((ranks[anomalous].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


def average_precision(scores, anomalous):
    """Average precision: precision at each distinct score (taken as a
    threshold, descending), weighted by the recall it adds. None without
    anomalous images."""
    scores, anomalous = np.asarray(scores, np.float64), np.asarray(anomalous, bool)
    if not anomalous.any():
        return None
    order = np.argsort(-scores, kind="stable")
    scores, anomalous = scores[order], anomalous[order]
    last_of_tie = np.r_[scores[1:] != scores[:-1], True]  # thresholds: distinct scores
    true_positives = np.cumsum(anomalous)[last_of_tie]
    flagged = np.arange(1, len(scores) + 1)[last_of_tie]
    recall = true_positives / anomalous.sum()
    precision = true_positives / flagged
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_curve(scores, anomalous):
    """`(false-positive rates, true-positive rates)` at every distinct score."""
    scores, anomalous = np.asarray(scores, np.float64), np.asarray(anomalous, bool)
    order = np.argsort(-scores, kind="stable")
    scores, anomalous = scores[order], anomalous[order]
    last_of_tie = np.r_[scores[1:] != scores[:-1], True]
    true_positives = np.r_[0, np.cumsum(anomalous)[last_of_tie]]
    false_positives = np.r_[0, np.cumsum(~anomalous)[last_of_tie]]
    return (false_positives / max(1, (~anomalous).sum()),
            true_positives / max(1, anomalous.sum()))


def at_threshold(scores, anomalous, threshold):
    """False- and true-positive rates, precision and F1 of `score > threshold`."""
    scores, anomalous = np.asarray(scores), np.asarray(anomalous, bool)
    flagged = scores > threshold
    true_positives = int(np.sum(flagged & anomalous))
    rates = {
        "fpr": float(np.mean(flagged[~anomalous])) if (~anomalous).any() else None,
        "tpr": float(np.mean(flagged[anomalous])) if anomalous.any() else None,
        "precision": true_positives / flagged.sum() if flagged.any() else None,
    }
    if rates["tpr"] is not None and rates["precision"] is not None and true_positives:
        rates["f1"] = 2 * rates["precision"] * rates["tpr"] / (rates["precision"] + rates["tpr"])
    else:
        rates["f1"] = 0.0 if anomalous.any() else None
    return rates


def regions(masks):
    """int64 `[n, height, width]`: each 8-connected region of the boolean
    `masks` numbered (1, 2, ... in no particular order; 0 where False).

    Labels spread to the smallest among neighbours and then jump along the
    labels they point to, so a region of any shape takes a few passes."""
    masks = np.asarray(masks, bool)
    size = masks.size
    labels = np.where(masks.ravel(), np.arange(size), size)  # size: background
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    height, width = masks.shape[1:]
    while True:
        grid = np.pad(labels.reshape(masks.shape), ((0, 0), (1, 1), (1, 1)),
                      constant_values=size)
        least = labels.reshape(masks.shape).copy()
        for dy, dx in offsets:
            np.minimum(least, grid[:, 1 + dy:1 + dy + height, 1 + dx:1 + dx + width], out=least)
        least = np.where(masks, least, size).ravel()
        pointed = np.append(least, size)
        while True:  # jump: each label becomes the label of the pixel it names
            jumped = pointed[pointed[:-1]]
            if np.array_equal(jumped, pointed[:-1]):
                break
            pointed[:-1] = jumped
        if np.array_equal(pointed[:-1], labels):
            break
        labels = pointed[:-1]
    _, numbered = np.unique(labels, return_inverse=True)
    return np.where(masks, numbered.reshape(masks.shape) + 1, 0)


def pixel_auroc(maps, masks):
    """AUROC over every pixel of `maps` (`[n, height, width]`) against the
    ground-truth `masks` (True = defect); None without both kinds of pixel."""
    return auroc(np.ravel(maps), np.ravel(masks))


def pro(maps, masks, max_fpr=0.3):
    """The per-region overlap (Bergmann et al., MVTec AD, IJCV 2021): the mean
    over defect regions of the share of each region flagged, integrated over
    the false-positive rate of defect-free pixels up to `max_fpr` and divided
    by it (1 is perfect). Every region weighs alike, however small: a
    detector cannot earn it by finding the largest defect only. None without
    regions or defect-free pixels.

    Exact at every distinct score: flagging the pixels in descending order,
    a region's pixel adds 1 / (regions × its size) to the overlap and a
    defect-free pixel 1 / (their count) to the false-positive rate."""
    numbered = regions(masks).ravel()
    count = numbered.max()
    background = numbered == 0
    if not count or not background.any():
        return None
    sizes = np.bincount(numbered)
    weights = np.where(background, 0.0, 1.0 / (count * sizes[numbered]))
    scores = np.ravel(maps)
    order = np.argsort(-scores, kind="stable")
    descending = scores[order]
    last_of_tie = np.r_[descending[1:] != descending[:-1], True]
    overlap = np.r_[0.0, np.cumsum(weights[order])[last_of_tie]]
    fpr = np.r_[0.0, np.cumsum(background[order])[last_of_tie] / background.sum()]
    kept = fpr <= max_fpr
    end = np.interp(max_fpr, fpr, overlap)  # fpr rises: the curve at max_fpr
    fpr, overlap = np.r_[fpr[kept], max_fpr], np.r_[overlap[kept], end]
    return float(np.sum(np.diff(fpr) * (overlap[1:] + overlap[:-1]) / 2) / max_fpr)


def _average_ranks(values):
    """1-based ranks of `values`, ties given the mean of their ranks."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    unique, inverse = np.unique(values, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    counts = np.bincount(inverse)
    return (sums / counts)[inverse]


@dataclasses.dataclass(frozen=True)
class Detector:
    """What a calibrated detector is: stored as `anomaly.json`."""

    score: str
    threshold: float
    fpr: float
    normal_classes: tuple
    validation_images: int
    validation_quantiles: dict  # "50", "90", "99", "max": validation scores
    views: tuple = ("reconstruct",)  # the model's `anomaly_views`, named
    view_constants: tuple = (1.0,)  # what `combine` divides each view by
    map_sigma: float = 0.0  # pixels: how `combine_maps` smooths the map


class Scoring(typing.NamedTuple):
    """What an exported detector computes with (`Detector`'s served part)."""

    kind: str
    threshold: float
    constants: tuple
    map_sigma: float = 0.0

    @classmethod
    def of(cls, detector):
        """From `anomaly.json`'s dict; older ones have one view and no smoothing."""
        return cls(detector["score"], detector["threshold"],
                   tuple(detector.get("view_constants", (1.0,))), detector.get("map_sigma", 0.0))


def normal_ids(data, normal_classes, dataset):
    """The label ids of `normal_classes` (ids, or the names in
    `data.class_names`); ValueError naming the classes there are."""
    names = list(data.class_names)
    count = max(len(names), int(max(data.train_labels.max(), data.test_labels.max())) + 1)
    listed = ", ".join(repr(n) for n in names) if names else f"0 to {count - 1}"
    ids = []
    for wanted in normal_classes:
        wanted = str(wanted)
        if wanted in names:
            ids.append(names.index(wanted))
        elif wanted.isdigit() and int(wanted) < count and not names:
            ids.append(int(wanted))
        else:
            raise ValueError(f"class {wanted!r} is not one of {dataset}'s classes: {listed}")
    return sorted(set(ids))


def normal_split(data, ids, validation_fraction, fpr, seed):
    """`data` for one-class training: training images of the classes `ids`
    only, less a seeded `validation_fraction` of them (`validation_images`,
    of the same kind) to calibrate on; the test split whole, labels as they are."""
    normal = np.flatnonzero(np.isin(data.train_labels, ids))
    rng = np.random.default_rng([seed, 1_000_003])
    count = round(validation_fraction * len(normal))
    if count < needed_images(fpr):
        raise CalibrationError(
            f"{validation_fraction:g} of the {len(normal)} normal training images is {count} "
            f"validation images; a false-positive rate of {fpr:g} needs at least "
            f"{needed_images(fpr)}: raise --validation_fraction, or --anomaly_fpr")
    held_out = np.zeros(len(normal), bool)
    held_out[rng.choice(len(normal), count, replace=False)] = True
    train, validation = normal[~held_out], normal[held_out]
    images = data.train_images  # streamed, both stay files
    return dataclasses.replace(
        data, train_images=images.subset(train), train_labels=data.train_labels[train],
        validation_images=images.subset(validation))


def views_of(model, images, kind, batch_size, maps=False):
    """`[n, views]` numpy: the model's `anomaly_views` of `images` (an
    `Images`, or an array), read chunk by chunk through one traced graph;
    with `maps`, `(views, [n, k, height, width] per-view maps)` from the same pass."""
    views_function = _traced_views(model, kind, maps)
    outputs = [tf.nest.map_structure(lambda t: t.numpy(), views_function(chunk[i:i + batch_size]))
               for chunk in data_lib.as_images(images).float_chunks(batch_size)
               for i in range(0, len(chunk), batch_size)]
    if maps:
        return tuple(np.concatenate(parts) for parts in zip(*outputs))
    return np.concatenate(outputs) if outputs else np.zeros((0, 1), np.float32)


_TRACED = weakref.WeakKeyDictionary()  # model → {kind: tf.function}


def _traced_views(model, kind, maps=False):
    """`model.anomaly_views(images, kind, maps)` as a tf.function of any
    batch, traced once per model and arguments: called eagerly, layer by
    layer, it took 8 s of a conv detector's 20 s evaluation on 10,000 test images."""
    functions = _TRACED.setdefault(model, {})
    if (kind, maps) not in functions:
        this = weakref.ref(model)  # the function must not keep its model alive
        spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
        functions[kind, maps] = tf.function(
            lambda images: this().anomaly_views(images, kind, maps=maps), input_signature=[spec])
    return functions[kind, maps]


def check_separates(validation_scores):
    """Raises CalibrationError if every validation score is the same: such a
    detector separates nothing, whatever its threshold."""
    if np.ptp(validation_scores) <= 1e-6 * np.max(np.abs(validation_scores)):
        raise CalibrationError(
            f"the {len(validation_scores)} validation images all score "
            f"{validation_scores[0]:.6g}: the model cannot tell one image from another, so "
            "its detector separates nothing; check that the normal images differ, and train "
            "longer or at a lower --learning_rate")


def evaluate(model, data, config, directory, test_views):
    """Calibrates the detector on `data.validation_images` (each view's
    constant, then the threshold), tests it on the test images' views
    (`test_views`, `views_of`), writes `anomaly.json` and the figures to
    `directory`; its metrics."""
    options, batch_size = config.anomaly, config.data.batch_size
    validation_views = views_of(model, data.validation_images, options.anomaly_score, batch_size)
    constants = view_constants(validation_views)
    validation = combine(validation_views, constants).numpy()
    check_separates(validation)
    threshold = calibrate(validation, options.anomaly_fpr)
    detector = Detector(
        score=options.anomaly_score, threshold=threshold, fpr=options.anomaly_fpr,
        normal_classes=options.normal_classes, validation_images=len(validation),
        validation_quantiles={q: float(np.quantile(validation, float(q) / 100))
                              for q in ("50", "90", "99")} | {"max": float(validation.max())},
        views=tuple(model.view_names()), view_constants=tuple(constants),
        map_sigma=options.anomaly_map_sigma or 0.0,
    )
    files.write_json(os.path.join(directory, model_dir.ANOMALY_FILE),
                     dataclasses.asdict(detector))
    anomalous = ~np.isin(data.test_labels, normal_ids(data, options.normal_classes,
                                                      config.data.dataset))
    test_scores = combine(test_views, constants).numpy()
    rates = at_threshold(test_scores, anomalous, threshold)
    area = auroc(test_scores, anomalous)
    if area is None:
        logging.warning("AUROC and average precision undefined: the test split has %s",
                        "no anomalous images" if not anomalous.any() else "no normal images")
    _save_figures(directory, data, test_scores, anomalous, threshold, area)
    pixel_metrics = {}
    if data.test_masks is not None:
        pixel_metrics = _pixel_metrics(model, data, anomalous, detector, batch_size, directory,
                                       test_scores)
    return {
        "anomaly_threshold": threshold,
        "test_normal_images": int((~anomalous).sum()),
        "test_anomalous_images": int(anomalous.sum()),
        "test_auroc": area,
        "test_average_precision": average_precision(test_scores, anomalous),
        **{f"test_{name}_at_threshold": value for name, value in rates.items()},
        **pixel_metrics,
    }


def maps_of(model, images, detector, batch_size):
    """float32 `[n, height, width]` numpy: the anomaly maps of `images` (an
    array) by `detector` (a `Detector`), as exports serve them (`combine_maps`)."""
    maps_function = _traced_views(model, detector.score, maps=True)
    return np.concatenate([
        combine_maps(*maps_function(images[i:i + batch_size]), detector.view_constants,
                     detector.map_sigma).numpy()
        for i in range(0, len(images), batch_size)])


def _pixel_metrics(model, data, anomalous, detector, batch_size, directory, scores):
    """Pixel AUROC and PRO over the test images with a ground truth: the
    normal ones (no defect) and those with a mask; anomalous images without
    a mask are counted and left out. Draws `anomaly_maps.png`."""
    masks = data.test_masks
    has_mask = np.zeros(len(anomalous), bool)
    has_mask[masks.indices] = True
    missing = int(np.sum(anomalous & ~has_mask))
    if missing:
        logging.warning("%d anomalous test images have no mask in %s: pixel metrics leave "
                        "them out", missing, masks.directory)
    chosen = np.flatnonzero(~anomalous | has_mask)
    pixels = data_lib.to_float(data.test_images.subset(chosen).in_memory()).numpy()
    maps = maps_of(model, pixels, detector, batch_size)
    truth = np.zeros(maps.shape, bool)
    truth[np.searchsorted(chosen, masks.indices)] = masks.pixels
    # Where the defects are, and what lights up where there are none.
    order = np.argsort(-scores[chosen], kind="stable")
    masked = anomalous[chosen[order]]
    shown = np.concatenate([order[masked][:5], order[~masked][:10 - min(5, masked.sum())]])
    plots.save_image_rows(
        os.path.join(directory, model_dir.MAPS_FIGURE_FILE),
        [pixels[shown], plots.heat_overlay(pixels[shown], maps[shown], np.quantile(maps, 0.995)),
         truth[shown][..., None].astype(np.float32)],
        [f"the {min(5, masked.sum())} highest-scoring test images with a defect mask, then "
         "the highest-scoring normal ones",
         "their anomaly maps over them (brightest: the test images' top 0.5% of pixel scores)",
         "their ground-truth masks (white: defect)"])
    return {"test_pixel_auroc": pixel_auroc(maps, truth), "test_pro": pro(maps, truth),
            "test_masked_images": len(masks.indices),
            "test_anomalous_images_without_mask": missing}


def _save_figures(directory, data, scores, anomalous, threshold, area):
    plots.save_score_histograms(os.path.join(directory, model_dir.SCORES_FIGURE_FILE), scores,
                                anomalous, threshold)
    if area is not None:
        plots.save_roc(os.path.join(directory, model_dir.ROC_FIGURE_FILE),
                       *roc_curve(scores, anomalous), area)
    highest = np.argsort(-scores, kind="stable")[:40]
    labels = data.test_labels[highest]
    names = [data.class_names[i] if i < len(data.class_names) else f"class {i}" for i in labels]
    plots.save_scored_images(
        os.path.join(directory, model_dir.HIGHEST_SCORES_FIGURE_FILE),
        data_lib.to_float(data.test_images.subset(highest).in_memory()).numpy(),
        scores[highest], anomalous[highest], names, threshold)
