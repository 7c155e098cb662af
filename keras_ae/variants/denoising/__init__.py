"""The denoising autoencoder: the conv (or dense) network trained on (noisy, clean) pairs.

A variant in one folder: this declaration of its model's options (plain data,
what `keras_ae.config` and `train.py` read), `model.py` (the network and its
loss, `MODEL`) and `recipe.py` (how it trains by default, what it reports and
draws, `RECIPE`).
"""

from keras_ae.variants import options

OPTIONS = options.BACKBONE
