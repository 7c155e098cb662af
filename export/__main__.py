"""`python -m export`, from a checkout: the `keras-ae-export` command
(keras_ae/commands/export.py)."""

from keras_ae.commands import export  # sets TensorFlow's environment first

export.run()
