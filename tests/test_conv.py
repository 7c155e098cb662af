"""The conv variant: strided encoder, transpose or nearest-neighbour decoder."""

import keras
import pytest

import keras_ae
from tests.test_case import AutoencoderTestCase


class TestConvNearest(AutoencoderTestCase):
    variant = "conv"
    options = {"latent_dim": 2, "filters": (4, 8), "upsampling": "nearest"}


class TestConvTranspose(AutoencoderTestCase):
    variant = "conv"
    input_shape = (8, 8, 3)
    options = {"latent_dim": 2, "filters": (4, 8), "upsampling": "transpose"}


def _layer_types(model):
    return [type(l) for l in model.layers]


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
@pytest.mark.parametrize("upsampling", ["nearest", "transpose"])
def test_standard_shapes(shape, upsampling):
    model = keras_ae.build("conv", shape, upsampling=upsampling)
    assert model.output_shape == (None, *shape)
    assert model.encoder.output_shape == (None, 32)
    # Two stride-2 levels: the encoder's last feature map is a quarter size.
    last_conv = [l for l in model.encoder.layers if isinstance(l, keras.layers.Conv2D)][-1]
    assert last_conv.strides == (2, 2)
    assert last_conv.output.shape[1:3] == (shape[0] // 4, shape[1] // 4)


def test_decoders_use_the_requested_upsampling():
    nearest = keras_ae.build("conv", (28, 28, 1), upsampling="nearest").decoder
    transpose = keras_ae.build("conv", (28, 28, 1), upsampling="transpose").decoder
    resizes = [l for l in nearest.layers if isinstance(l, keras.layers.Resizing)]
    assert len(resizes) == 2 and all(l.interpolation == "nearest" for l in resizes)
    assert keras.layers.Conv2DTranspose not in _layer_types(nearest)
    assert _layer_types(transpose).count(keras.layers.Conv2DTranspose) == 2
    assert keras.layers.Resizing not in _layer_types(transpose)


def test_rejects_shapes_it_cannot_halve():
    with pytest.raises(ValueError, match="divisible by 4"):
        keras_ae.build("conv", (30, 30, 1))


def test_build_rejects_unknown_variant_and_options():
    with pytest.raises(ValueError, match="valid variants: linear, conv, denoising"):
        keras_ae.build("nope", (28, 28, 1))
    with pytest.raises(ValueError, match="does not take option.*upsampling"):
        keras_ae.build("linear", (28, 28, 1), upsampling="nearest")
