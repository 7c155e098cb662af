"""The reference tutorial's linear autoencoder: 784 → 32 ReLU → 784 sigmoid."""

import math

import keras

from keras_ae.models.autoencoder import Autoencoder


@keras.saving.register_keras_serializable(package="keras_ae")
class LinearAutoencoder(Autoencoder):
    """One dense layer each way, exactly the tutorial's model.

    Encoder: Flatten → Dense(latent_dim, relu). Decoder: Dense(pixels, sigmoid)
    → Reshape back to `input_shape`. Trained with MSE and Adam(1e-3).

    Args:
        input_shape: image shape `(height, width, channels)`.
        latent_dim: size of the code. Default 32.

    Example:

        model = LinearAutoencoder((28, 28, 1))
        model.compile()
        model.fit(images, images, epochs=20, batch_size=20)
    """

    def __init__(self, input_shape, latent_dim=32, **kwargs):
        input_shape = tuple(input_shape)
        # Layers.
        flatten = keras.layers.Flatten(name="flatten")
        to_latent = keras.layers.Dense(latent_dim, activation="relu", name="latent")
        pixels = keras.layers.Dense(
            math.prod(input_shape), activation="sigmoid", name="pixels"
        )
        unflatten = keras.layers.Reshape(input_shape, name="reconstruction")

        # Wiring.
        images = keras.Input(shape=input_shape, name="images")
        encoder = keras.Model(images, to_latent(flatten(images)), name="encoder")
        latent = keras.Input(shape=(latent_dim,), name="latent")
        decoder = keras.Model(latent, unflatten(pixels(latent)), name="decoder")
        super().__init__(encoder, decoder, **kwargs)

        # Configuration.
        self.latent_dim = latent_dim

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim}
