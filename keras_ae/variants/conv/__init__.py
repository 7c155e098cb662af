"""The convolutional autoencoder: strided-conv encoder, upsampling decoder. Its model's
options, as `keras_ae.config` and `train.py` read them; `model.py` and `recipe.py` beside."""

from keras_ae.variants import options

OPTIONS = (options.LATENT_DIM, options.FILTERS, options.UPSAMPLING)
