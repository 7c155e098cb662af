"""The squared Frobenius norm of an encoder's Jacobian, exactly or estimated.

For an encoder f: images → code, ||J_f(x)||_F² = Σ_ij (∂f_i/∂x_j)². "exact"
forms the whole Jacobian (one backward pass per code unit, vectorized);
"estimate" uses Hutchinson's identity E_v ||J^T v||² = ||J||_F² for
v ~ N(0, I), one backward pass per sample, unbiased.

Both are differentiable, so they can serve as a training penalty (the
contractive autoencoder's); TensorFlow's tapes do the nesting.
"""

import tensorflow as tf

from keras_ae.variants.contractive import JACOBIAN_METHODS

from keras_ae.models.sampling import global_batch_normal

METHODS = JACOBIAN_METHODS


def frobenius_norm_sq(encoder, images, method="exact", samples=1, seed=(0, 0)):
    """||J(x)||_F² per example of `images`, J the encoder's Jacobian.

    Args:
        encoder: a model mapping images to one code tensor `[batch, units]`.
        images: a batch of images.
        method: "exact" or "estimate".
        samples: Hutchinson samples for "estimate". Default 1.
        seed: stateless seed for "estimate" (shape [2]).

    Returns:
        A `[batch]` tensor.
    """
    images = tf.convert_to_tensor(images)
    with tf.GradientTape(persistent=method == "estimate") as tape:
        tape.watch(images)
        code = encoder(images)
    if method == "exact":
        jacobian = tape.batch_jacobian(code, images)  # [batch, units, H, W, C]
        return tf.reduce_sum(tf.square(tf.reshape(jacobian, [tf.shape(code)[0], -1])), 1)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    total = 0.0
    for k in range(samples):
        v = global_batch_normal(
            tf.shape(code)[0], code.shape[-1],
            tf.random.experimental.stateless_fold_in(seed, k),
        )
        vjp = tape.gradient(code, images, output_gradients=tf.cast(v, code.dtype))
        total += tf.reduce_sum(tf.square(tf.reshape(vjp, [tf.shape(code)[0], -1])), 1)
    del tape
    return total / samples
