"""The denoising autoencoder: learns to map noisy images to clean ones.

The model is the conv (or dense) autoencoder; what makes it denoising is its
training data: `(noisy, clean)` pairs, the noise added on the fly by the input
pipeline (`keras_ae.data.train_dataset(noise_stddev=...)`), fresh every epoch.
Its recipe (`recipe.py`) sets that noise to stddev 0.5,
and with it the PSNR metrics and `denoising.png`.
"""

import keras

from keras_ae.models import backbone
from keras_ae.models.autoencoder import Autoencoder


@keras.saving.register_keras_serializable(package="keras_ae")
class DenoisingAutoencoder(Autoencoder):
    """An autoencoder trained to remove Gaussian noise.

    Args:
        input_shape: image shape `(height, width, channels)`.
        latent_dim: size of the code. Default 32.
        architecture: "conv" (default: the conv variant's network) or "dense"
            (the linear variant's).
        filters: conv channels per downsampling level. Default (32, 64).
        upsampling: "nearest" (default) or "transpose".

    Example:

        model = DenoisingAutoencoder((28, 28, 1))
        model.compile()
        model.fit(keras_ae.data.train_dataset(images, batch_size=128, epochs=5,
                                              noise_stddev=0.5), ...)
    """

    def __init__(self, input_shape, latent_dim=32, architecture="conv",
                 filters=(32, 64), upsampling="nearest", **kwargs):
        activation = "relu" if architecture == "dense" else None  # as linear / conv
        network = {"architecture": architecture, "filters": filters, "upsampling": upsampling}
        encoder, decoder = backbone.build(
            input_shape, {"latent": (latent_dim, activation)}, **network
        )
        super().__init__(encoder, decoder, **kwargs)
        self.arguments = {"latent_dim": latent_dim, **network}


MODEL = DenoisingAutoencoder
