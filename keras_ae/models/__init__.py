"""Autoencoder variants and the one entry point that builds them."""

import contextlib
import functools

import keras
import numpy as np

from keras_ae import variants
from keras_ae.models.autoencoder import Autoencoder
from keras_ae.models.backbone import ARCHITECTURES, UPSAMPLING_MODES


@functools.cache
def _variant_classes():
    """Every variant's model class, by name; importing them registers them
    with Keras, which `load` needs. On first use, not at import: the
    variants' model modules import this package's, so that importing one of
    them first would otherwise find it half-initialized here."""
    return {name: variants.model_class(name) for name in variants.NAMES}


def __getattr__(name):
    if name == "VARIANTS":
        return _variant_classes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def option_names(variant):
    """The keyword options `build(variant, ...)` accepts, besides input_shape."""
    return list(_variant_classes()[variant].default_options())


def build(variant, input_shape, **options):
    """Builds an (uncompiled) autoencoder of the named variant.

    Args:
        variant: one of `VARIANTS` (`keras_ae.variants`).
        input_shape: image shape `(height, width, channels)`.
        **options: the variant's own options, e.g. `latent_dim=16` or, for
            "conv", `upsampling="transpose"`.

    Returns:
        An `Autoencoder` with `encoder` and `decoder` sub-models.

    Example:

        model = keras_ae.build("conv", (28, 28, 1), latent_dim=16)
        model.compile()
    """
    classes = _variant_classes()
    if variant not in classes:
        raise ValueError(
            f"unknown variant {variant!r}; valid variants: {', '.join(classes)}"
        )
    unknown = sorted(set(options) - set(option_names(variant)))
    if unknown:
        raise ValueError(
            f"variant {variant!r} does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(option_names(variant))}"
        )
    return classes[variant](input_shape, **options)


def load(path):
    """A model saved as `.keras` by a run; its classes are registered by this
    package's variants, and no code is run from the file (safe mode)."""
    _variant_classes()
    return keras.saving.load_model(path, safe_mode=True)


def weights_misfit(error):
    """Whether `error`, raised by Keras loading a model or its weights, says
    the saved weights do not fit the layers built, as when another version of
    keras-ae built them otherwise (Keras 3.15: "A total of N objects could not
    be loaded", for missing weights and for weights of other shapes)."""
    return isinstance(error, ValueError) and "could not be loaded" in str(error)


def float64_twin(model):
    """`model` rebuilt in float64 with its weights: a reference that float32
    round-off barely touches (`keras_ae.export.checks.scales`)."""
    with dtype_policy("float64"):
        twin = type(model).from_config(model.get_config())
    twin.set_weights([np.asarray(w, np.float64) for w in model.get_weights()])
    return twin


@contextlib.contextmanager
def dtype_policy(name):
    """Builds models inside with the Keras dtype policy `name` (e.g.
    "mixed_bfloat16"); None leaves the policy alone. The previous global
    policy is restored on exit; layers keep the policy they were built with.

    The variants keep their code and output layers in float32 (see
    `backbone`), as mixed precision wants.
    """
    if name is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


__all__ = ["ARCHITECTURES", "Autoencoder", "UPSAMPLING_MODES", "VARIANTS", "build", "dtype_policy",
           "float64_twin", "load", "option_names"]
