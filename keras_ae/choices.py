"""The valid values of the run's settings, in one module that imports nothing.

`keras_ae.config` validates against these, and the code that acts on a
setting (the data readers, `distribute`, `anomaly`, the TFLite exporter)
imports its values from here too (a variant's model options are declared in
its own folder, `keras_ae.variants`), so that a configuration can be
declared and checked without loading TensorFlow, and the two never disagree
(`tests/test_config.py` compares them with the code that uses them).
"""

# Data sets read locally first (`keras_ae.data.builtin`); any other name is
# "folder" or a TensorFlow Datasets name.
BUILT_IN_DATASETS = ("mnist", "fashion_mnist", "kmnist", "cifar10")
INPUTS = ("auto", "memory", "stream")
# The image files a folder holds: the extensions
# `keras.utils.image_dataset_from_directory` accepts.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker_mirrored", "tpu")
SCHEDULES = ("constant", "cosine", "warmup_cosine")

ANOMALY_SCORES = ("mse", "top_k", "map_max")

FORMATS = ("saved_model", "tflite")
QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")
