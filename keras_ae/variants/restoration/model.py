"""The restoration autoencoder: a one-class detector trained to undo transformations.

As in ARNet (Huang et al., "Attribute Restoration Framework for Anomaly
Detection", IEEE TMM 2022), every normal training image is shown in several
views (square images rotated by 0°, 90°, 180° and 270°; others flipped), and
the network learns to restore the original from each. Restoring a rotated
trouser needs knowing which way up a trouser stands, which a plain
autoencoder, free to copy any clothing, never learns. A linear head on the
encoder's features also names the view it was shown (as GEOM, Golan &
El-Yaniv, NeurIPS 2018, recognises transformations).

An image unlike the training class is restored and recognised worse in every
view: `anomaly_views` gives one column per view of the restoration error, then
one per view of the head's negative log-likelihood of the true view, and the
detector (`keras_ae.anomaly`) averages the columns, each divided by its mean
on the normal validation images.
"""

import keras
import tensorflow as tf

from keras_ae.models import backbone
from keras_ae.models.autoencoder import Autoencoder
from keras_ae.models.autoencoder import image_error
from keras_ae.models.autoencoder import pixel_errors


def views(images):
    """The views of float `images` `[batch, height, width, channels]`, a list
    of 4 tensors of their shape, the first the images themselves: rotated by
    0°, 90°, 180° and 270° when square, else as they are, rotated by 180°,
    flipped left-right and flipped upside down."""
    if images.shape[1] == images.shape[2]:
        return [tf.image.rot90(images, k) for k in range(4)]
    return [images, tf.image.rot90(images, 2), tf.image.flip_left_right(images),
            tf.image.flip_up_down(images)]


VIEWS = 4
VIEW_NAMES = {True: ("rotated 0", "rotated 90", "rotated 180", "rotated 270"),
              False: ("as is", "rotated 180", "flipped left-right", "flipped up-down")}


def _latent(codes):
    return codes[0]  # the decoder's input; codes[1] is the view head's logits


@keras.saving.register_keras_serializable(package="keras_ae")
class RestorationAutoencoder(Autoencoder):
    """Restores each image from its rotated (or flipped) views; a head names the view.

    Called on images it returns their reconstruction (the first view's
    restoration), as every variant does; training and `anomaly_views` use
    every view. Train it on one class (`--normal_classes`): it is the
    detector `train.py --normal_classes=K` trains when no variant is named.

    Args:
        input_shape: image shape `(height, width, channels)`.
        latent_dim: size of the (ReLU) code. Default 64.
        filters: the encoder's channels of each stride-2 conv level. Default
            (32, 64, 128).
        decoder_filters: the decoder's, from the image size up: it upsamples
            from the size after `len(decoder_filters)` levels. Default (16, 32),
            so that the full-size convolutions are narrow: the encoder's
            filters there trained three times as long for the same AUROC.
        upsampling: "nearest" (default) or "transpose".
        view_weight: weight of the view head's cross-entropy beside the mean
            restoration error. Default 0.05 (0.01 scored within a run's noise
            of it).

    Example:

        model = RestorationAutoencoder((28, 28, 1))
        model.compile()
        model.fit(normal_images, normal_images, epochs=12)
        model.anomaly_views(test_images)  # [batch, 8]
    """

    passes_per_image = 1 + VIEWS  # the image itself, then every view

    def __init__(self, input_shape, latent_dim=64, filters=(32, 64, 128),
                 decoder_filters=(16, 32), upsampling="nearest", view_weight=0.05, **kwargs):
        heads = {"latent": (latent_dim, "relu"), "view": (VIEWS, None)}
        encoder = backbone.build_encoder(input_shape, heads, "conv", filters)
        decoder = backbone.build_decoder(latent_dim, input_shape, "conv", decoder_filters,
                                         upsampling)
        super().__init__(encoder, decoder, bottleneck=_latent, **kwargs)
        self.arguments = {"latent_dim": latent_dim, "filters": filters,
                          "decoder_filters": decoder_filters, "upsampling": upsampling,
                          "view_weight": view_weight}

    def encode(self, images, batch_size=32):
        """The code of `images` (numpy), without the view head's logits."""
        return super().encode(images, batch_size)[0]

    def view_names(self):
        """What each of `anomaly_views`' columns is."""
        names = VIEW_NAMES[self.input_shape[1] == self.input_shape[2]]
        return [f"restore {n}" for n in names] + [f"recognise {n}" for n in names]

    def _views(self, images, targets, training, kind="mse", maps=False):
        """`([batch, VIEWS] restoration errors, [batch, VIEWS] the view head's
        negative log-likelihood of each view's true label)`; with `training`,
        view 0's restoration is left out (VIEWS - 1 columns). With `maps`, a
        third: `[batch, VIEWS, height, width]`, each restoration's `pixel_errors`,
        and a fourth, the restorations."""
        shown = views(images)
        count = tf.shape(images)[0]
        latent, logits = self.encoder(tf.concat(shown, 0), training=training)
        restore = latent[count:] if training else latent
        restored = self.decoder(restore, training=training)
        copies = len(shown) - 1 if training else len(shown)
        tiled = tf.tile(targets, [copies, 1, 1, 1])
        errors = image_error(tiled, restored, kind)
        # Log-softmax and a slice, not sparse_softmax_cross_entropy_with_logits,
        # which TFLite's built-in ops lack.
        log_likelihood = tf.reshape(tf.nn.log_softmax(logits), [VIEWS, count, VIEWS])
        nll = -tf.stack([log_likelihood[v, :, v] for v in range(VIEWS)], axis=1)
        errors = tf.transpose(tf.reshape(errors, [copies, count]))
        if not maps:
            return errors, nll
        pixels = tf.reshape(pixel_errors(tiled, restored), [copies, count, *images.shape[1:3]])
        return errors, nll, tf.transpose(pixels, [1, 0, 2, 3]), restored

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # View 0 is the image itself: its restoration is y_pred, scored by the
        # compiled loss; the other views and the head are added here, divided
        # by the replicas as Keras divides its losses (see Autoencoder).
        first = super().compute_loss(x, y, y_pred, sample_weight, training)
        errors, nll = self._views(x, y, training=True)
        entropy = tf.reduce_mean(nll)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        rest = tf.reduce_mean(tf.reduce_sum(errors, axis=1))
        return (first + rest / replicas) / VIEWS + self.arguments["view_weight"] * entropy / replicas

    def anomaly_parts(self, images, kind="mse"):
        """`(reconstruction, views, maps)`: the first view's restoration (the
        image's own), float32 `[batch, 2 * VIEWS]` views (each view's
        restoration error, `kind` "mse" or "top_k" as `image_error`, then the
        view head's negative log-likelihood of each view's true label), and
        `[batch, VIEWS, height, width]` maps: each restoration's
        `pixel_errors`, in the image's own orientation (every view is restored
        to the image itself), whose means are the first VIEWS views with "mse"."""
        errors, nll, pixels, restored = self._views(images, images, training=False, kind=kind,
                                                    maps=True)
        return restored[:tf.shape(images)[0]], tf.concat([errors, nll], axis=1), pixels


MODEL = RestorationAutoencoder
