"""AnomalyConfig: which classes are normal, and how the threshold is calibrated."""

import dataclasses
import math

from keras_ae import choices
from keras_ae.config import checks


@dataclasses.dataclass(frozen=True)
class AnomalyConfig:
    """Anomaly detection (`keras_ae.anomaly`): which classes are normal, and
    how the threshold is calibrated. Without `normal_classes`, no detector.

    Attributes:
        normal_classes: train on these classes only (label ids, or a
            folder's class names); the test split keeps every class, the
            others anomalous. Default None: no detector.
        validation_fraction: the share of the normal training images held
            out (seeded) to calibrate the threshold on, unless a folder has
            validation images of its own (`DataConfig.validation_dir`).
            Default 0.1.
        anomaly_fpr: the false-positive rate the threshold is calibrated to
            on them. Default 0.01.
        anomaly_score: "mse", "top_k" or "map_max" (see `keras_ae.anomaly`).
            Default None: the recipe's ("mse"; the restoration detector's
            "top_k"; conv's on a folder of defects "map_max").
        anomaly_map_sigma: the Gaussian (sigma in pixels of the model's input)
            that smooths the served `anomaly_map`; 0 leaves it as computed.
            Default None: the recipe's share of the image's shorter side
            (1/16; the restoration detector's 0), written in before the run.
    """

    normal_classes: tuple | None = None
    validation_fraction: float = 0.1
    anomaly_fpr: float = 0.01
    anomaly_score: str | None = None
    anomaly_map_sigma: float | None = None

    def __post_init__(self):
        if self.normal_classes is not None:
            if not self.normal_classes:
                raise checks.ConfigError("normal_classes", "names no class; e.g. 0,3 or a folder name")
            object.__setattr__(self, "normal_classes", tuple(str(c) for c in self.normal_classes))
        for field in ("validation_fraction", "anomaly_fpr"):
            if not 0 < getattr(self, field) < 1:
                raise checks.ConfigError(field, f"must be in (0, 1), got {getattr(self, field)!r}")
        if self.anomaly_score is not None:
            checks.require_choice("anomaly_score", self.anomaly_score, choices.ANOMALY_SCORES)
        if self.anomaly_map_sigma is not None and not 0 <= self.anomaly_map_sigma < math.inf:
            raise checks.ConfigError("anomaly_map_sigma", "must be a number of pixels, 0 or more, got "
                              f"{self.anomaly_map_sigma!r}")
        if self.normal_classes is None:
            for field in ("validation_fraction", "anomaly_fpr", "anomaly_score",
                          "anomaly_map_sigma"):
                if getattr(self, field) != _ANOMALY_DEFAULTS[field]:
                    raise checks.ConfigError(field, "applies to anomaly detection only: name the "
                                      "normal classes with --normal_classes")


_ANOMALY_DEFAULTS = {field.name: field.default
                     for field in dataclasses.fields(AnomalyConfig)}
