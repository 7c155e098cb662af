"""The reference tutorial's linear autoencoder: 784 → 32 ReLU → 784 sigmoid, MSE, Adam 1e-3.

A variant in one folder: this declaration of its model's options (plain data,
what `keras_ae.config` and `train.py` read), `model.py` (the network and its
loss, `MODEL`) and `recipe.py` (how it trains by default, what it reports and
draws, `RECIPE`).
"""

from keras_ae.variants import options

OPTIONS = (options.LATENT_DIM,)
