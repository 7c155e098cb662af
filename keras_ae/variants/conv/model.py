"""Convolutional autoencoder: strided-conv encoder, upsampling decoder."""

import keras

from keras_ae.models import backbone
from keras_ae.models.autoencoder import Autoencoder


@keras.saving.register_keras_serializable(package="keras_ae")
class ConvAutoencoder(Autoencoder):
    """Strided 3×3 convolutions down to a dense code, and back up.

    Encoder: one `Conv2D(f, 3, strides=2)` per entry of `filters`, each halving
    height and width, then Dense(latent_dim). Decoder: Dense and Reshape to the
    smallest feature map, then per level either `Conv2DTranspose(f, 3,
    strides=2)` ("transpose") or nearest-neighbour upsampling (`Resizing`) +
    `Conv2D(f, 3)` ("nearest", which avoids the checkerboard artifacts of
    transpose convolution), then a sigmoid `Conv2D` to the input's channels.

    Args:
        input_shape: image shape `(height, width, channels)`, any size with
            sides of at least `2 ** (len(filters) - 1) + 1` pixels; the output
            has the same shape (see `backbone.feature_sizes`).
        latent_dim: size of the code. Default 32.
        filters: channels of each downsampling level. Default (32, 64).
        upsampling: "nearest" (default) or "transpose".

    Example:

        model = ConvAutoencoder((32, 32, 3), latent_dim=64, upsampling="transpose")
    """

    def __init__(self, input_shape, latent_dim=32, filters=(32, 64),
                 upsampling="nearest", **kwargs):
        encoder, decoder = backbone.build(
            input_shape, {"latent": (latent_dim, None)}, "conv", filters, upsampling
        )
        super().__init__(encoder, decoder, **kwargs)
        self.arguments = {
            "latent_dim": latent_dim, "filters": filters, "upsampling": upsampling
        }


MODEL = ConvAutoencoder
