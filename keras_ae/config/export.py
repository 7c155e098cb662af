"""ExportConfig: what to export from a trained run, and where."""

import dataclasses
import os

from keras_ae.choices import FORMATS, QUANTIZATIONS
from keras_ae.config import checks


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What to export from a trained run, and where.

    Attributes:
        export_base: directory that holds one folder per model name (TF
            Serving's `base_path` is `export_base/model_name`).
        model_name: the served model's name. Default None: the name of the
            run's `model_dir`.
        version: the numeric version folder. Default None: one past the
            highest version present (1 if none).
        formats: any of "saved_model", "tflite". Default both.
        quantize: TFLite flavours, any of "float32", "float16", "dynamic"
            (int8 weights) and "int8" (full integer, calibrated). Default all.
        overwrite: replace an existing `version`. Default False: refuse.
        eval_examples: test images the exports are checked on. Default None:
            the whole test split, or as much of it as 64 MiB of float32
            holds (`checks.IMAGE_BUDGET`: 5 RGB images of 1024x1024).
        calibration_examples: training images that calibrate full-integer
            quantization, at most as many as 64 MiB holds; for a detector
            trained on simulated anomalies, about half with anomalies pasted
            in, as in training. Default 500.
        seed: seed of the calibration sample (and its anomalies). Default 0.
        anomaly_threshold: a run with an anomaly detector: the threshold the
            export decides by. Default None: the calibrated one.
    """

    export_base: str
    model_name: str | None = None
    version: int | None = None
    formats: tuple = FORMATS
    quantize: tuple = QUANTIZATIONS
    overwrite: bool = False
    eval_examples: int | None = None
    calibration_examples: int = 500
    seed: int = 0
    anomaly_threshold: float | None = None

    def __post_init__(self):
        if not self.export_base:
            raise checks.ConfigError("export_base", "must name a directory")
        if self.model_name is not None and (
            not self.model_name or os.sep in self.model_name or self.model_name[0] == "."
        ):
            raise checks.ConfigError(
                "model_name", f"{self.model_name!r} must be a plain folder name"
            )
        checks.require_positive(self, "version", "eval_examples", "calibration_examples")
        checks.require_choices(self, "formats", FORMATS)
        checks.require_choices(self, "quantize", QUANTIZATIONS)
