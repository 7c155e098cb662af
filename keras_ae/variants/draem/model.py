"""A defect detector that learns from simulated anomalies (after DRAEM).

DRAEM (Zavrtanik, Kristan, Skočaj, "DRAEM – A discriminatively trained
reconstruction embedding for surface anomaly detection", ICCV 2021) trains on
normal images with anomalies pasted in (`keras_ae.data.anomalies`, in the
input pipeline) two networks end to end:

- a reconstructive network (the `encoder` and `decoder`, fully
  convolutional, no skip connections) that restores the normal image, by
  squared error and SSIM;
- a discriminative U-Net (`segmenter`) that reads the input beside its
  restoration and its local contrast (`LocalContrast`) and segments the
  pasted region, by focal loss.

The anomaly map is the segmentation, the image's score the mean of its
`top_pixels` (TOP_PIXELS) highest pixels. The networks work on tiles of at
most `tile` (TILE) pixels a side: they train on random crops of that size,
and score a larger image by overlapping tiles stitched in the graph
(`keras_ae.models.tiles`), so that a 1024x1024 image is served whole, its
map at its own size, and training memory follows the tile. Depth follows the
tile: stride-2 levels down to a side of 6 to 11 pixels, at most MAX_LEVELS,
so the parameter count stays bounded (`levels`).
"""

import keras
import tensorflow as tf

from keras_ae.models import backbone
from keras_ae.models import tiles
from keras_ae.models.autoencoder import Autoencoder
from keras_ae.variants.draem.layers import LocalContrast, NearestResize

MAX_LEVELS = 6
MAX_WIDTH_FACTOR = 8  # the deepest levels' channels: at most 8 times `width`
SMALLEST_SIDE = 6  # a level is added while it leaves a side of at least this
# The score: the mean of the segmentation's highest pixels, as many as the
# smallest defect bench/textures.py draws covers (a disc 2 px across), at any
# image size. One pixel alone (the map's maximum) is a noisier score, and a box
# blur (DRAEM's: 21 px at 256) averages a thin scratch's pixels with their
# neighbours, where the highest pixels follow the scratch (BUILD.md, "Defects
# on photographs", measures it).
TOP_PIXELS = 4
CONTRAST = "directions"  # LocalContrast's form; earlier: "neighbours" (from 2ced6cc), "mean"
FOCAL_GAMMA = 2.0
# The side of the crops it trains on and of the tiles a larger image is scored
# by. DRAEM trains on 256x256 images. On bench/textures.py's grass, on two CPU
# cores, 64 scored better than 128 in less than half the time (BUILD.md,
# "Defects on photographs").
TILE = 64


def levels(input_shape):
    """Stride-2 levels for images of `input_shape`: halving the shorter
    side while it stays at least SMALLEST_SIDE, between 1 and MAX_LEVELS
    (28 → 2, 128 → 4, 256 → 5, 1024 → 6)."""
    side, count = min(input_shape[:2]), 0
    while -(-side // 2) >= SMALLEST_SIDE and count < MAX_LEVELS:
        side, count = -(-side // 2), count + 1
    return max(1, count)


def widths(input_shape, width):
    """Channels per level: `width`, doubling per level, at most
    MAX_WIDTH_FACTOR times it."""
    return [width * min(2 ** i, MAX_WIDTH_FACTOR) for i in range(levels(input_shape))]


def _conv(x, filters, name, strides=1):
    """A 3x3 convolution, batch normalization and ReLU, as DRAEM's blocks."""
    x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                            name=name)(x)
    # Synchronized: the statistics of the global batch, however many replicas.
    # Momentum 0.9 (PyTorch's 0.1, DRAEM's): with Keras' 0.99 the moving
    # statistics after a first epoch of 34 steps were still mostly their
    # initial values, and the collapse guard stopped the run.
    x = keras.layers.BatchNormalization(momentum=0.9, synchronized=True, name=f"{name}_norm")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _up(x, size, filters, upsampling, name):
    """Up one level to `size` (height, width), as `backbone.build_decoder`."""
    if upsampling == "transpose":
        x = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="same",
                                         activation="relu", name=f"{name}_transpose")(x)
        return keras.layers.Cropping2D(((0, x.shape[1] - size[0]), (0, x.shape[2] - size[1])),
                                       name=f"{name}_crop")(x)
    return _conv(NearestResize(size, name=f"{name}_resize")(x), filters, f"{name}_conv")


def build_reconstructive(input_shape, channels, upsampling):
    """`(encoder, decoder)`: images → a `latent` feature map at the deepest
    level → the `reconstruction`, without skip connections."""
    sizes = backbone.feature_sizes(input_shape, channels)
    images = keras.Input(shape=input_shape, name="images")
    x = images
    for i, filters in enumerate(channels):
        x = _conv(x, filters, f"down_{i}", strides=2)
        last = i == len(channels) - 1  # the code, in the heads' dtype (`backbone.head_dtype`)
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                name="latent" if last else f"down_{i}_conv",
                                dtype=backbone.head_dtype() if last else None)(x)
    encoder = keras.Model(images, x, name="encoder")
    latent = keras.Input(shape=x.shape[1:], name="latent")
    x = latent
    for i in reversed(range(len(channels))):
        x = _conv(_up(x, sizes[i], channels[max(0, i - 1)], upsampling, f"up_{i}"),
                  channels[max(0, i - 1)], f"up_{i}_refine")
    reconstruction = keras.layers.Conv2D(
        input_shape[-1], 3, padding="same", activation="sigmoid", name="reconstruction",
        dtype=backbone.head_dtype())(x)
    return encoder, keras.Model(latent, reconstruction, name="decoder")


def build_segmenter(input_shape, channels, upsampling, contrast):
    """The discriminative U-Net: `images`, their `reconstruction` and the
    images' `LocalContrast` (of form `contrast`) → the `segmentation`,
    `[batch, height, width, 1]` in [0, 1]."""
    sizes = backbone.feature_sizes(input_shape, channels)
    images = keras.Input(shape=input_shape, name="images")
    restored = keras.Input(shape=input_shape, name="reconstruction")
    local = LocalContrast(contrast, name="contrast", dtype=backbone.head_dtype())(images)
    x = keras.layers.Concatenate(name="inputs")([images, restored, local])
    x = _conv(x, channels[0], "full")
    skips = [x]
    for i, filters in enumerate(channels):
        x = _conv(_conv(x, filters, f"down_{i}", strides=2), filters, f"down_{i}_conv")
        skips.append(x)
    for i in reversed(range(len(channels))):
        x = _up(x, sizes[i], channels[max(0, i - 1)], upsampling, f"up_{i}")
        x = keras.layers.Concatenate(name=f"skip_{i}")([x, skips[i]])
        x = _conv(x, channels[max(0, i - 1)], f"up_{i}_refine")
    segmentation = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid",
                                       name="segmentation", dtype=backbone.head_dtype())(x)
    return keras.Model([images, restored], segmentation, name="segmenter")


def focal_loss(masks, probabilities, gamma=FOCAL_GAMMA):
    """The mean focal loss (Lin et al., 2017) of `probabilities` against
    binary `masks`: cross-entropy weighted by `(1 - p_true) ** gamma`, so that
    the many easy normal pixels do not drown the few anomalous ones."""
    epsilon = keras.config.epsilon()
    p_true = tf.where(masks > 0.5, probabilities, 1.0 - probabilities)
    p_true = tf.clip_by_value(p_true, epsilon, 1.0)
    return tf.reduce_mean((1.0 - p_true) ** gamma * -tf.math.log(p_true))


@keras.saving.register_keras_serializable(package="keras_ae")
class DraemAutoencoder(Autoencoder):
    """Restores images and segments what it had to restore; trained on
    simulated anomalies (`keras_ae.data.anomalies`).

    Called on images it returns their reconstruction, as every variant does;
    `segment` gives the segmentation, and `anomaly_parts` the map (the
    segmentation) and the score (the mean of its highest pixels).
    Training takes `(images with anomalies, clean images and masks stacked
    on the channels)`, as the pipeline gives with the recipe's
    `simulated_anomalies`; clean targets without masks count as no anomaly.

    On images larger than `tile` it is called, and scores, by tiles
    (`keras_ae.models.tiles`): its `input_shape`, its encoder's and its
    segmenter's, and what it trains on, are the tile's; its `image_shape` is
    the images'.

    Args:
        input_shape: image shape `(height, width, channels)`.
        width: channels of the first level, doubling per level up to 8
            times. Default 16.
        upsampling: "nearest" (default) or "transpose".
        tile: the largest side the networks take (their depth follows it,
            `levels`); larger images are scored by tiles. Default TILE.
        top_pixels: how many of the segmentation's highest pixels the score
            averages. Default TOP_PIXELS. Saved with the model, as its
            threshold was calibrated on the score it gives.
        contrast: the segmenter's `LocalContrast`: "directions" (CONTRAST),
            or an earlier model's form, "neighbours" or "mean" (a model
            saved without it, before 2ced6cc, loads with "mean"). Saved with
            the model, as `top_pixels` is.

    Example:

        model = DraemAutoencoder((64, 64, 1))
        model.compile()
        model.fit(train_dataset(images, batch_size=8, epochs=60, anomalies=True), ...)
        model.segment(test_images)  # [batch, 64, 64, 1]
    """

    def __init__(self, input_shape, width=16, upsampling="nearest", tile=TILE,
                 top_pixels=TOP_PIXELS, contrast=CONTRAST, **kwargs):
        backbone.check_choice("upsampling", upsampling, backbone.UPSAMPLING_MODES)
        tile_shape = (min(tile, input_shape[0]), min(tile, input_shape[1]), input_shape[2])
        channels = widths(tile_shape, width)
        encoder, decoder = build_reconstructive(tile_shape, channels, upsampling)
        super().__init__(encoder, decoder, **kwargs)
        self.segmenter = build_segmenter(tile_shape, channels, upsampling, contrast)
        self.arguments = {"width": width, "upsampling": upsampling, "tile": tile,
                          "top_pixels": top_pixels, "contrast": contrast}
        self._image_shape = tuple(input_shape)
        self.tiling = None
        if tile_shape != self._image_shape:
            self.tiling = tiles.Tiling(self._image_shape[:2], tile_shape[:2])
            # Tiles (training) or whole images (scoring): only the channels are fixed.
            self.input_spec = keras.InputSpec(ndim=4, axes={-1: input_shape[2]})

    @classmethod
    def from_config(cls, config):  # saved before 2ced6cc, without its contrast
        return cls(**{"contrast": "mean", **config})

    @property
    def image_shape(self):
        return self._image_shape

    def _is_whole(self, images):
        """Whether `images` are larger than a tile: images to score by tiles."""
        return self.tiling is not None and tuple(images.shape[1:3]) == self.tiling.image

    def call(self, images, training=None):
        if not self._is_whole(images):
            return super().call(images, training=training)
        restore = super().call  # one tile batch at a time, inference only
        return self.tiling.apply(lambda batch: restore(batch, training=False), images,
                                 self.image_shape[-1], self.outputs[0].dtype)

    def segment(self, images, reconstruction=None, training=False):
        """The segmentation of `images`, `[batch, height, width, 1]` (by
        tiles when they are larger than one: without `reconstruction`)."""
        images = tf.convert_to_tensor(images)
        if self._is_whole(images):
            return self._restore_and_segment(images)[1]
        if reconstruction is None:
            reconstruction = self(images, training=training)
        return self.segmenter([images, reconstruction], training=training)

    def _restore_and_segment(self, images):
        """`(reconstruction, segmentation)` of `images` (tiles or whole
        images), in inference mode."""
        if not self._is_whole(images):
            reconstruction = self(images, training=False)
            return reconstruction, self.segmenter([images, reconstruction], training=False)
        return self.tiling.apply(self._restore_and_segment, images, (self.image_shape[-1], 1),
                                 self.outputs[0].dtype)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        channels = self.input_shape[-1]
        clean, masks = y[..., :channels], y[..., channels:]
        if masks.shape[-1] == 0:  # clean targets alone: no anomaly
            masks = tf.zeros_like(clean[..., :1])
        squared = keras.Model.compute_loss(self, x, clean, y_pred, sample_weight, training)
        side = min(self.input_shape[1:3])
        similarity = tf.image.ssim(tf.cast(clean, y_pred.dtype), y_pred, max_val=1.0,
                                   filter_size=min(11, side))
        segmentation = self.segment(x, y_pred, training=training)
        extra = tf.reduce_mean(1.0 - similarity) + focal_loss(masks, segmentation)
        # Divided by the replicas as Keras divides its losses (see Autoencoder).
        return squared + extra / tf.distribute.get_strategy().num_replicas_in_sync

    def view_names(self):
        return ["segmentation"]

    def anomaly_parts(self, images, kind="mse"):
        """`(reconstruction, views, maps)`: the reconstruction, `[batch, 1]`
        the mean of the segmentation's `top_pixels` highest pixels, and `[batch,
        1, height, width]` the segmentation. (`kind` is the plain variants'
        choice of error, which this score does not use.)"""
        reconstruction, segmentation = self._restore_and_segment(tf.convert_to_tensor(images))
        pixels = segmentation.shape[1] * segmentation.shape[2]
        count = min(self.arguments["top_pixels"], pixels)
        highest = tf.math.top_k(tf.reshape(segmentation, [-1, pixels]), count)
        views = tf.reduce_mean(highest.values, axis=1, keepdims=True)
        return reconstruction, views, tf.transpose(segmentation, [0, 3, 1, 2])


MODEL = DraemAutoencoder
