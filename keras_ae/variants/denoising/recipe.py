"""The denoising autoencoder's recipe: noisy inputs."""

from keras_ae.variants.base_recipe import Recipe


class DenoisingRecipe(Recipe):
    """Trained on `(noisy, clean)` pairs: noise is what makes it denoise. Its
    PSNR metrics and `denoising.png` come with the test noise, by default the
    training noise."""

    noise_stddev = 0.5


RECIPE = DenoisingRecipe()
