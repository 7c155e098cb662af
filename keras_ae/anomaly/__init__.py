"""Anomaly detection: a score per image and a map per pixel, a threshold
calibrated on normal images, and how well they separate normal from anomalous.

A model trained on normal images only (`--normal_classes`) reconstructs them
better than anything else, so its reconstruction error scores anomalies:

    mse     the image's mean squared error (what `reconstruction_error` serves)
    top_k   the mean of its worst TOP_FRACTION of squared pixel errors: a small
            defect on a large image moves it, where it barely moves the mean
    map_max the anomaly map's highest pixel, after its smoothing: a defect of
            a few pixels decides it (the default of `conv` on a folder of
            defects)

One module a job:

    scoring.py        the served outputs as TensorFlow ops, and `Detector`,
                      a calibrated detector's one shape (evaluation and
                      every export call these)
    calibration.py    each view's constant and the threshold, from the
                      normal validation images
    normal.py         the normal classes, and their validation images
    metrics.py        AUROC and its bootstrap interval, average precision,
                      rates, pixel AUROC and PRO, exact over arrays held whole
    pixel_metrics.py  pixel AUROC and PRO accumulated in bounded memory
    evaluation.py     a detector tested chunk by chunk (`DetectorTest`)
    self_check.py     how well a detector trained on simulated anomalies
                      finds them in the validation images
    figures.py        its figures

The threshold is the score that `1 - fpr` of the validation images stay at or
below, so about `fpr` of normal images are flagged. Exports also give
`normalized_score = 0.5 * score / threshold`, the threshold at 0.5.
"""

from keras_ae.anomaly.calibration import CalibrationError
from keras_ae.anomaly.calibration import calibrate
from keras_ae.anomaly.calibration import calibrated_detector
from keras_ae.anomaly.calibration import chance_of_flagging
from keras_ae.anomaly.calibration import check_separates
from keras_ae.anomaly.calibration import expected_fpr
from keras_ae.anomaly.calibration import needed_images
from keras_ae.anomaly.calibration import view_constants
from keras_ae.anomaly.evaluation import DetectorTest
from keras_ae.anomaly.metrics import at_threshold
from keras_ae.anomaly.metrics import auroc
from keras_ae.anomaly.metrics import auroc_interval
from keras_ae.anomaly.metrics import average_precision
from keras_ae.anomaly.metrics import pixel_auroc
from keras_ae.anomaly.metrics import pro
from keras_ae.anomaly.metrics import regions
from keras_ae.anomaly.metrics import roc_curve
from keras_ae.anomaly.normal import normal_ids
from keras_ae.anomaly.normal import normal_split
from keras_ae.anomaly.pixel_metrics import PixelMetrics
from keras_ae.anomaly.scoring import Detector
from keras_ae.anomaly.scoring import TOP_FRACTION
from keras_ae.anomaly.scoring import blur_matrix
from keras_ae.anomaly.scoring import combine
from keras_ae.anomaly.scoring import combine_maps
from keras_ae.anomaly.scoring import gaussian
from keras_ae.anomaly.scoring import in_batches
from keras_ae.anomaly.scoring import outputs_of
from keras_ae.anomaly.scoring import parts
from keras_ae.anomaly.scoring import score
from keras_ae.anomaly.scoring import smooth
from keras_ae.anomaly.scoring import traced
from keras_ae.anomaly.scoring import views_of
from keras_ae.anomaly.self_check import simulated_check
