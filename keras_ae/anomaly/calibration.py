"""The threshold: calibrated on held-out normal images, so that about `fpr` of
normal images are flagged.

Each view's constant is its mean on the validation images (`view_constants`),
so that every view weighs alike in the score; the threshold is the score that
`1 - fpr` of the validation images stay at or below (`calibrate`). Fewer than
`needed_images(fpr)` validation images cannot resolve `fpr`: the threshold is
then their highest score, and `expected_fpr` says what it flags of normal
images, 1 / (n + 1), which the run logs and `anomaly.json` keeps.
"""

import math

import numpy as np

from keras_ae.anomaly import scoring

# The chance (`chance_of_flagging`) below which evaluation says that the normal
# test images are not of the validation images' kind: 1 run in 1,000 of alike
# images is told so.
SURPRISE = 1e-3


class CalibrationError(ValueError):
    """Too few validation images for the asked false-positive rate."""


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


def rank(count, fpr):
    """The 1-based rank, among `count` ascending validation scores, of the
    threshold: the smallest that at least `1 - fpr` of them are at or below
    (the highest, with fewer than `needed_images(fpr)`)."""
    return math.ceil((1 - fpr) * count - 1e-9)


def expected_fpr(count, fpr):
    """The share of fresh normal images that a threshold calibrated to `fpr`
    on `count` validation images flags, in expectation over the draw of the
    validation images, whatever their distribution: (n - k + 1) / (n + 1) for
    the k-th of n scores (its false-positive rate is Beta(n - k + 1, k))."""
    return (count - rank(count, fpr) + 1) / (count + 1)


def chance_of_flagging(flagged, normal, count, fpr):
    """The chance that a threshold calibrated at `fpr` on `count` validation
    images flags at least `flagged` of `normal` fresh normal images, all drawn
    from one distribution: its false-positive rate is Beta(n - k + 1, k), the
    threshold the k-th of n = `count` scores (`expected_fpr`), so the count it
    flags is Beta-binomial."""
    b = rank(count, fpr)
    a = count - b + 1
    log_beta = lambda x, y: math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)
    terms = [math.lgamma(normal + 1) - math.lgamma(j + 1) - math.lgamma(normal - j + 1)
             + log_beta(j + a, normal - j + b) - log_beta(a, b)
             for j in range(max(flagged, 0), normal + 1)]
    return min(1.0, math.fsum(math.exp(t) for t in terms))


def calibrate(validation_scores, fpr):
    """The threshold: the smallest validation score that at least `1 - fpr`
    of the validation scores are at or below (`rank`). With fewer than
    `needed_images(fpr)` scores, their highest, which flags `expected_fpr`
    of normal images (a training run warns of it before it starts:
    `normal.normal_split`)."""
    scores = np.sort(np.asarray(validation_scores, np.float64))
    if not len(scores):
        raise CalibrationError("no validation images to calibrate on; raise "
                               "--validation_fraction")
    return float(scores[rank(len(scores), fpr) - 1])


def check_separates(validation_scores):
    """Raises CalibrationError if every validation score is the same: such a
    detector separates nothing, whatever its threshold."""
    if np.ptp(validation_scores) <= 1e-6 * np.max(np.abs(validation_scores)):
        raise CalibrationError(
            f"the {len(validation_scores)} validation images all score "
            f"{validation_scores[0]:.6g}: the model cannot tell one image from another, so "
            "its detector separates nothing; check that the normal images differ, and train "
            "longer or at a lower --learning_rate")


def calibrated_detector(model, validation_images, options, batch_size):
    """The `scoring.Detector` of `model` calibrated on `validation_images`
    (an `Images`) by `options` (the run's `AnomalyConfig`): each view's
    constant, then the threshold."""
    validation_views = scoring.views_of(model, validation_images, options.anomaly_score,
                                        batch_size, options.anomaly_map_sigma or 0.0)
    constants = view_constants(validation_views)
    validation = scoring.combine(validation_views, constants).numpy()
    check_separates(validation)
    return scoring.Detector(
        score=options.anomaly_score, threshold=calibrate(validation, options.anomaly_fpr),
        fpr=options.anomaly_fpr, expected_fpr=expected_fpr(len(validation), options.anomaly_fpr),
        normal_classes=options.normal_classes, validation_images=len(validation),
        validation_quantiles={q: float(np.quantile(validation, float(q) / 100))
                              for q in ("50", "90", "99")} | {"max": float(validation.max())},
        views=tuple(model.view_names()), view_constants=tuple(constants),
        map_sigma=options.anomaly_map_sigma or 0.0,
    )
