"""The denoising variant: trained on (noisy, clean) pairs, it removes noise."""

import keras
import numpy as np
import pytest

import keras_ae
from keras_ae import data, training, variants
from tests.conftest import make_images
from tests.test_case import AutoencoderTestCase


class TestDenoisingConv(AutoencoderTestCase):
    variant = "denoising"
    options = {"latent_dim": 2, "filters": (4, 8)}


class TestDenoisingDense(AutoencoderTestCase):
    variant = "denoising"
    options = {"latent_dim": 2, "architecture": "dense"}


def test_default_noise_is_half():
    assert variants.recipe("denoising").noise_stddev == 0.5
    assert variants.recipe("conv").noise_stddev == 0.0


@pytest.mark.slow
def test_training_on_noise_is_what_makes_it_denoise():
    images = make_images(256, seed=5)[..., np.newaxis]
    test = make_images(64, seed=6)[..., np.newaxis]
    noisy = np.concatenate([x for x, _ in data.eval_dataset(
        test, batch_size=64, noise_stddev=0.5, seed=0)])
    clean = test / 255.0

    def denoised_psnr(noise_stddev):
        keras.utils.set_random_seed(0)
        model = keras_ae.build("denoising", (28, 28, 1), latent_dim=8, filters=(8, 16))
        model.compile(optimizer=keras.optimizers.Adam(3e-3))
        stream = data.train_dataset(images, batch_size=32, epochs=15,
                                    noise_stddev=noise_stddev, seed=1)
        model.fit(stream, epochs=15, steps_per_epoch=8, verbose=0)
        return training.psnr(clean, model.predict(noisy, verbose=0))

    with_noise, without_noise = denoised_psnr(0.5), denoised_psnr(0.0)
    assert with_noise > training.psnr(clean, noisy) + 3, "no gain over the noisy input"
    assert with_noise > without_noise + 1, (with_noise, without_noise)


def test_psnr_is_the_textbook_formula():
    clean = np.zeros((2, 4, 4, 1), np.float32)
    other = clean + np.array([0.1, 0.01], np.float32)[:, None, None, None]
    # 10·log10(1 / 0.01) = 20 dB and 10·log10(1 / 1e-4) = 40 dB: mean 30.
    np.testing.assert_allclose(training.psnr(clean, other), 30.0, rtol=1e-5)
