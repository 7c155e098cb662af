"""The sparse autoencoder: a penalty that keeps most code units near zero.

Two penalties, selectable:
- "l1": weight × Σ_j |a_j| per image (L1 activity regularization), on ReLU
  code units;
- "kl": weight × Σ_j KL(ρ || ρ̂_j), the classic sparse autoencoder's penalty,
  on sigmoid code units, ρ̂_j the mean activation of unit j over the global
  batch and ρ the target (`sparsity_target`).
"""

import keras
from keras import ops
import tensorflow as tf

from keras_ae.models import backbone
from keras_ae.models.autoencoder import Autoencoder
from keras_ae.variants.sparse import PENALTIES

# Default weight per penalty, for a per-pixel MSE reconstruction loss (~0.01).
DEFAULT_WEIGHTS = {"l1": 1e-4, "kl": 1e-3}


def global_batch_mean(values):
    """Mean over the global batch (all replicas) of `values` `[batch, units]`.

    The KL penalty needs the batch's mean activation; averaging each replica's
    share alone would make the penalty depend on the number of replicas.
    all_reduce is differentiable, so the gradient is the global batch's too.
    """
    total = tf.reduce_sum(values, axis=0)
    count = tf.cast(tf.shape(values)[0], values.dtype)
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        total, count = context.all_reduce(tf.distribute.ReduceOp.SUM, [total, count])
    return total / count


def sparsity_penalty(code, penalty="l1", target=0.05):
    """The penalty on a batch of codes `[batch, units]`, before its weight.

    "l1": mean over the batch of Σ_j |a_j|. "kl": Σ_j KL(ρ || ρ̂_j), ρ̂_j the
    mean activation of unit j over the global batch, ρ = `target`.
    """
    if penalty == "l1":
        return ops.mean(ops.sum(ops.abs(code), axis=-1))
    rho_hat = ops.clip(global_batch_mean(code), 1e-6, 1 - 1e-6)
    return ops.sum(
        target * ops.log(target / rho_hat)
        + (1 - target) * ops.log((1 - target) / (1 - rho_hat))
    )


@keras.saving.register_keras_serializable(package="keras_ae")
class SparseAutoencoder(Autoencoder):
    """An autoencoder whose code is pushed towards sparsity.

    Args:
        input_shape: image shape `(height, width, channels)`.
        latent_dim: size of the code. Default 32.
        architecture: "conv" (default) or "dense".
        filters: conv channels per downsampling level. Default (32, 64).
        upsampling: "nearest" (default) or "transpose".
        sparsity: "l1" (default; ReLU code) or "kl" (sigmoid code).
        sparsity_weight: weight of the penalty; 0 turns it off. Default None:
            `DEFAULT_WEIGHTS[sparsity]`, 1e-4 for "l1" and 1e-3 for "kl".
        sparsity_target: ρ, the target mean activation for "kl". Default 0.05.

    Example:

        model = SparseAutoencoder((28, 28, 1), sparsity="kl", sparsity_weight=0.1)
    """

    def __init__(self, input_shape, latent_dim=32, architecture="conv",
                 filters=(32, 64), upsampling="nearest", sparsity="l1",
                 sparsity_weight=None, sparsity_target=0.05, **kwargs):
        backbone.check_choice("sparsity", sparsity, PENALTIES)
        activation = "relu" if sparsity == "l1" else "sigmoid"
        network = {"architecture": architecture, "filters": filters, "upsampling": upsampling}
        encoder, decoder = backbone.build(
            input_shape, {"latent": (latent_dim, activation)}, **network
        )
        super().__init__(encoder, decoder, **kwargs)
        self.arguments = {
            "latent_dim": latent_dim, **network, "sparsity": sparsity,
            "sparsity_weight": sparsity_weight, "sparsity_target": sparsity_target,
        }
        self.weight = self.default_options(
            sparsity=sparsity, sparsity_weight=sparsity_weight
        )["sparsity_weight"]
        self.penalty_tracker = keras.metrics.Mean(name="sparsity_penalty")

    def penalty(self, images):
        """The weighted sparsity penalty; tracks it (unweighted) as "sparsity_penalty"."""
        if not self.weight:
            return None
        value = sparsity_penalty(
            self.encoder(images), self.arguments["sparsity"], self.arguments["sparsity_target"]
        )
        self.penalty_tracker.update_state(value)
        return self.weight * value

    @classmethod
    def default_options(cls, **options):
        options = super().default_options(**options)
        if options["sparsity_weight"] is None:
            options["sparsity_weight"] = DEFAULT_WEIGHTS[options["sparsity"]]
        return options


MODEL = SparseAutoencoder
