"""The valid values of the run's settings, in one module that imports nothing.

`keras_ae.config` validates against these, and the code that acts on a
setting (the data readers, `distribute`, the models, `anomaly`, the TFLite
exporter) imports its values from here too, so that a configuration can be
declared and checked without loading TensorFlow, and the two never disagree
(`tests/test_config.py` compares them with the code that uses them).
"""

# Data sets read locally first (`keras_ae.data.builtin`); any other name is
# "folder" or a TensorFlow Datasets name.
BUILT_IN_DATASETS = ("mnist", "fashion_mnist", "kmnist", "cifar10")
INPUTS = ("auto", "memory", "stream")

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker_mirrored", "tpu")
SCHEDULES = ("constant", "cosine", "warmup_cosine")

# Each variant's model options (`keras_ae.models.option_names`, less the
# `seed` a run passes from `data.seed`).
_BACKBONE = ("latent_dim", "architecture", "filters", "upsampling")
VARIANT_OPTIONS = {
    "linear": ("latent_dim",),
    "conv": ("latent_dim", "filters", "upsampling"),
    "denoising": _BACKBONE,
    "vae": (*_BACKBONE, "beta", "reconstruction"),
    "sparse": (*_BACKBONE, "sparsity", "sparsity_weight", "sparsity_target"),
    "contractive": (*_BACKBONE, "contractive_weight", "jacobian", "jacobian_samples"),
    "restoration": ("latent_dim", "filters", "decoder_filters", "upsampling", "view_weight"),
}
# The variant a run without --variant trains: the tutorial's, or with normal
# classes named the anomaly detector.
DEFAULT_VARIANT = "linear"
DETECTOR_VARIANT = "restoration"
ARCHITECTURES = ("conv", "dense")
UPSAMPLING_MODES = ("nearest", "transpose")
RECONSTRUCTIONS = ("bernoulli", "gaussian")  # vae
PENALTIES = ("l1", "kl")  # sparse
JACOBIAN_METHODS = ("exact", "estimate")  # contractive

ANOMALY_SCORES = ("mse", "top_k")

FORMATS = ("saved_model", "tflite")
QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")
