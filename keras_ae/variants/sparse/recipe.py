"""The sparse autoencoder's recipe: how sparse its codes come out."""

import numpy as np

from keras_ae.variants.base_recipe import Recipe


# A code activation below this counts as "near zero": the default KL target.
# Sigmoid units under the KL penalty settle near small values rather than at
# 0, so a stricter 0.01 missed them.
NEAR_ZERO = 0.05


class SparseRecipe(Recipe):
    metrics = ("mean_code_activation", "fraction_code_near_zero")

    def image_metrics(self, model, images, batch_size, seed, rows):
        """The mean code activation, and the fraction of units near zero."""
        code = model.encode(images, batch_size=batch_size)
        return {"mean_code_activation": np.mean(code, axis=1),
                "fraction_code_near_zero": np.mean(np.abs(code) < NEAR_ZERO, axis=1)}


RECIPE = SparseRecipe()
