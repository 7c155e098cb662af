"""The contractive autoencoder's recipe: the Jacobian's norm on the test images."""

import numpy as np

from keras_ae.models import jacobian
from keras_ae.variants.base_recipe import Recipe


class ContractiveRecipe(Recipe):
    metrics = ("mean_jacobian_frobenius",)

    def image_metrics(self, model, images, batch_size, seed, rows):
        """||J_f(x)||_F, from the exact Jacobian whatever the training penalty used."""
        norms_sq = np.concatenate([
            jacobian.frobenius_norm_sq(model.encoder, images[i : i + batch_size]).numpy()
            for i in range(0, len(images), batch_size)
        ])
        return {"mean_jacobian_frobenius": np.sqrt(norms_sq)}


RECIPE = ContractiveRecipe()
