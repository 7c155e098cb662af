"""The `draem` networks' own layers: registered, without weights, so that a
saved model rebuilds them."""

import keras

# A grain deviates from its local mean by a few hundredths: scaled to about the
# images' range, clipped beyond 0.1 (6% of bench/textures.py's photos' pixels).
# Times 40 found more of grass' and gravel's defects, but its int8 file strayed
# and smooth, enlarged images lost pixel AUROC (BUILD.md, "Defects on photographs").
CONTRAST_SCALE = 10.0


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
    """The images' local contrast, per channel: each pixel's deviation from
    its 3x3 mean, times `scale` (CONTRAST_SCALE) and clipped to [-1, 1], as a
    root mean square over 3x3 pixels. About zero where the image is flat (a
    stain, a smooth fill), hardly ever on a texture's grain. The segmenter reads it
    beside the images: given only the images and their restoration, it missed
    flat anomalies on grass (BUILD.md, "Defects on photographs"). The clip
    keeps it in int8's reach: unclipped, a grain's variance (1e-4 to 1e-2) is
    lost in a full-integer TFLite file's steps of about 1/255.

    The scale is saved with the layer (a layer without weights has nothing
    else to hold it): a model loaded at another scale than it was trained at
    scores otherwise (BUILD.md, "Defects on photographs").
    """

    def __init__(self, scale=CONTRAST_SCALE, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, images):
        deviations = images - keras.ops.average_pool(images, 3, 1, "same")
        deviations = keras.ops.clip(self.scale * deviations, -1.0, 1.0)
        squares = keras.ops.average_pool(deviations * deviations, 3, 1, "same")
        return keras.ops.sqrt(squares + 1e-4)  # + 1e-4: a finite gradient where flat

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}
