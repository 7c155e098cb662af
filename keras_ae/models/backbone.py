"""The networks the variants share: an encoder and a decoder, dense or convolutional.

"dense" is the reference tutorial's shape: flatten → one Dense code layer, and
one sigmoid Dense back to the pixels. "conv" downsamples with one stride-2 3×3
convolution per entry of `filters` before the code layer, and upsamples back
either by transpose convolution or by nearest-neighbour upsampling + conv
(which avoids transpose convolution's checkerboard artifacts).

Any image size works: a stride-2 "same" convolution takes a side of n pixels
to ceil(n / 2) (100 → 50 → 25 → 13), and the decoder retraces those sizes
exactly (`feature_sizes`), resizing to each or cropping a transpose
convolution's extra row, so that it ends at the input's size.
"""

import math

import keras

from keras_ae.variants import options

ARCHITECTURES = options.ARCHITECTURE.choices
UPSAMPLING_MODES = options.UPSAMPLING.choices


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
        feature_sizes(input_shape, filters)  # checks the size
        for i, f in enumerate(filters):
            x = keras.layers.Conv2D(
                f, 3, strides=2, padding="same", activation="relu", name=f"down_{i}"
            )(x)
    features = keras.layers.Flatten(name="flatten")(x)
    outputs = [
        keras.layers.Dense(units, activation=activation, name=name, dtype=head_dtype())(features)
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
            math.prod(output_shape), activation="sigmoid", name="pixels", dtype=head_dtype()
        )(latent)
        images = keras.layers.Reshape(output_shape, name="reconstruction", dtype=head_dtype())(
            pixels
        )
        return keras.Model(latent, images, name="decoder")

    sizes = feature_sizes(output_shape, filters)
    smallest = (*sizes[-1], filters[-1])
    x = keras.layers.Dense(math.prod(smallest), activation="relu", name="expand")(latent)
    x = keras.layers.Reshape(smallest, name="unflatten")(x)
    for i, f in reversed(list(enumerate(filters))):
        height, width = sizes[i]
        if upsampling == "transpose":
            x = keras.layers.Conv2DTranspose(
                f, 3, strides=2, padding="same", activation="relu", name=f"up_{i}"
            )(x)
            extra = (2 * sizes[i + 1][0] - height, 2 * sizes[i + 1][1] - width)
            if any(extra):  # an odd side: drop the last row / column
                x = keras.layers.Cropping2D(((0, extra[0]), (0, extra[1])), name=f"crop_{i}")(x)
        else:
            # Resizing to the static size, not UpSampling2D: both are nearest-
            # neighbour (identical outputs where the size doubles), but
            # UpSampling2D's repeat loses the static height with a dynamic
            # batch, and the TFLite converter then leaves a convolution that
            # needs Flex ops.
            x = keras.layers.Resizing(height, width, interpolation="nearest",
                                      name=f"resize_{i}")(x)
            x = keras.layers.Conv2D(
                f, 3, padding="same", activation="relu", name=f"up_{i}"
            )(x)
    images = keras.layers.Conv2D(
        output_shape[-1], 3, padding="same", activation="sigmoid", name="reconstruction",
        dtype=head_dtype(),
    )(x)
    return keras.Model(latent, images, name="decoder")


def head_dtype():
    """The dtype of heads and output layers: the policy's variable dtype, so
    that under mixed precision the code, the reconstruction and the losses
    stay float32 (and a float64 model is float64 throughout)."""
    return keras.config.dtype_policy().variable_dtype


def feature_sizes(input_shape, filters):
    """`[(height, width)]` of the input and after each stride-2 level.

    Raises ValueError if a side would shrink below 2 pixels before the last
    level: the image is too small for that many levels.
    """
    sizes = [tuple(input_shape[:2])]
    for _ in filters:
        height, width = sizes[-1]
        if min(height, width) < 2:
            raise ValueError(
                f"images of {input_shape[0]}x{input_shape[1]} are too small for "
                f"{len(filters)} stride-2 levels (filters {tuple(filters)}): each level "
                f"halves the sides, and this one would get {height}x{width}; use a larger "
                "--image_size or fewer --filters"
            )
        sizes.append((-(-height // 2), -(-width // 2)))
    return sizes


def build(input_shape, heads, architecture="conv", filters=(32, 64), upsampling="nearest"):
    """`(encoder, decoder)`: `build_encoder` with `heads`, and the matching decoder.

    The decoder takes the first head's width as its latent size.
    """
    latent_dim = next(iter(heads.values()))[0]
    return (
        build_encoder(input_shape, heads, architecture, filters),
        build_decoder(latent_dim, input_shape, architecture, filters, upsampling),
    )
