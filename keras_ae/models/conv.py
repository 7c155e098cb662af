"""Convolutional autoencoder: strided-conv encoder, upsampling decoder."""

import math

import keras

from keras_ae.models.autoencoder import Autoencoder

UPSAMPLING_MODES = ("nearest", "transpose")


@keras.saving.register_keras_serializable(package="keras_ae")
class ConvAutoencoder(Autoencoder):
    """Strided 3×3 convolutions down to a dense code, and back up.

    Encoder: one `Conv2D(f, 3, strides=2)` per entry of `filters`, each halving
    height and width, then Dense(latent_dim). Decoder: Dense and Reshape to the
    smallest feature map, then per level either `Conv2DTranspose(f, 3,
    strides=2)` ("transpose") or `UpSampling2D(nearest)` + `Conv2D(f, 3)`
    ("nearest", which avoids the checkerboard artifacts of transpose
    convolution), then a sigmoid `Conv2D` to the input's channels.

    Args:
        input_shape: image shape `(height, width, channels)`; height and width
            must be divisible by `2 ** len(filters)` (28×28 and 32×32 are, with
            the default two levels).
        latent_dim: size of the code. Default 32.
        filters: channels of each downsampling level. Default (32, 64).
        upsampling: "nearest" (default) or "transpose".

    Example:

        model = ConvAutoencoder((32, 32, 3), latent_dim=64, upsampling="transpose")
    """

    def __init__(
        self,
        input_shape,
        latent_dim=32,
        filters=(32, 64),
        upsampling="nearest",
        **kwargs,
    ):
        input_shape = tuple(input_shape)
        filters = tuple(filters)
        if upsampling not in UPSAMPLING_MODES:
            raise ValueError(
                f"upsampling={upsampling!r} is not one of {UPSAMPLING_MODES}"
            )
        height, width, channels = input_shape
        scale = 2 ** len(filters)
        if height % scale or width % scale:
            raise ValueError(
                f"input_shape {input_shape}: height and width must be divisible "
                f"by {scale} for {len(filters)} downsampling levels; "
                "pad the images or use fewer filters"
            )
        smallest = (height // scale, width // scale, filters[-1])

        # Layers.
        downsample = [
            keras.layers.Conv2D(
                f, 3, strides=2, padding="same", activation="relu", name=f"down_{i}"
            )
            for i, f in enumerate(filters)
        ]
        to_latent = keras.layers.Dense(latent_dim, name="latent")
        expand = keras.layers.Dense(
            math.prod(smallest), activation="relu", name="expand"
        )
        upsample = []
        for i, f in reversed(list(enumerate(filters))):
            if upsampling == "transpose":
                upsample.append(
                    keras.layers.Conv2DTranspose(
                        f, 3, strides=2, padding="same", activation="relu",
                        name=f"up_{i}",
                    )
                )
            else:
                upsample.append(keras.layers.UpSampling2D(2, name=f"resize_{i}"))
                upsample.append(
                    keras.layers.Conv2D(
                        f, 3, padding="same", activation="relu", name=f"up_{i}"
                    )
                )
        to_pixels = keras.layers.Conv2D(
            channels, 3, padding="same", activation="sigmoid", name="reconstruction"
        )

        # Wiring.
        images = keras.Input(shape=input_shape, name="images")
        x = images
        for layer in downsample:
            x = layer(x)
        encoder = keras.Model(
            images, to_latent(keras.layers.Flatten(name="flatten")(x)), name="encoder"
        )
        latent = keras.Input(shape=(latent_dim,), name="latent")
        x = keras.layers.Reshape(smallest, name="unflatten")(expand(latent))
        for layer in upsample:
            x = layer(x)
        decoder = keras.Model(latent, to_pixels(x), name="decoder")
        super().__init__(encoder, decoder, **kwargs)

        # Configuration.
        self.latent_dim = latent_dim
        self.filters = filters
        self.upsampling = upsampling

    def get_config(self):
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "filters": self.filters,
            "upsampling": self.upsampling,
        }
