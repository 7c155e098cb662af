"""A calibrated detector tested on the test split as evaluation's one pass
reads it: each chunk's scores and maps added (`add`), then its figures of
merit and figures (`finish`). What it holds grows only by one score per image:
pixel metrics are histograms (`pixel_metrics`), figures keep only the images
they draw (`figures.Highest`)."""

from absl import logging
import numpy as np

from keras_ae.anomaly import calibration
from keras_ae.anomaly import figures
from keras_ae.anomaly import metrics
from keras_ae.anomaly import normal
from keras_ae.anomaly import pixel_metrics


class DetectorTest:
    """The test figures of `detector` (a `scoring.Detector`) on `data`'s test
    split (labels, class names, masks), `dataset` its name for errors."""

    def __init__(self, detector, data, dataset):
        self.detector = detector
        self.labels, self.names, self.masks = data.test_labels, data.class_names, data.test_masks
        self.anomalous = ~np.isin(self.labels,
                                  normal.normal_ids(data, detector.normal_classes, dataset))
        self.scores = []
        self.highest = figures.Highest(figures.HIGHEST_IMAGES)
        if self.masks is not None:
            self.pixels = pixel_metrics.PixelMetrics()
            self.defective = figures.Highest(figures.SHOWN_DEFECTS)
            self.normal = figures.Highest(figures.MAP_IMAGES)

    def add(self, start, images, outputs):
        """Adds test images `start ...`: float `images` and the detector's
        `outputs` for them (`scoring.traced`: score and map)."""
        rows = slice(start, start + len(images))
        scores, anomalous = outputs["anomaly_score"], self.anomalous[rows]
        self.scores.append(scores)
        self.highest.add(scores, images=images, labels=self.labels[rows], anomalous=anomalous)
        if self.masks is None:
            return
        masks, has_mask = self.masks.chunk(start, start + len(images))
        maps = outputs["anomaly_map"]
        # Anomalous images without a mask have no ground truth: left out.
        known = ~anomalous | has_mask
        self.pixels.update(maps[known], masks[known])
        for highest, chosen in ((self.defective, anomalous & has_mask), (self.normal, ~anomalous)):
            highest.add(scores[chosen], images=images[chosen], maps=maps[chosen],
                        masks=masks[chosen])

    def finish(self, directory):
        """The detector's test metrics; writes its figures to `directory`."""
        scores, anomalous = np.concatenate(self.scores), self.anomalous
        threshold = self.detector.threshold
        area = metrics.auroc(scores, anomalous)
        if area is None:
            logging.warning("AUROC and average precision undefined: the test split has %s",
                            "no anomalous images" if not anomalous.any() else "no normal images")
        figures.save_score_figures(directory, scores, anomalous, threshold, area, self.highest,
                                   self.names)
        rates = metrics.at_threshold(scores, anomalous, threshold)
        self._check_normal_flagged(scores[~anomalous])
        return {
            "anomaly_threshold": threshold,
            "anomaly_expected_fpr": self.detector.expected_fpr,
            "test_normal_images": int((~anomalous).sum()),
            "test_anomalous_images": int(anomalous.sum()),
            "test_auroc": area,
            "test_auroc_interval": metrics.auroc_interval(scores, anomalous),
            "test_average_precision": metrics.average_precision(scores, anomalous),
            "test_auroc_by_class": self._auroc_by_class(scores),
            **{f"test_{name}_at_threshold": value for name, value in rates.items()},
            **(self._pixel_figures(directory) if self.masks is not None else {}),
        }

    def _check_normal_flagged(self, normal):
        """Warns when the threshold flags so many of the normal test images
        (their scores `normal`) that one calibrated on images of their kind
        would flag as many only by a chance below `calibration.SURPRISE`: its
        promise (train.py's "expected to flag") does not hold for them."""
        detector, flagged = self.detector, int(np.sum(normal > self.detector.threshold))
        chance = calibration.chance_of_flagging(flagged, len(normal),
                                                detector.validation_images, detector.fpr)
        if chance < calibration.SURPRISE:  # 1.0 without normal test images
            logging.warning(
                "the threshold flags %d of the %d normal test images (%.1f%%), where its %d "
                "validation images promise about %.1f%%, a chance of %.1g if they were alike: "
                "the normal test images are unlike the validation images (near copies of the "
                "training images, or taken in other conditions); calibrate on normal images "
                "taken apart from the training images, as the test's are (--validation_dir)",
                flagged, len(normal), 100 * flagged / len(normal), detector.validation_images,
                100 * calibration.expected_fpr(detector.validation_images, detector.fpr), chance)

    def _auroc_by_class(self, scores):
        """`{class name: AUROC}`: each anomalous test class's images against
        the normal ones (MVTec AD's defect types, or the other classes)."""
        normal = scores[~self.anomalous]
        by_class = {}
        for label in np.unique(self.labels[self.anomalous]):
            chosen = scores[self.labels == label]
            name = self.names[label] if len(self.names) > label else str(label)
            by_class[name] = metrics.auroc(np.r_[normal, chosen],
                                           np.r_[np.zeros(len(normal), bool),
                                                 np.ones(len(chosen), bool)])
        return by_class

    def _pixel_figures(self, directory):
        """Pixel AUROC and PRO over the test images with a ground truth (the
        normal ones, and those with a mask), with the most each can differ
        from the exact figure; draws anomaly_maps.png."""
        has_mask = np.zeros(len(self.anomalous), bool)
        has_mask[self.masks.indices] = True
        missing = int(np.sum(self.anomalous & ~has_mask))
        if missing:
            logging.warning("%d anomalous test images have no mask in %s: pixel metrics leave "
                            "them out", missing, self.masks.directory)
        figures.save_maps_figure(directory, self.defective, self.normal,
                                 self.pixels.quantile(0.995))
        return {"test_pixel_auroc": self.pixels.auroc(), "test_pro": self.pixels.pro(),
                "test_pixel_auroc_bound": self.pixels.auroc_bound(),
                "test_pro_bound": self.pixels.pro_bound(),
                "test_masked_images": len(self.masks.indices),
                "test_anomalous_images_without_mask": missing}
