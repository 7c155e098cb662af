"""The reference tutorial's linear autoencoder: 784 → 32 ReLU → 784 sigmoid."""

import keras

from keras_ae.models import backbone
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
        encoder, decoder = backbone.build(
            input_shape, {"latent": (latent_dim, "relu")}, architecture="dense"
        )
        super().__init__(encoder, decoder, **kwargs)
        self.arguments = {"latent_dim": latent_dim}


MODEL = LinearAutoencoder
