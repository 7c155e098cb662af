"""Run configuration: one small dataclass per concern, validated on creation.

A `RunConfig` is written to `model_dir/config.json` so that a run can be
reproduced and resumed. Field names are the `train.py` flag names.

Example:

    config = RunConfig(
        data=DataConfig(dataset="fashion_mnist", batch_size=256),
        model=ModelConfig(variant="conv", latent_dim=16),
        train=TrainConfig(epochs=3, model_dir="/tmp/run"),
    )
"""

import dataclasses
import json

from keras_ae import data as data_lib
from keras_ae import distribute
from keras_ae import models


class ConfigError(ValueError):
    """A configuration value is invalid. `field` names the offending field."""

    def __init__(self, field, message):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _require_positive(config, *fields):
    for field in fields:
        value = getattr(config, field)
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise ConfigError(field, f"must be a positive integer, got {value!r}")


def _require_choice(field, value, choices):
    if value not in choices:
        raise ConfigError(
            field, f"unknown value {value!r}; valid values: {', '.join(choices)}"
        )


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they are fed.

    Attributes:
        dataset: dataset name, one of `keras_ae.data.DATASETS`. Default "mnist".
        data_dir: directory searched first for a local copy (and TFDS's data
            directory). Default None: only the standard places.
        train_examples: use only the first N training examples. Default None: all.
        batch_size: global batch size, split across all replicas. Default 128.
        noise_stddev: stddev of the Gaussian noise added on the fly to the
            inputs; 0 feeds `(x, x)` pairs. Default 0.
        seed: seed of shuffling and noise; the same seed gives the same stream.
        download: whether TensorFlow Datasets may download when no local copy
            exists. Default True.
    """

    dataset: str = "mnist"
    data_dir: str | None = None
    train_examples: int | None = None
    batch_size: int = 128
    noise_stddev: float = 0.0
    seed: int = 0
    download: bool = True

    def __post_init__(self):
        _require_choice("dataset", self.dataset, list(data_lib.DATASETS))
        _require_positive(self, "train_examples", "batch_size")
        if not self.noise_stddev >= 0:  # also rejects NaN
            raise ConfigError(
                "noise_stddev", f"must be >= 0, got {self.noise_stddev!r}"
            )


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which autoencoder to build.

    Attributes:
        variant: one of `keras_ae.models.VARIANTS`. Default "linear", the
            reference tutorial's model.
        latent_dim: size of the code. Default 32.
        upsampling: "conv" only: "nearest" or "transpose". Default None: the
            variant's default.
    """

    variant: str = "linear"
    latent_dim: int = 32
    upsampling: str | None = None

    def __post_init__(self):
        _require_choice("variant", self.variant, list(models.VARIANTS))
        _require_positive(self, "latent_dim")
        accepted = models.option_names(self.variant)
        for name, value in self.options().items():
            if name not in accepted:
                raise ConfigError(
                    name,
                    f"does not apply to variant {self.variant!r} "
                    f"(it takes: {', '.join(accepted)})",
                )
        if self.upsampling is not None:
            _require_choice("upsampling", self.upsampling, models.UPSAMPLING_MODES)

    def options(self):
        """The builder options that are set, as keyword arguments."""
        fields = dataclasses.asdict(self)
        del fields["variant"]
        return {name: value for name, value in fields.items() if value is not None}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Attributes:
        model_dir: where config, checkpoints, logs, metrics and figures go.
        strategy: one of `keras_ae.distribute.STRATEGIES`. Default "default".
        tpu: TPU name or address for `strategy="tpu"`. Default None.
        epochs: passes over the training split. Default 10.
        learning_rate: Adam learning rate. Default 1e-3, the tutorial's.
        steps_per_execution: training steps run per call into the graph;
            more cuts host overhead. Default 1.
    """

    model_dir: str
    strategy: str = "default"
    tpu: str | None = None
    epochs: int = 10
    learning_rate: float = 1e-3
    steps_per_execution: int = 1

    def __post_init__(self):
        _require_choice("strategy", self.strategy, list(distribute.STRATEGIES))
        _require_positive(self, "epochs", "steps_per_execution")
        if not self.learning_rate > 0:
            raise ConfigError(
                "learning_rate", f"must be > 0, got {self.learning_rate!r}"
            )
        if not self.model_dir:
            raise ConfigError("model_dir", "must name a directory")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything a training run needs; saved as `config.json` in `model_dir`."""

    data: DataConfig
    model: ModelConfig
    train: TrainConfig

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        fields = json.loads(text)
        return cls(
            data=DataConfig(**fields["data"]),
            model=ModelConfig(**fields["model"]),
            train=TrainConfig(**fields["train"]),
        )
