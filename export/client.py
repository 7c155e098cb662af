"""`python -m export.client`, from a checkout: the `keras-ae-client` command
(keras_ae/commands/client.py)."""

from keras_ae.commands import client

if __name__ == "__main__":
    client.run()
