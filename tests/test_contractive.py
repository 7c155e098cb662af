"""The contractive variant: its Jacobian penalty, exact and estimated."""

import keras
import numpy as np
import pytest

import keras_ae
from keras_ae import variants
from keras_ae.models import backbone, jacobian
from tests.conftest import make_images
from tests.test_case import AutoencoderTestCase, assert_loss_is_mse_plus


class TestContractive(AutoencoderTestCase):
    variant = "contractive"
    options = {"latent_dim": 2, "filters": (4, 8)}


class TestContractiveDenseEstimate(AutoencoderTestCase):
    variant = "contractive"
    options = {"latent_dim": 2, "architecture": "dense", "jacobian": "estimate"}


def _finite_difference_norm_sq(encoder, image, step=1e-2):
    """||J||_F² of one image by central differences, pixel by pixel."""
    flat = image.reshape(-1).astype(np.float64)
    total = 0.0
    for j in range(flat.size):
        plus, minus = flat.copy(), flat.copy()
        plus[j] += step
        minus[j] -= step
        f = lambda v: encoder(v.reshape(1, *image.shape).astype(np.float32)).numpy()[0]
        total += np.sum(((f(plus) - f(minus)) / (2 * step)) ** 2)
    return total


@pytest.mark.parametrize("architecture", ["dense", "conv"])
def test_exact_norm_matches_finite_differences(architecture):
    keras.utils.set_random_seed(1)
    encoder = backbone.build_encoder((8, 8, 1), {"latent": (3, "sigmoid")},
                                     architecture, filters=(4, 4))
    images = np.random.default_rng(0).random((2, 8, 8, 1)).astype(np.float32)
    exact = jacobian.frobenius_norm_sq(encoder, images).numpy()
    expected = [_finite_difference_norm_sq(encoder, image) for image in images]
    np.testing.assert_allclose(exact, expected, rtol=2e-3)


def test_estimate_is_unbiased():
    keras.utils.set_random_seed(2)
    encoder = backbone.build_encoder((8, 8, 1), {"latent": (4, "sigmoid")}, "conv",
                                     filters=(4, 4))
    images = np.random.default_rng(1).random((3, 8, 8, 1)).astype(np.float32)
    exact = jacobian.frobenius_norm_sq(encoder, images).numpy()
    # 2000 samples per image: 1000 copies of each, each copy drawing its own
    # vectors (one backward pass for all), 2 samples per copy.
    copies = np.repeat(images, 1000, axis=0)
    estimates = jacobian.frobenius_norm_sq(encoder, copies, "estimate", samples=2,
                                           seed=(0, 7)).numpy()
    estimate = estimates.reshape(3, 1000).mean(axis=1)
    # Hutchinson's relative stddev per sample is at most sqrt(2): 2000 samples
    # put 10% beyond three standard deviations.
    np.testing.assert_allclose(estimate, exact, rtol=0.1)
    assert np.std(estimates.reshape(3, 1000), axis=1).min() > 0  # copies draw apart


def test_loss_is_mse_plus_weighted_jacobian_norm():
    keras.utils.set_random_seed(3)
    model = keras_ae.build("contractive", (8, 8, 1), latent_dim=3, filters=(4, 8),
                           contractive_weight=0.7)
    model.compile()
    assert_loss_is_mse_plus(
        model, TestContractive().images(count=8),
        lambda m, x: 0.7 * jacobian.frobenius_norm_sq(m.encoder, x).numpy().mean(),
    )


@pytest.mark.slow
def test_penalty_lowers_the_jacobian_norm():
    images = (make_images(256, seed=7)[..., np.newaxis] / 255.0).astype(np.float32)

    def trained_norm(weight):
        keras.utils.set_random_seed(4)
        model = keras_ae.build("contractive", (28, 28, 1), latent_dim=8,
                               filters=(8, 16), contractive_weight=weight)
        model.compile(optimizer=keras.optimizers.Adam(3e-3))
        model.fit(images, images, epochs=8, batch_size=32, verbose=0)
        metrics = variants.recipe("contractive").test_metrics(model, images[:64], 64, seed=0)
        return metrics["mean_jacobian_frobenius"]

    penalized, free = trained_norm(1.0), trained_norm(0.0)
    assert penalized < 0.7 * free, (penalized, free)
