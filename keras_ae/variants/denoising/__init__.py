"""The denoising autoencoder: the conv (or dense) network trained on (noisy, clean) pairs.
Its model's options, as `keras_ae.config` and `train.py` read them; `model.py` and
`recipe.py` beside."""

from keras_ae.variants import options

OPTIONS = options.BACKBONE
