"""The contractive autoencoder: penalizes the encoder's sensitivity to its input.

Loss = reconstruction MSE + λ × mean over the batch of ||J_f(x)||_F², J_f the
Jacobian of the real encoder (dense or conv) with respect to the image,
computed exactly or by an unbiased estimate (`keras_ae.models.jacobian`).
"""

import keras
from keras import ops
import tensorflow as tf

from keras_ae.models import backbone
from keras_ae.models import jacobian as jacobian_lib
from keras_ae.models.autoencoder import Autoencoder


@keras.saving.register_keras_serializable(package="keras_ae")
class ContractiveAutoencoder(Autoencoder):
    """An autoencoder whose code changes little when the input changes little.

    Args:
        input_shape: image shape `(height, width, channels)`.
        latent_dim: size of the (sigmoid) code. Default 32.
        architecture: "conv" (default) or "dense".
        filters: conv channels per downsampling level. Default (32, 64).
        upsampling: "nearest" (default) or "transpose".
        contractive_weight: λ; 0 turns the penalty off. Default 0.1.
        jacobian: "exact" (default) or "estimate" (Hutchinson, cheaper for
            large codes).
        jacobian_samples: samples per image for "estimate". Default 1.
        seed: seed of the estimate's random vectors (a run passes its
            `--seed`). Default 0.

    Example:

        model = ContractiveAutoencoder((28, 28, 1), contractive_weight=0.1)
    """

    def __init__(self, input_shape, latent_dim=32, architecture="conv",
                 filters=(32, 64), upsampling="nearest", contractive_weight=0.1,
                 jacobian="exact", jacobian_samples=1, seed=0, **kwargs):
        backbone.check_choice("jacobian", jacobian, jacobian_lib.METHODS)
        encoder, decoder = backbone.build(
            input_shape, {"latent": (latent_dim, "sigmoid")}, architecture, filters,
            upsampling,
        )
        super().__init__(encoder, decoder, **kwargs)
        self.arguments = {
            "latent_dim": latent_dim, "architecture": architecture, "filters": filters,
            "upsampling": upsampling, "contractive_weight": contractive_weight,
            "jacobian": jacobian, "jacobian_samples": jacobian_samples, "seed": seed,
        }
        self.penalty_tracker = keras.metrics.Mean(name="jacobian_penalty")

    def jacobian_norm_sq(self, images, seed=(0, 0)):
        """||J_f(x)||_F² per image, by the configured method."""
        return jacobian_lib.frobenius_norm_sq(
            self.encoder, images, self.arguments["jacobian"],
            self.arguments["jacobian_samples"], seed,
        )

    def penalty(self, images):
        """λ × the batch's mean ||J_f(x)||_F²; tracks the mean as "jacobian_penalty"."""
        weight = self.arguments["contractive_weight"]
        if not weight:
            return None
        # The estimator's noise is keyed by seed and step, the same on every replica.
        step = tf.cast(self.optimizer.iterations if self.optimizer else 0, tf.int64)
        seed = tf.constant(self.arguments["seed"], tf.int64)
        norms = self.jacobian_norm_sq(images, seed=tf.stack([seed, step]))
        self.penalty_tracker.update_state(norms)
        return weight * ops.mean(norms)


MODEL = ContractiveAutoencoder
