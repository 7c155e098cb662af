"""Run configuration: one small dataclass per concern, validated on creation.

This package declares; it does nothing. It imports no other part of keras-ae
but `keras_ae.choices` (the valid values) and the variants' declarations of
their options (`keras_ae.variants`), and nothing that imports TensorFlow, so
a configuration can be written, read and checked anywhere
(`tests/test_layout.py` holds it to that). The one file it reads is a
header: a folder of defects' first image, whose size chooses the detector
when the run names none (`RunConfig.default_variant`). A module a concern:
data.py, model.py, train.py, anomaly.py, export.py; checks.py their shared
checks.

A `RunConfig` is written to `model_dir/config.json` so that a run can be
reproduced and resumed. Field names are the `train.py` flag names. A field left
None takes its default from the variant's recipe (`keras_ae.variants`) or its
model's constructor; `keras_ae.training.resolve` writes those in before a run
starts, so that `config.json` says what ran.

An `ExportConfig` says what `keras_ae.export` makes of a trained run.

Example:

    config = RunConfig(
        data=DataConfig(dataset="fashion_mnist", batch_size=256),
        model=ModelConfig(variant="conv", latent_dim=16),
        train=TrainConfig(epochs=3, model_dir="/tmp/run"),
        anomaly=AnomalyConfig(normal_classes=("1",)),
    )
"""

import dataclasses
import json

from keras_ae import variants
from keras_ae.config.anomaly import AnomalyConfig
from keras_ae.config.checks import ConfigError
from keras_ae.config.data import DataConfig
from keras_ae.config.export import ExportConfig
from keras_ae.config.model import MODEL_OPTIONS, ModelConfig, takers
from keras_ae.config.train import TrainConfig


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything a training run needs; saved as `config.json` in `model_dir`."""

    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    anomaly: AnomalyConfig = AnomalyConfig()

    def __post_init__(self):
        if self.data.validation_dir and not self.anomaly.normal_classes:
            raise ConfigError("validation_dir", "holds the normal images a detector's threshold "
                              "is calibrated on: name the normal classes with --normal_classes")
        if self.model.variant is None:  # the tutorial's model, or a detector
            variant, _ = self.default_variant()
            object.__setattr__(self, "model", dataclasses.replace(self.model, variant=variant))

    def default_variant(self):
        """`(variant, why)`: what the run trains when it names no variant
        (`keras_ae.variants.default`), by its data."""
        return variants.default(self.anomaly.normal_classes, self.defects_layout())

    def defects_layout(self):
        """Whether the data is a folder with its own test folder, as MVTec AD's."""
        return self.data.dataset == "folder" and self.data.test_dir is not None

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        fields = json.loads(text)
        return cls(
            data=DataConfig(**fields["data"]),
            model=ModelConfig(**fields["model"]),
            train=TrainConfig(**fields["train"]),
            anomaly=AnomalyConfig(**fields.get("anomaly", {})),
        )


__all__ = ["AnomalyConfig", "ConfigError", "DataConfig", "ExportConfig", "MODEL_OPTIONS",
           "ModelConfig", "RunConfig", "TrainConfig", "takers"]
