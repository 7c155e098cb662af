"""keras-ae: autoencoders in Keras 3, trained under tf.distribute and exported.

Example:

    import keras_ae

    data = keras_ae.data.load("fashion_mnist")
    model = keras_ae.build("conv", (28, 28, 1), latent_dim=32)
    model.compile()
"""

from keras_ae import config
from keras_ae import data
from keras_ae import distribute
from keras_ae import models
from keras_ae import training
from keras_ae.models import VARIANTS, build

__version__ = "0.1.0"
