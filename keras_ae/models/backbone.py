"""The networks the variants share: an encoder and a decoder, dense or convolutional.

"dense" is the reference tutorial's shape: flatten → one Dense code layer, and
one sigmoid Dense back to the pixels. "conv" downsamples with one stride-2 3×3
convolution per entry of `filters` before the code layer, and upsamples back
either by transpose convolution or by nearest-neighbour upsampling + conv
(which avoids transpose convolution's checkerboard artifacts).
"""

import math

import keras

ARCHITECTURES = ("conv", "dense")
UPSAMPLING_MODES = ("nearest", "transpose")


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(map(repr, choices))}")


def build_encoder(input_shape, heads, architecture="conv", filters=(32, 64)):
    """An encoder model named "encoder": images → one Dense output per head.

    Args:
        input_shape: image shape `(height, width, channels)`.
        heads: `{name: (units, activation)}`, e.g. `{"latent": (32, None)}`;
            the VAE has `z_mean` and `z_log_var`. Outputs come in this order.
        architecture: "conv" or "dense".
        filters: channels of each conv downsampling level.
    """
    check_choice("architecture", architecture, ARCHITECTURES)
    input_shape = tuple(input_shape)
    images = keras.Input(shape=input_shape, name="images")
    x = images
    if architecture == "conv":
        _check_divisible(input_shape, filters)
        for i, f in enumerate(filters):
            x = keras.layers.Conv2D(
                f, 3, strides=2, padding="same", activation="relu", name=f"down_{i}"
            )(x)
    features = keras.layers.Flatten(name="flatten")(x)
    # Heads and output layers in float32 whatever the dtype policy: under mixed
    # precision the code, the reconstruction and the losses stay float32.
    outputs = [
        keras.layers.Dense(units, activation=activation, name=name, dtype="float32")(features)
        for name, (units, activation) in heads.items()
    ]
    return keras.Model(images, outputs[0] if len(outputs) == 1 else outputs, name="encoder")


def build_decoder(latent_dim, output_shape, architecture="conv", filters=(32, 64),
                  upsampling="nearest"):
    """A decoder model named "decoder": `latent` → sigmoid `reconstruction` images."""
    check_choice("architecture", architecture, ARCHITECTURES)
    check_choice("upsampling", upsampling, UPSAMPLING_MODES)
    latent = keras.Input(shape=(latent_dim,), name="latent")
    output_shape = tuple(output_shape)
    if architecture == "dense":
        pixels = keras.layers.Dense(
            math.prod(output_shape), activation="sigmoid", name="pixels", dtype="float32"
        )(latent)
        images = keras.layers.Reshape(output_shape, name="reconstruction", dtype="float32")(
            pixels
        )
        return keras.Model(latent, images, name="decoder")

    height, width, channels = output_shape
    scale = 2 ** len(filters)
    smallest = (height // scale, width // scale, filters[-1])
    x = keras.layers.Dense(math.prod(smallest), activation="relu", name="expand")(latent)
    x = keras.layers.Reshape(smallest, name="unflatten")(x)
    for i, f in reversed(list(enumerate(filters))):
        if upsampling == "transpose":
            x = keras.layers.Conv2DTranspose(
                f, 3, strides=2, padding="same", activation="relu", name=f"up_{i}"
            )(x)
        else:
            # Resizing to the static size, not UpSampling2D: both are nearest-
            # neighbour (identical outputs), but UpSampling2D's repeat loses the
            # static height with a dynamic batch, and the TFLite converter then
            # leaves a convolution that needs Flex ops.
            x = keras.layers.Resizing(
                height // 2**i, width // 2**i, interpolation="nearest", name=f"resize_{i}"
            )(x)
            x = keras.layers.Conv2D(
                f, 3, padding="same", activation="relu", name=f"up_{i}"
            )(x)
    images = keras.layers.Conv2D(
        channels, 3, padding="same", activation="sigmoid", name="reconstruction",
        dtype="float32",
    )(x)
    return keras.Model(latent, images, name="decoder")


def _check_divisible(input_shape, filters):
    scale = 2 ** len(filters)
    if input_shape[0] % scale or input_shape[1] % scale:
        raise ValueError(
            f"input_shape {tuple(input_shape)}: height and width must be divisible "
            f"by {scale} for {len(filters)} downsampling levels; "
            "pad the images or use fewer filters"
        )


def build(input_shape, heads, architecture="conv", filters=(32, 64), upsampling="nearest"):
    """`(encoder, decoder)`: `build_encoder` with `heads`, and the matching decoder.

    The decoder takes the first head's width as its latent size.
    """
    latent_dim = next(iter(heads.values()))[0]
    return (
        build_encoder(input_shape, heads, architecture, filters),
        build_decoder(latent_dim, input_shape, architecture, filters, upsampling),
    )
