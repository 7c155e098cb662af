"""`python -m export.client`, from a checkout: the `keras-ae-client` command
(keras_ae/commands/client.py)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads

from keras_ae.commands import client  # noqa: E402

if __name__ == "__main__":
    client.run()
