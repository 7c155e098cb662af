"""The reference tutorial's linear autoencoder: 784 → 32 ReLU → 784 sigmoid, MSE, Adam 1e-3.
Its model's options, as `keras_ae.config` and `train.py` read them; `model.py` and
`recipe.py` beside."""

from keras_ae.variants import options

OPTIONS = (options.LATENT_DIM,)
