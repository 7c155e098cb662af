"""The `draem` networks' own layers: registered, without weights, so that a
saved model rebuilds them."""

import keras
import numpy as np

from keras_ae.models import backbone

# Each form's scale. A grain's neighbours differ by a few hundredths: times 40
# brings that to about the images' range (differences beyond 1/40 are
# clipped), and found more of grass' and gravel's defects than times 10. The
# 3x3 mean's deviations, models' until 2ced6cc, are times 10: times 40 cost
# them their int8 file and smooth images (BUILD.md, "Defects on photographs").
# "neighbours", the two directions' mean, is the form of models saved from
# 2ced6cc until "directions" (BUILD.md).
CONTRAST_SCALES = {"directions": 40.0, "neighbours": 40.0, "mean": 10.0}


@keras.saving.register_keras_serializable(package="keras_ae")
class NearestResize(keras.layers.Layer):
    """Nearest-neighbour resizing to a static `size`, as `keras.layers.Resizing`
    does, but a plain layer: after a `Resizing` (a preprocessing layer), Keras
    3.15 ran a BatchNormalization called with `training=None` in training
    mode (`model(x)` then differed from `model.predict(x)`)."""

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = tuple(size)

    def call(self, inputs):
        return keras.ops.image.resize(inputs, self.size, interpolation="nearest")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.size, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@keras.saving.register_keras_serializable(package="keras_ae")
class LocalContrast(keras.layers.Layer):
    """The images' local contrast, per channel and direction: each pixel's
    differences with its right and with its lower neighbour, times `scale`
    (CONTRAST_SCALES) and clipped to [-1, 1], as root mean squares over 3x3
    pixels, two channels per image channel. About zero where the image is
    flat (a stain, a smooth fill), hardly ever on a texture's grain; a
    scratch 1 px wide differs by its full contrast across it, and a grain or
    a scratch along one axis shows in one direction more than the other. The
    segmenter reads it beside the images: given only the images and their
    restoration, it missed flat anomalies on grass (BUILD.md, "Defects on
    photographs").

    The differences are one depthwise convolution of weights +-scale, which
    a full-integer TFLite file holds exactly, and the clip keeps them in its
    reach: unclipped, a grain's variance (1e-4 to 1e-2) is lost in int8's
    steps of about 1/255. The image's last row and column are mirrored, so
    its border reads as flat.

    Earlier models' forms: `differences="neighbours"` (saved from 2ced6cc),
    the two directions' mean, one channel per image channel;
    `"mean"` (before 2ced6cc), each pixel's deviation from its 3x3 mean,
    times 10. The draem model saves which its segmenter reads (its
    `contrast` argument), so that it loads as it was trained and scores as
    it did.
    """

    def __init__(self, differences="directions", scale=None, **kwargs):
        super().__init__(**kwargs)
        backbone.check_choice("differences", differences, tuple(CONTRAST_SCALES))
        self.differences = differences
        self.scale = float(scale or CONTRAST_SCALES[differences])

    def call(self, images):
        channels = images.shape[-1]
        if self.differences == "mean":  # each pixel's deviation from its 3x3 mean
            differences = self.scale * (images - keras.ops.average_pool(images, 3, 1, "same"))
        else:  # with its right and its lower neighbour, two per channel
            kernel = np.zeros((2, 2, channels, 2), np.float32)
            kernel[0, 0] = self.scale  # the pixel, less its right and its lower neighbour
            kernel[0, 1, :, 0] = kernel[1, 0, :, 1] = -self.scale
            kernel = keras.ops.convert_to_tensor(kernel, dtype=images.dtype)  # also float64's
            padded = keras.ops.pad(images, [[0, 0], [0, 1], [0, 1], [0, 0]], mode="symmetric")
            differences = keras.ops.depthwise_conv(padded, kernel, 1, "valid")
        differences = keras.ops.clip(differences, -1.0, 1.0)
        squares = keras.ops.average_pool(differences * differences, 3, 1, "same")
        if self.differences == "neighbours":  # the two directions' mean
            shape = keras.ops.shape(squares)
            squares = keras.ops.mean(
                keras.ops.reshape(squares, (-1, shape[1], shape[2], channels, 2)), -1)
        return keras.ops.sqrt(squares + 1e-4)  # + 1e-4: a finite gradient where flat

    def get_config(self):
        return {**super().get_config(), "differences": self.differences, "scale": self.scale}
