"""The base class every variant builds on: images → encoder → decoder → images."""

import inspect
import math

import keras
import numpy as np
import tensorflow as tf

from keras_ae import distribute

TOP_FRACTION = 0.1  # "top_k": the share of pixels (and channels) averaged


def image_error(images, reconstructions, kind="mse"):
    """float32 `[batch]`: each image's reconstruction error, of `kind`:

        "mse"    the mean squared error over pixels and channels
        "top_k"  the mean of its worst TOP_FRACTION of squared errors: a small
                 defect on a large image moves it, where it barely moves the mean
    """
    if kind not in ("mse", "top_k"):  # "map_max" is the map's (`keras_ae.anomaly.scoring.parts`)
        raise ValueError(f"unknown error kind {kind!r}; valid: mse, top_k")
    values = math.prod(images.shape[1:])  # static: the model's input shape
    errors = tf.reshape(tf.square(reconstructions - images), [-1, values])
    if kind == "mse":
        return tf.reduce_mean(errors, axis=1)
    count = max(1, round(TOP_FRACTION * values))
    return tf.reduce_mean(tf.math.top_k(errors, k=count, sorted=False).values, axis=1)


def pixel_errors(images, reconstructions):
    """float32 `[batch, height, width]`: each pixel's squared error, the mean
    over its channels; an image's "mse" `image_error` is this map's mean."""
    return tf.reduce_mean(tf.square(reconstructions - images), axis=-1)


class Autoencoder(keras.Model):
    """A functional autoencoder with named `encoder` and `decoder` sub-models.

    Subclasses create an encoder (input `images`) and a decoder (input
    `latent`, output `reconstruction`) and pass them here with the functional
    API; this wires `images → encoder → bottleneck → decoder` into one
    functional model, so the autoencoder, the encoder alone and the decoder
    alone can each be called, saved, exported and plotted.

    `bottleneck`, if given, maps the encoder's output(s) to the decoder's input
    (the VAE samples there). Subclasses set `self.arguments` to their
    constructor arguments (besides `input_shape`), which `get_config` returns,
    and may add a term to the loss by overriding `penalty`. How a variant is
    trained by default, what it reports and draws is its recipe
    (`keras_ae.variants.base_recipe`).

    `compile()` defaults to the reference tutorial's loss and optimizer: mean
    squared error, Adam with learning rate 1e-3.
    """

    # How many times a training step runs the networks on each image (the
    # restoration detector: once per view), for `keras_ae.training.memory`.
    passes_per_image = 1

    def __init__(self, encoder, decoder, bottleneck=None, **kwargs):
        images = keras.Input(shape=encoder.input_shape[1:], name="images")
        code = encoder(images)
        if bottleneck is not None:
            code = bottleneck(code)
        super().__init__(inputs=images, outputs=decoder(code), **kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.arguments = {}

    def compile(self, optimizer=None, loss="mean_squared_error", **kwargs):
        if optimizer is None:
            optimizer = keras.optimizers.Adam(learning_rate=1e-3)
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def compile_from_config(self, config):
        # Keras skips restoring the compile state of models that override
        # compile(); this one only adds defaults, so the saved arguments apply.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # The "symbolic build" fix of keras_ae.keras_fixes, whose check guards
        # it: fit() builds metrics and optimizer state from a sample batch,
        # which Keras 3.15 gets by averaging a distributed batch eagerly; under
        # MultiWorkerMirroredStrategy that fails (keras-team/keras#20585). An
        # autoencoder's batch is images of its input shape: build from zeros.
        if iterator is not None and data_batch is None:
            images = np.zeros((1, *self.input_shape[1:]), "float32")
            data_batch = (images, images)
        super()._maybe_symbolic_build(data_batch=data_batch)

    @property
    def image_shape(self):
        """`(height, width, channels)` of the images it serves: its input's,
        unless it scores larger images by tiles (`keras_ae.models.tiles`)."""
        return tuple(self.input_shape[1:])

    @property
    def training_crop(self):
        """`(height, width)` of the crops it trains on, if smaller than the
        images it serves (it scores them by tiles); else None."""
        tile = tuple(self.input_shape[1:3])
        return tile if tile != self.image_shape[:2] else None

    def penalty(self, images):
        """A term added to the loss for this batch, or None (the default).

        Computed on each replica's share of the batch, as a mean over it.
        """
        return None

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training)
        penalty = self.penalty(x)
        if penalty is None:
            return loss
        # Divided by the replicas as Keras divides Loss objects, since the
        # replicas' gradients are summed. Not `add_loss` in a layer: under
        # MirroredStrategy its value came out right but its gradient halved on
        # two replicas (tests/test_distribute.py would fail).
        return loss + penalty / tf.distribute.get_strategy().num_replicas_in_sync

    def view_names(self):
        """What each of `anomaly_views`' columns is."""
        return ["reconstruct"]

    def anomaly_parts(self, images, kind="mse"):
        """`(reconstruction, views, maps)` of `images` from one run of the
        model: the reconstruction, float32 `[batch, views]`, what
        `keras_ae.anomaly` scores an image by (here one view, the
        reconstruction error, `image_error` of `kind`; the restoration
        detector has more), and `[batch, k, height, width]` maps, the first k
        views' `pixel_errors`, whose means are those views with "mse" (the
        other views, the restoration detector's head, are of the whole image)."""
        reconstruction = self(images, training=False)
        views = image_error(images, reconstruction, kind)[:, None]
        return reconstruction, views, pixel_errors(images, reconstruction)[:, None]

    def anomaly_views(self, images, kind="mse", maps=False):
        """`anomaly_parts`' views, and with `maps` `(views, maps)`."""
        _, views, pixel_maps = self.anomaly_parts(images, kind)
        return (views, pixel_maps) if maps else views

    def encode(self, images, batch_size=32):
        """The deterministic code of `images` (numpy), e.g. for plots."""
        return distribute.predict(self.encoder, images, batch_size)

    @classmethod
    def default_options(cls, **options):
        """Every constructor option besides `input_shape`: `options`, and the
        default of each one not given."""
        parameters = inspect.signature(cls.__init__).parameters
        defaults = {
            name: parameter.default for name, parameter in parameters.items()
            if parameter.default is not parameter.empty
        }
        return {**defaults, **options}

    def get_config(self):
        # Not Functional's config: subclasses rebuild from their own arguments.
        return {
            "name": self.name,
            "trainable": self.trainable,
            "input_shape": self.image_shape,
            **self.arguments,
        }
