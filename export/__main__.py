"""`python -m export`, from a checkout: the `keras-ae-export` command
(keras_ae/commands/export.py)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads

from keras_ae.commands import export  # noqa: E402

export.run()
