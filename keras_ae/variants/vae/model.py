"""The variational autoencoder: layers, wiring, loss, metrics and figures.

Encoder → (z_mean, z_log_var) → KL term → reparameterized sample → decoder.
Loss per image = reconstruction negative log-likelihood (summed over pixels;
Bernoulli by default, or unit-variance Gaussian) + beta × KL(q(z|x) || N(0, I)),
so the loss is the negative ELBO in nats per image when beta = 1.
At inference the model decodes `z_mean` (deterministic); `sample()` decodes
draws from the prior.
"""

import math

import keras
from keras import ops
import tensorflow as tf

from keras_ae import distribute
from keras_ae.models import backbone
from keras_ae.models.autoencoder import Autoencoder
from keras_ae.models.sampling import Sampling
from keras_ae.variants.vae import RECONSTRUCTIONS



def kl_divergence(z_mean, z_log_var):
    """KL(N(z_mean, exp(z_log_var)) || N(0, I)) per example, in nats."""
    return -0.5 * ops.sum(
        1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1
    )


@keras.saving.register_keras_serializable(package="keras_ae")
def reconstruction_nll(images, means, distribution="bernoulli"):
    """−log p(images | decoder means) per image, summed over pixels, in nats."""
    if distribution == "bernoulli":
        per_pixel = ops.binary_crossentropy(images, means)
    else:  # unit-variance Gaussian
        per_pixel = 0.5 * ops.square(images - means) + 0.5 * math.log(2 * math.pi)
    return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=-1)


@keras.saving.register_keras_serializable(package="keras_ae")
class ReconstructionNLL(keras.losses.Loss):
    """The VAE's reconstruction term as a Keras loss (scaled across replicas)."""

    def __init__(self, distribution="bernoulli", name="reconstruction_nll", **kwargs):
        super().__init__(name=name, **kwargs)
        self.distribution = distribution

    def call(self, y_true, y_pred):
        return reconstruction_nll(y_true, y_pred, self.distribution)

    def get_config(self):
        return {**super().get_config(), "distribution": self.distribution}


@keras.saving.register_keras_serializable(package="keras_ae")
class VariationalAutoencoder(Autoencoder):
    """A VAE on the shared dense or conv backbone.

    Args:
        input_shape: image shape `(height, width, channels)`.
        latent_dim: size of z. Default 32.
        architecture: "conv" (default) or "dense".
        filters: conv channels per downsampling level. Default (32, 64).
        upsampling: "nearest" (default) or "transpose".
        beta: weight of the KL term. Default 1 (the ELBO).
        reconstruction: "bernoulli" (default) or "gaussian" likelihood.
        seed: seed of the reparameterization noise (a run passes its
            `--seed`). Default 0.

    Example:

        vae = VariationalAutoencoder((28, 28, 1), latent_dim=2)
        vae.compile()  # negative ELBO, Adam(1e-3); tracks reconstruction_nll, kl
        vae.fit(images, images, epochs=10)
        faces = vae.sample(16)
    """

    def __init__(self, input_shape, latent_dim=32, architecture="conv",
                 filters=(32, 64), upsampling="nearest", beta=1.0,
                 reconstruction="bernoulli", seed=0, **kwargs):
        backbone.check_choice("reconstruction", reconstruction, RECONSTRUCTIONS)
        encoder, decoder = backbone.build(
            input_shape, {"z_mean": (latent_dim, None), "z_log_var": (latent_dim, None)},
            architecture, filters, upsampling,
        )
        sampling = Sampling(seed, name="sampling", dtype=backbone.head_dtype())  # as the heads
        super().__init__(encoder, decoder, bottleneck=sampling, **kwargs)
        self.arguments = {
            "latent_dim": latent_dim, "architecture": architecture, "filters": filters,
            "upsampling": upsampling, "beta": beta, "reconstruction": reconstruction,
            "seed": seed,
        }
        self.kl_tracker = keras.metrics.Mean(name="kl")

    def penalty(self, images):
        """beta × the batch's mean KL(q(z|x) || N(0, I)); tracks the KL as "kl"."""
        z_mean, z_log_var = self.encoder(images)
        kl = kl_divergence(z_mean, z_log_var)
        self.kl_tracker.update_state(kl)
        return self.arguments["beta"] * ops.mean(kl)

    def compile(self, optimizer=None, loss=None, metrics=None, **kwargs):
        distribution = self.arguments["reconstruction"]
        if loss is None:
            loss = ReconstructionNLL(distribution)
        if metrics is None:
            metrics = [keras.metrics.MeanMetricWrapper(
                reconstruction_nll, name="reconstruction_nll", distribution=distribution
            )]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def encode(self, images, batch_size=32):
        return super().encode(images, batch_size)[0]  # z_mean

    def sample(self, count, seed=0):
        """Decodes `count` draws from the prior N(0, I) (numpy images)."""
        z = tf.random.stateless_normal([count, self.arguments["latent_dim"]], seed=[seed, 0])
        return distribute.predict(self.decoder, z, batch_size=count)


MODEL = VariationalAutoencoder
