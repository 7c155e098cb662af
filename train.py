"""Trains an autoencoder, from a checkout: the `keras-ae-train` command.

    python train.py --variant=conv --strategy=mirrored --dataset=fashion_mnist

See keras_ae/commands/train.py, or `python train.py --help`.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads

from keras_ae.commands import train  # noqa: E402

if __name__ == "__main__":
    train.run()
