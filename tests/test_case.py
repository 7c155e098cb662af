"""The standard battery every variant's tests inherit (after KerasHub's TestCase).

A variant's test file subclasses `AutoencoderTestCase`, sets `variant`,
`input_shape` and `options`, and adds only what is special to it.
"""

import inspect

import keras
import numpy as np

import keras_ae


def assert_loss_is_mse_plus(model, x, penalty):
    """Checks the compiled model's loss on `x` is the MSE plus `penalty(model, x)`,
    both computed here independently of the model's loss code."""
    loss = model.evaluate(x, x, verbose=0, return_dict=True)["loss"]
    mse = np.mean((model.predict(x, verbose=0) - x) ** 2)
    np.testing.assert_allclose(loss, mse + penalty(model, x), rtol=1e-4)


class AutoencoderTestCase:
    variant = None
    input_shape = (8, 8, 1)
    options = {"latent_dim": 2}

    def build(self):
        keras.utils.set_random_seed(0)  # the same initial weights every run
        return keras_ae.build(self.variant, self.input_shape, **self.options)

    def images(self, count=16, seed=0):
        """Mixtures of two fixed patterns: compressible into a latent of 2."""
        rng = np.random.default_rng(seed)
        patterns = rng.random((2, int(np.prod(self.input_shape))))
        mixtures = rng.random((count, 2)) @ patterns / 2
        return mixtures.reshape(count, *self.input_shape).astype(np.float32)

    def test_build_and_call(self):
        model = self.build()
        x = self.images()
        y = model.predict(x, verbose=0)
        assert y.shape == x.shape
        assert np.all((y >= 0) & (y <= 1)), "reconstructions are not in [0, 1]"
        latent = model.encode(x)  # the deterministic code (z_mean for the VAE)
        assert latent.shape == (len(x), self.options["latent_dim"])
        # At inference the autoencoder is exactly decoder(code(x)).
        np.testing.assert_allclose(
            model.decoder.predict(latent, verbose=0), y, rtol=1e-5, atol=1e-6
        )
        assert model.encoder.name == "encoder" and model.decoder.name == "decoder"
        assert [t.name for t in model.encoder.inputs] == ["images"]
        assert [t.name for t in model.decoder.inputs] == ["latent"]

    def loss_floor(self, x):
        """The least value the loss can take on `x` (0 for squared error)."""
        return 0.0

    def test_fit_reduces_loss(self):
        model = self.build()
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        x = self.images()
        history = model.fit(x, x, epochs=60, batch_size=16, verbose=0)
        excess = np.array(history.history["loss"]) - self.loss_floor(x)
        assert excess[-1] < 0.5 * excess[0], excess

    def test_get_config_is_the_constructor_arguments(self):
        model = self.build()
        config = model.get_config()
        parameters = inspect.signature(type(model).__init__).parameters
        arguments = {n for n in parameters if n not in ("self", "kwargs")}
        assert set(config) == arguments | {"name", "trainable"}
        clone = type(model).from_config(config)
        assert clone.get_config() == config
        assert clone.count_params() == model.count_params()

    def test_keras_save_and_reload(self, tmp_path):
        model = self.build()
        model.compile()
        x = self.images()
        model.fit(x, x, epochs=2, batch_size=8, verbose=0)
        path = str(tmp_path / "model.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
        assert type(reloaded) is type(model)
        # Compiled as saved, optimizer state included, so training can go on.
        assert type(reloaded.optimizer) is type(model.optimizer)
        assert int(reloaded.optimizer.iterations) == int(model.optimizer.iterations) == 4
        np.testing.assert_array_equal(
            reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
        )
        np.testing.assert_array_equal(reloaded.encode(x), model.encode(x))
