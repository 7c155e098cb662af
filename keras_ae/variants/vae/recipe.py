"""The VAE's recipe: the ELBO and its terms, samples from the prior, the latent plane."""

import os

from keras import ops
import numpy as np
import tensorflow as tf

from keras_ae import data
from keras_ae import distribute
from keras_ae import model_dir
from keras_ae import plots
from keras_ae.variants.base_recipe import Recipe
from keras_ae.variants.vae import model as vae


class VAERecipe(Recipe):
    metrics = ("test_neg_elbo", "test_reconstruction_nll", "test_kl")

    def image_metrics(self, model, images, batch_size, seed, rows):
        """Negative ELBO in nats per image (one posterior sample per image,
        drawn from `seed`: row i of one draw for the whole test split) and its
        two terms."""
        z_mean, z_log_var = distribute.predict(model.encoder, images, batch_size)
        start, total = rows
        epsilon = tf.random.stateless_normal(
            [total, z_mean.shape[1]], seed=[seed, -1]).numpy()[start:start + len(images)]
        z = z_mean + np.exp(0.5 * z_log_var) * epsilon
        means = distribute.predict(model.decoder, z, batch_size)
        distribution = model.arguments["reconstruction"]
        nll = ops.convert_to_numpy(vae.reconstruction_nll(images, means, distribution))
        kl = ops.convert_to_numpy(vae.kl_divergence(z_mean, z_log_var))
        return {"test_neg_elbo": nll + kl, "test_reconstruction_nll": nll, "test_kl": kl}

    def save_figures(self, model, directory, images, labels, seed):
        """`samples.png`: 100 draws from the prior. With a 2-D code also
        `latent_manifold.png`, the decoded latent plane, and
        `latent_scatter.png`, the test codes by label."""
        plots.save_image_grid(
            os.path.join(directory, model_dir.SAMPLES_FIGURE_FILE), model.sample(100, seed=seed), 10
        )
        if model.arguments["latent_dim"] != 2:
            return
        # The latent plane at the prior's quantiles (±1.64σ).
        axis = np.linspace(-1.64, 1.64, 15)
        grid = np.array([[x, y] for y in axis[::-1] for x in axis], np.float32)
        plots.save_image_grid(
            os.path.join(directory, model_dir.MANIFOLD_FIGURE_FILE),
            distribute.predict(model.decoder, grid, batch_size=len(grid)), 15,
        )
        codes = np.concatenate([model.encode(chunk) for chunk in
                                data.as_images(images).float_chunks(len(grid))])
        plots.save_scatter(os.path.join(directory, model_dir.SCATTER_FIGURE_FILE), codes,
                           labels, "test set: z_mean by label")


RECIPE = VAERecipe()
