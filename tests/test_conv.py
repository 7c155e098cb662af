"""The conv variant: strided encoder, transpose or nearest-neighbour decoder."""

import keras
import numpy as np
import pytest

import keras_ae
from keras_ae.models import backbone
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


@pytest.mark.parametrize("variant", list(keras_ae.VARIANTS))
@pytest.mark.parametrize("upsampling", ["nearest", "transpose"])
def test_any_size_comes_back_at_its_own_size(variant, upsampling):
    accepted = keras_ae.models.option_names(variant)
    if "upsampling" not in accepted:
        pytest.skip(f"{variant} has no upsampling")
    options = {name: value for name, value in
               {"filters": (4, 4, 4), "upsampling": upsampling, "latent_dim": 2}.items()
               if name in accepted}
    for shape in [(100, 75, 3), (13, 9, 1)]:
        model = keras_ae.build(variant, shape, **options)
        # The images it serves (a tiled model's `input_shape` is its tile's).
        assert tuple(model.image_shape) == shape, (variant, shape)
        assert model(np.zeros((2, *shape), "float32")).shape == (2, *shape)


def test_feature_sizes_halve_rounding_up_and_refuse_too_small_images():
    assert backbone.feature_sizes((100, 75, 3), (8, 16, 32)) == [
        (100, 75), (50, 38), (25, 19), (13, 10)]
    with pytest.raises(ValueError, match="too small for 4 stride-2 levels.*--image_size "
                                         "or fewer --filters"):
        keras_ae.build("conv", (5, 30, 1), filters=(8, 8, 8, 8))


def test_build_rejects_unknown_variant_and_options():
    with pytest.raises(ValueError, match="valid variants: contractive, conv, denoising, draem, linear"):
        keras_ae.build("nope", (28, 28, 1))
    with pytest.raises(ValueError, match="does not take option.*upsampling"):
        keras_ae.build("linear", (28, 28, 1), upsampling="nearest")
