"""The linear variant is exactly the reference tutorial's model."""

import keras
import numpy as np

import keras_ae
from tests.test_case import AutoencoderTestCase


class TestLinear(AutoencoderTestCase):
    variant = "linear"


def test_is_the_tutorials_model():
    model = keras_ae.build("linear", (28, 28, 1))
    dense = [l for l in model.encoder.layers + model.decoder.layers
             if isinstance(l, keras.layers.Dense)]
    assert [(l.units, l.activation.__name__) for l in dense] == [
        (32, "relu"), (784, "sigmoid")
    ]
    # nn.Linear(784, 32) + nn.Linear(32, 784): weights and biases.
    assert model.count_params() == 784 * 32 + 32 + 32 * 784 + 784


def test_output_matches_an_independent_forward_pass():
    model = keras_ae.build("linear", (28, 28, 1))
    (w1, b1), (w2, b2) = [l.get_weights() for l in model.layers[1:] for l in l.layers
                          if isinstance(l, keras.layers.Dense)]
    x = np.random.default_rng(0).random((5, 28, 28, 1), np.float32)
    hidden = np.maximum(x.reshape(5, 784) @ w1 + b1, 0)
    expected = 1 / (1 + np.exp(-(hidden @ w2 + b2)))
    np.testing.assert_allclose(
        model.predict(x, verbose=0).reshape(5, 784), expected, rtol=1e-4, atol=1e-6
    )


def test_compile_defaults_are_mse_and_adam_1e3():
    model = keras_ae.build("linear", (28, 28, 1))
    model.compile()
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert np.isclose(float(model.optimizer.learning_rate), 1e-3)
    x = np.random.default_rng(1).random((4, 28, 28, 1), np.float32)
    loss = model.evaluate(x, x, verbose=0)
    np.testing.assert_allclose(
        loss, np.mean((model.predict(x, verbose=0) - x) ** 2), rtol=1e-5
    )
