"""Run configuration: one small dataclass per concern, validated on creation.

This module declares; it does nothing. It imports no other part of keras-ae
but `keras_ae.choices` (the valid values), and nothing that imports
TensorFlow, so a configuration can be written, read and checked anywhere
(`tests/test_config.py` holds it to that).

A `RunConfig` is written to `model_dir/config.json` so that a run can be
reproduced and resumed. Field names are the `train.py` flag names. A field left
None takes its default from the variant's recipe (`keras_ae.recipes`) or its
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
import math
import os

from keras_ae import choices
from keras_ae.choices import FORMATS, INPUTS, QUANTIZATIONS, SCHEDULES



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


def _require_non_negative(config, *fields):
    for field in fields:
        value = getattr(config, field)
        if value is not None and not value >= 0:  # also rejects NaN
            raise ConfigError(field, f"must be >= 0, got {value!r}")


def _require_choice(field, value, choices):
    if value not in choices:
        raise ConfigError(
            field, f"unknown value {value!r}; valid values: {', '.join(choices)}"
        )


# DataConfig fields that only one kind of source reads.
_SOURCE_FIELDS = {"test_dir": "folder", "test_mask_dir": "folder", "test_fraction": "folder",
                  "skip_bad_images": "folder", "cache_dir": "folder",
                  "image_key": "tfds", "train_split": "tfds", "test_split": "tfds"}
_SOURCE_NAMES = {"folder": "--dataset=folder", "tfds": "TensorFlow Datasets names other than "
                 + ", ".join(choices.BUILT_IN_DATASETS)}


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they are fed.

    Attributes:
        dataset: one of `keras_ae.data.DATASETS` (read locally first), "folder"
            (the image files under `data_dir`), or any TensorFlow Datasets image
            dataset's name. Default "mnist".
        data_dir: the folder of images; else searched first for a local copy,
            and TFDS's data directory. Default None: only the standard places.
        train_examples: use only the first N training examples. Default None: all.
        batch_size: global batch size, split across all replicas. Default 64.
        noise_stddev: stddev of the Gaussian noise added on the fly to the
            inputs; 0 feeds `(x, x)` pairs. Default None: the recipe's.
        eval_noise_stddev: noise of the test inputs for the PSNR figures
            (`test_psnr_noisy`, `test_psnr_denoised`) and `denoising.png`; 0
            skips them. Default None: the training noise.
        seed: the run's seed: initial weights, shuffling, noise, and the
            model's own random draws (the VAE's sampling, the contractive
            penalty's estimate). Default 0.
        download: whether TensorFlow Datasets may download when no local copy
            exists. Default True.
        image_size: `(height, width)` every image is resized to. Default None:
            the data's own (resolved from the data before the run).
        channels: 1 (grey) or 3 (RGB). Default None: the data's own.
        crop_to_aspect_ratio: resize the largest centred crop of the target's
            aspect ratio rather than distort. Default False.
        test_dir: "folder": the test images' folder. Default None: a share of
            `data_dir`'s images, `test_fraction`, chosen by a hash of each
            file's path (stable as files are added).
        test_fraction: "folder" without `test_dir`. Default 0.1.
        test_mask_dir: "folder": ground-truth masks of the test images, as
            MVTec AD's `ground_truth/<defect>/<name>_mask.png`
            (`keras_ae.data.masks`); with them a detector reports pixel AUROC
            and PRO. Default None: `ground_truth/` beside `test_dir`, if there.
        skip_bad_images: "folder": leave out files that do not decode (listed
            in metrics.json) instead of failing. Default False.
        image_key: TFDS: the image feature, where there are several.
        train_split, test_split: TFDS splits, in TFDS's syntax (e.g.
            "train[:90%]"). Default "train", "test".
        input: "memory" decodes the training images into memory; "stream"
            reads them from their files batch by batch: a folder's image
            files (`keras_ae.data.image_files`) or a TFDS dataset's record files
            (`keras_ae.data.tfds_records`), not the four built-in datasets;
            "auto" streams those whose decoded training images would exceed
            `memory_limit_mib`. A streamed run reads its test and validation
            images from their files too, batch by batch. Default "auto".
        cache_dir: "folder", streamed: decode and shape each training image
            once into this folder and read it from there
            (`keras_ae.data.image_files.cached`), for formats slow to decode.
            Default None: decode every epoch.
        memory_limit_mib: the decoded size (MiB) above which "auto" streams;
            a stream's buffers hold at most half of it. Default None: a
            quarter of this machine's memory.
    """

    dataset: str = "mnist"
    data_dir: str | None = None
    train_examples: int | None = None
    batch_size: int = 64
    noise_stddev: float | None = None
    eval_noise_stddev: float | None = None
    seed: int = 0
    download: bool = True
    image_size: tuple | None = None
    channels: int | None = None
    crop_to_aspect_ratio: bool = False
    test_dir: str | None = None
    test_mask_dir: str | None = None
    test_fraction: float = 0.1
    skip_bad_images: bool = False
    image_key: str | None = None
    train_split: str = "train"
    test_split: str = "test"
    input: str = "auto"
    memory_limit_mib: int | None = None
    cache_dir: str | None = None

    def __post_init__(self):
        if not self.dataset or not all(c.isalnum() or c in "_-:/." for c in self.dataset):
            raise ConfigError("dataset", f"{self.dataset!r} is not a dataset name; valid: "
                              f"{', '.join(choices.BUILT_IN_DATASETS)}, folder, or a TFDS name")
        _require_positive(self, "train_examples", "batch_size")
        _require_non_negative(self, "noise_stddev", "eval_noise_stddev")
        if self.image_size is not None:
            size = tuple(self.image_size)  # a list from JSON or flags
            if len(size) != 2 or not all(isinstance(d, int) and d > 0 for d in size):
                raise ConfigError("image_size", f"must be HEIGHT,WIDTH, e.g. 64,48; got "
                                  f"{self.image_size!r}")
            object.__setattr__(self, "image_size", size)
        if self.channels not in (None, 1, 3):
            raise ConfigError("channels", f"must be 1 (grey) or 3 (RGB), got {self.channels!r}")
        _require_choice("input", self.input, INPUTS)
        _require_positive(self, "memory_limit_mib")
        if self.input == "stream" and self.dataset in choices.BUILT_IN_DATASETS:
            raise ConfigError("input", f"stream reads a folder's image files or a TFDS "
                              f"dataset's record files; {self.dataset} loads into memory "
                              "(--input=auto or memory)")
        if not 0 < self.test_fraction < 1:
            raise ConfigError("test_fraction", f"must be in (0, 1), got {self.test_fraction!r}")
        kind = ("folder" if self.dataset == "folder"
                else "local" if self.dataset in choices.BUILT_IN_DATASETS else "tfds")
        defaults = {field.name: field.default for field in dataclasses.fields(self)}
        for field, only in _SOURCE_FIELDS.items():
            if getattr(self, field) != defaults[field] and kind != only:
                raise ConfigError(field, f"applies to {_SOURCE_NAMES[only]} only, not to "
                                  f"dataset {self.dataset!r}")
        if self.dataset == "folder" and not self.data_dir:
            raise ConfigError("data_dir", "dataset 'folder' reads the images under "
                              "--data_dir=DIR; set it")



@dataclasses.dataclass(frozen=True)
class AnomalyConfig:
    """Anomaly detection (`keras_ae.anomaly`): which classes are normal, and
    how the threshold is calibrated. Without `normal_classes`, no detector.

    Attributes:
        normal_classes: train on these classes only (label ids, or a
            folder's class names); the test split keeps every class, the
            others anomalous. Default None: no detector.
        validation_fraction: the share of the normal training images held
            out (seeded) to calibrate the threshold on. Default 0.1.
        anomaly_fpr: the false-positive rate the threshold is calibrated to
            on them. Default 0.01.
        anomaly_score: "mse" or "top_k" (see `keras_ae.anomaly`). Default
            None: the recipe's ("mse"; the restoration detector's "top_k").
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
                raise ConfigError("normal_classes", "names no class; e.g. 0,3 or a folder name")
            object.__setattr__(self, "normal_classes", tuple(str(c) for c in self.normal_classes))
        for field in ("validation_fraction", "anomaly_fpr"):
            if not 0 < getattr(self, field) < 1:
                raise ConfigError(field, f"must be in (0, 1), got {getattr(self, field)!r}")
        if self.anomaly_score is not None:
            _require_choice("anomaly_score", self.anomaly_score, choices.ANOMALY_SCORES)
        if self.anomaly_map_sigma is not None and not 0 <= self.anomaly_map_sigma < math.inf:
            raise ConfigError("anomaly_map_sigma", "must be a number of pixels, 0 or more, got "
                              f"{self.anomaly_map_sigma!r}")
        if self.normal_classes is None:
            for field in ("validation_fraction", "anomaly_fpr", "anomaly_score",
                          "anomaly_map_sigma"):
                if getattr(self, field) != _ANOMALY_DEFAULTS[field]:
                    raise ConfigError(field, "applies to anomaly detection only: name the "
                                      "normal classes with --normal_classes")


_ANOMALY_DEFAULTS = {field.name: field.default for field in dataclasses.fields(AnomalyConfig)}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which autoencoder to build.

    Options left None take the model constructor's default; an option set for
    a variant that does not have it is an error.

    Attributes:
        variant: one of `keras_ae.choices.VARIANT_OPTIONS`, the variants of
            `keras_ae.models`. Default None: in a `RunConfig`, "linear" (the
            reference tutorial's model), or with normal classes named
            "restoration" (the anomaly detector).
        latent_dim: size of the code.
        architecture: "conv" or "dense" network (all but linear and conv).
        filters: channels of each stride-2 conv level, e.g. (32, 64) (conv
            networks).
        upsampling: conv decoders: "nearest" or "transpose".
        beta: vae: weight of the KL term.
        reconstruction: vae: "bernoulli" or "gaussian" likelihood.
        sparsity: sparse: "l1" or "kl" penalty.
        sparsity_weight: sparse: weight of the penalty.
        sparsity_target: sparse: target mean activation ρ for "kl".
        contractive_weight: contractive: λ of the Jacobian penalty.
        jacobian: contractive: "exact" or "estimate".
        jacobian_samples: contractive: samples per image for "estimate".
        decoder_filters: restoration: the decoder's channels per level.
        view_weight: restoration: weight of the view head's cross-entropy.
    """

    variant: str | None = None
    latent_dim: int | None = None
    architecture: str | None = None
    filters: tuple | None = None
    decoder_filters: tuple | None = None
    upsampling: str | None = None
    beta: float | None = None
    reconstruction: str | None = None
    sparsity: str | None = None
    sparsity_weight: float | None = None
    sparsity_target: float | None = None
    contractive_weight: float | None = None
    jacobian: str | None = None
    jacobian_samples: int | None = None
    view_weight: float | None = None

    def __post_init__(self):
        if self.variant is not None:
            _require_choice("variant", self.variant, list(choices.VARIANT_OPTIONS))
        _require_positive(self, "latent_dim")
        for name in ("filters", "decoder_filters"):
            if getattr(self, name) is not None:
                filters = tuple(getattr(self, name))  # a list from JSON or flags
                if not filters or not all(isinstance(f, int) and f > 0 for f in filters):
                    raise ConfigError(
                        name, f"must be positive integers, e.g. 32,64; got {filters!r}")
                object.__setattr__(self, name, filters)
        accepted = choices.VARIANT_OPTIONS.get(self.variant, self.options())  # None: later
        for name, value in self.options().items():
            if name not in accepted:
                raise ConfigError(
                    name,
                    f"does not apply to variant {self.variant!r} "
                    f"(it takes: {', '.join(accepted)})",
                )
        valid_values = {
            "architecture": choices.ARCHITECTURES,
            "upsampling": choices.UPSAMPLING_MODES,
            "reconstruction": choices.RECONSTRUCTIONS,
            "sparsity": choices.PENALTIES,
            "jacobian": choices.JACOBIAN_METHODS,
        }
        for name, valid in valid_values.items():
            if getattr(self, name) is not None:
                _require_choice(name, getattr(self, name), valid)
        _require_positive(self, "jacobian_samples")
        _require_non_negative(self, "beta", "sparsity_weight", "contractive_weight",
                              "view_weight")
        if self.sparsity_target is not None and not 0 < self.sparsity_target < 1:
            raise ConfigError(
                "sparsity_target", f"must be in (0, 1), got {self.sparsity_target!r}"
            )

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
        strategy: one of `keras_ae.choices.STRATEGIES`. Default "default".
        tpu: TPU name or address for `strategy="tpu"`. Default None.
        epochs: passes over the training split. Default None: the recipe's
            (10, the restoration detector's 12).
        learning_rate: Adam learning rate. Default None: the recipe's.
        learning_rate_schedule: "constant", "cosine" (from `learning_rate`
            down to 0 at the last step) or "warmup_cosine" (up from 0 over the
            first epoch, then cosine). Default None: the recipe's.
        steps_per_execution: training steps run per call into the graph;
            more cuts host overhead; must divide the steps of an epoch.
            Default None: chosen by the run (`keras_ae.training.steps.auto_steps_per_execution`:
            the largest divisor of the epoch's steps up to 100) and written in.
        jit_compile: compile the training step with XLA. Default False:
            Keras' own choice (XLA on a lone GPU, off on CPUs and under
            tf.distribute).
        deterministic: turn on TensorFlow's op determinism, so that a run
            (and a resumed run) repeats exactly where TensorFlow allows.
            Default False.
        mixed_precision: compute in 16 bits, keeping variables, the code and
            the output in float32: "mixed_float16" on GPUs, "mixed_bfloat16"
            on TPUs and CPUs. Default False.
    """

    model_dir: str
    strategy: str = "default"
    tpu: str | None = None
    epochs: int | None = None
    learning_rate: float | None = None
    learning_rate_schedule: str | None = None
    steps_per_execution: int | None = None
    jit_compile: bool = False
    deterministic: bool = False
    mixed_precision: bool = False

    def __post_init__(self):
        _require_choice("strategy", self.strategy, list(choices.STRATEGIES))
        _require_positive(self, "epochs", "steps_per_execution")
        if self.learning_rate_schedule is not None:
            _require_choice("learning_rate_schedule", self.learning_rate_schedule, SCHEDULES)
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ConfigError(
                "learning_rate", f"must be > 0, got {self.learning_rate!r}"
            )
        if not self.model_dir:
            raise ConfigError("model_dir", "must name a directory")


def _require_choices(config, field, choices):
    """Turns a comma-separated string or a list into a tuple of valid choices."""
    value = getattr(config, field)
    values = tuple(value.split(",") if isinstance(value, str) else value)
    if not values:
        raise ConfigError(field, f"must name at least one of: {', '.join(choices)}")
    for item in values:
        _require_choice(field, item, choices)
    object.__setattr__(config, field, values)


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
            the whole test split.
        calibration_examples: training images that calibrate full-integer
            quantization. Default 500.
        seed: seed of the calibration sample. Default 0.
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
            raise ConfigError("export_base", "must name a directory")
        if self.model_name is not None and (
            not self.model_name or os.sep in self.model_name or self.model_name[0] == "."
        ):
            raise ConfigError(
                "model_name", f"{self.model_name!r} must be a plain folder name"
            )
        _require_positive(self, "version", "eval_examples", "calibration_examples")
        _require_choices(self, "formats", FORMATS)
        _require_choices(self, "quantize", QUANTIZATIONS)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything a training run needs; saved as `config.json` in `model_dir`."""

    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    anomaly: AnomalyConfig = AnomalyConfig()

    def __post_init__(self):
        if self.model.variant is None:  # the tutorial's model, or the detector
            variant = (choices.DETECTOR_VARIANT if self.anomaly.normal_classes
                       else choices.DEFAULT_VARIANT)
            object.__setattr__(self, "model", dataclasses.replace(self.model, variant=variant))

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
