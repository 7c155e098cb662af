"""The VAE: negative ELBO loss, reparameterized sampling, deterministic inference."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_ae
from keras_ae import variants
from keras_ae.export import saved_model
from keras_ae.variants.vae import model as vae
from keras_ae.models.sampling import Sampling
from tests.test_case import AutoencoderTestCase, saved_model_cli


class TestVAE(AutoencoderTestCase):
    variant = "vae"
    code_names = ["z_mean", "z_log_var"]
    options = {"latent_dim": 2, "filters": (4, 8)}

    def loss_floor(self, x):
        # The Bernoulli NLL of grey targets is at least their entropy.
        p = np.clip(x, 1e-7, 1 - 1e-7)
        return np.mean(np.sum(-p * np.log(p) - (1 - p) * np.log(1 - p), axis=(1, 2, 3)))


class TestVAEDenseGaussian(AutoencoderTestCase):
    variant = "vae"
    code_names = ["z_mean", "z_log_var"]
    options = {"latent_dim": 2, "architecture": "dense", "reconstruction": "gaussian"}

    def loss_floor(self, x):
        # A unit-variance Gaussian's NLL is at least ½·log(2π) per pixel.
        return x[0].size * 0.5 * np.log(2 * np.pi)


def test_loss_is_reconstruction_nll_plus_beta_kl():
    keras.utils.set_random_seed(0)
    model = keras_ae.build("vae", (8, 8, 1), latent_dim=3, filters=(4, 8), beta=0.5)
    model.compile()
    x = TestVAE().images(count=8)
    result = model.evaluate(x, x, verbose=0, return_dict=True)
    # Independently, in numpy: evaluation decodes z_mean.
    z_mean, z_log_var = model.encoder.predict(x, verbose=0)
    p = np.clip(model.decoder.predict(z_mean, verbose=0), 1e-7, 1 - 1e-7)
    nll = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    kl = 0.5 * np.sum(np.exp(z_log_var) + z_mean**2 - 1 - z_log_var, axis=1)
    np.testing.assert_allclose(result["reconstruction_nll"], nll.mean(), rtol=1e-4)
    np.testing.assert_allclose(result["kl"], kl.mean(), rtol=1e-4)
    np.testing.assert_allclose(result["loss"], nll.mean() + 0.5 * kl.mean(), rtol=1e-4)


def test_kl_agrees_with_monte_carlo():
    rng = np.random.default_rng(0)
    mean, log_var = np.array([[0.5, -1.0]]), np.array([[-0.5, 0.3]])
    z = mean + np.exp(0.5 * log_var) * rng.standard_normal((400_000, 2))
    log_q = -0.5 * np.sum((z - mean) ** 2 / np.exp(log_var) + log_var, axis=1)
    log_p = -0.5 * np.sum(z**2, axis=1)
    np.testing.assert_allclose(
        float(vae.kl_divergence(mean, log_var)[0]), np.mean(log_q - log_p), rtol=0.01
    )


def test_sampling_draws_from_the_posterior_only_in_training():
    layer = Sampling(seed=3)
    mean = np.tile([[1.0, -2.0]], (20_000, 1)).astype(np.float32)
    log_var = np.tile([[0.0, np.log(0.25)]], (20_000, 1)).astype(np.float32)
    z = keras.ops.convert_to_numpy(layer([mean, log_var], training=True))
    np.testing.assert_allclose(z.mean(axis=0), [1.0, -2.0], atol=0.03)
    np.testing.assert_allclose(z.std(axis=0), [1.0, 0.5], rtol=0.03)
    again = keras.ops.convert_to_numpy(layer([mean, log_var], training=True))
    assert not np.allclose(z, again), "the same noise twice"
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(layer([mean, log_var], training=False)), mean
    )


def test_inference_is_deterministic_and_prior_sampling_separate(tmp_path):
    model = keras_ae.build("vae", (8, 8, 1), latent_dim=2, filters=(4, 8))
    x = TestVAE().images()
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    samples = model.sample(12, seed=4)
    assert samples.shape == (12, 8, 8, 1) and samples.min() >= 0 and samples.max() <= 1
    np.testing.assert_array_equal(samples, model.sample(12, seed=4))
    assert not np.allclose(samples, model.sample(12, seed=5))
    variants.recipe("vae").save_figures(model, str(tmp_path), x, np.arange(len(x)) % 3, seed=0)
    assert sorted(os.listdir(tmp_path)) == [
        "latent_manifold.png", "latent_scatter.png", "samples.png"
    ]


@pytest.mark.slow
def test_exported_signatures_contain_no_random_op(tmp_path):
    model = keras_ae.build("vae", (8, 8, 1), latent_dim=2, filters=(4, 8))
    path = str(tmp_path / "saved_model")
    saved_model.write(model, path)
    listing, ops = saved_model_cli(path)
    assert {"serving_default", "encode", "decode"} <= set(listing)
    assert {"Conv2D", "ResizeNearestNeighbor", "Sigmoid"} <= ops  # the listing is read
    assert not [op for op in ops if "Random" in op], ops
    # ...while the training graph does sample.
    training_graph = tf.function(lambda x: model(x, training=True)).get_concrete_function(
        tf.TensorSpec([None, 8, 8, 1], tf.float32)
    ).graph.as_graph_def()
    training_ops = {node.op for node in training_graph.node} | {
        node.op for f in training_graph.library.function for node in f.node_def
    }
    assert [op for op in training_ops if "Random" in op]
