"""The sparse variant: L1 or KL penalties that push code units towards zero."""

import keras
import numpy as np
import pytest

import keras_ae
from keras_ae import config as config_lib
from keras_ae import data, distribute, training
from keras_ae.variants.sparse.model import sparsity_penalty
from tests.test_case import AutoencoderTestCase, assert_loss_is_mse_plus


class TestSparseL1(AutoencoderTestCase):
    variant = "sparse"
    options = {"latent_dim": 2, "filters": (4, 8), "sparsity": "l1"}


class TestSparseKL(AutoencoderTestCase):
    variant = "sparse"
    options = {"latent_dim": 2, "architecture": "dense", "sparsity": "kl"}


def test_penalties_match_an_independent_computation():
    code = np.random.default_rng(0).uniform(0.01, 0.99, (6, 5)).astype(np.float32)
    np.testing.assert_allclose(
        float(sparsity_penalty(code, "l1")), np.abs(code).sum(1).mean(), rtol=1e-5
    )
    rho, rho_hat = 0.1, code.mean(axis=0)
    expected = np.sum(rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat)))
    np.testing.assert_allclose(float(sparsity_penalty(code, "kl", 0.1)), expected, rtol=1e-5)


def test_the_weighted_penalty_is_part_of_the_loss():
    keras.utils.set_random_seed(0)
    model = keras_ae.build("sparse", (8, 8, 1), latent_dim=3, filters=(4, 8),
                           sparsity_weight=0.2)
    model.compile()
    assert_loss_is_mse_plus(
        model, TestSparseL1().images(count=8),
        lambda m, x: 0.2 * np.abs(m.encode(x)).sum(1).mean(),
    )


@pytest.mark.slow
@pytest.mark.parametrize("sparsity", ["l1", "kl"])
def test_penalty_makes_the_code_sparser_on_fashion_mnist(sparsity, tmp_path):
    fashion = data.load("fashion_mnist", train_examples=10000, download=False)

    def code_metrics(weight):
        config = config_lib.RunConfig(
            data=config_lib.DataConfig(dataset="fashion_mnist"),
            # The dense network: the penalty's effect, at a twentieth of the conv's time.
            model=config_lib.ModelConfig(variant="sparse", architecture="dense",
                                         sparsity=sparsity, sparsity_weight=weight),
            train=config_lib.TrainConfig(model_dir=str(tmp_path / f"{weight}"), epochs=2),
        )
        return training.train(config, distribute.get_strategy("default"), fashion, verbose=0)

    penalized, free = code_metrics(None), code_metrics(0.0)  # None: the default weight
    assert penalized["mean_code_activation"] < free["mean_code_activation"], (penalized, free)
    assert penalized["fraction_code_near_zero"] > free["fraction_code_near_zero"], (penalized, free)
