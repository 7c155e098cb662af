"""Trains an autoencoder, from a checkout: the `keras-ae-train` command.

    python train.py --variant=conv --strategy=mirrored --dataset=fashion_mnist

See keras_ae/commands/train.py, or `python train.py --help`.
"""

from keras_ae.commands import train  # sets TensorFlow's environment first

if __name__ == "__main__":
    train.run()
