"""keras-ae: autoencoders in Keras 3, trained under tf.distribute and exported.

Example:

    import keras_ae

    data = keras_ae.data.load("fashion_mnist")
    model = keras_ae.build("conv", (28, 28, 1), latent_dim=32)
    model.compile()
"""

import importlib

__version__ = "0.1.0"

_MODULES = ("config", "data", "distribute", "models", "training")
_FROM_MODELS = ("VARIANTS", "build")


def __getattr__(name):
    # Submodules load on first use, so `keras_ae.commands.client` (numpy and
    # Pillow only) starts without TensorFlow's few seconds.
    if name in _MODULES:
        return importlib.import_module(f"keras_ae.{name}")
    if name in _FROM_MODELS:
        return getattr(importlib.import_module("keras_ae.models"), name)
    raise AttributeError(f"module 'keras_ae' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_MODULES, *_FROM_MODELS])
