"""How well scores separate anomalous from normal images, and maps defects
from defect-free pixels: exact, in numpy, over arrays held whole.

Training's evaluation accumulates the pixel metrics in bounded memory instead
(`pixel_metrics.PixelMetrics`); these are its reference, and what a benchmark
uses on the maps it holds.
"""

import numpy as np

CHUNK = 2**22  # numbers per batch of `auroc_interval`'s resamples: 32 MiB of float64


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


def auroc_interval(scores, anomalous, level=0.95, resamples=1000, seed=0):
    """`(low, high)`: the `level` bootstrap interval of `auroc`, the normal
    and the anomalous images each resampled with replacement `resamples`
    times from `seed` (Efron's percentile interval); None without both kinds.

    How far the test split's AUROC could move with other images of the same
    kinds: on bench/textures.py's 60 good and 80 defective crops ±0.09 at 0.62. A
    resample is how many times it draws each image, so that an image's wins
    (the normal images below its score, ties a half) come from one sort, and
    memory stays at about CHUNK numbers per batch of resamples."""
    scores, anomalous = np.asarray(scores, np.float64), np.asarray(anomalous, bool)
    positives, negatives = scores[anomalous], np.sort(scores[~anomalous])
    if not len(positives) or not len(negatives):
        return None
    below = np.searchsorted(negatives, positives, "left")  # normal images strictly below
    at_or_below = np.searchsorted(negatives, positives, "right")
    rng = np.random.default_rng(seed)
    values, per_batch = [], max(1, CHUNK // len(scores))
    for start in range(0, resamples, per_batch):
        count = min(resamples - start, per_batch)
        negative_counts, positive_counts = (_resampled(rng, len(negatives), count),
                                            _resampled(rng, len(positives), count))
        cumulative = np.pad(np.cumsum(negative_counts, axis=1), ((0, 0), (1, 0)))
        wins = (cumulative[:, below] + cumulative[:, at_or_below]) / 2
        values.append((positive_counts * wins).sum(axis=1) / (len(positives) * len(negatives)))
    low, high = np.quantile(np.concatenate(values), [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _resampled(rng, size, count):
    """`[count, size]`: how many times each of `size` items is drawn in each
    of `count` resamples of `size` draws with replacement."""
    draws = rng.integers(0, size, (count, size)) + size * np.arange(count)[:, None]
    return np.bincount(draws.ravel(), minlength=count * size).reshape(count, size)


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
