"""Random draws that do not depend on how the batch is split across replicas.

A layer that draws `N(0, 1)` for its per-replica batch would draw different
numbers on one device than on two, so a run's result would depend on the
strategy. Instead every replica draws the noise of the whole global batch from
the same stateless seed and keeps its own rows: one device and R replicas then
see identical numbers (the global batch is split into contiguous slices, in
replica order, for mirrored and multi-worker strategies alike). The draw is a
few thousand numbers, negligible next to the model.

TensorFlow ops here: the replica context is TensorFlow's.
"""

import keras
import tensorflow as tf


def global_batch_normal(rows, columns, seed):
    """`N(0, 1)` of shape `[rows, columns]`: this replica's rows of a global draw.

    Args:
        rows: this replica's batch size (a scalar tensor is fine).
        columns: the width of each row.
        seed: stateless seed, shape [2] integer tensor; the same on every replica.
    """
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context else 1
    replica = context.replica_id_in_sync_group if context else 0
    # Assumes equal per-replica batches (true except a final partial batch).
    everything = tf.random.stateless_normal([rows * replicas, columns], seed=seed)
    return everything[replica * rows : (replica + 1) * rows]


@keras.saving.register_keras_serializable(package="keras_ae")
class Sampling(keras.layers.Layer):
    """The reparameterization trick: `z = mean + exp(log_var / 2) · ε` in training.

    Outside training it returns `mean`, so inference (and every exported
    signature) is deterministic and free of random ops. ε comes from a
    stateless seed `(seed, step)`, the step counted by a weight that is saved
    and restored with the model, so a run is reproducible, resumes exactly, and
    does not depend on the number of replicas.

    Args:
        seed: integer seed. Default 0.

    Example:

        z = Sampling(seed=1)([z_mean, z_log_var])
    """

    def __init__(self, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.step = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False,
            # One increment per step however many replicas run it.
            aggregation="only_first_replica", name="step",
        )

    def call(self, inputs, training=False):
        z_mean, z_log_var = inputs
        if not training:
            return z_mean
        step = self.step.assign_add(1)
        epsilon = global_batch_normal(
            tf.shape(z_mean)[0], z_mean.shape[-1],
            seed=tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)]),
        )
        return z_mean + keras.ops.exp(0.5 * z_log_var) * tf.cast(epsilon, z_mean.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
