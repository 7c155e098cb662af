"""The variational autoencoder: loss = reconstruction NLL + beta × KL. Its model's options,
as `keras_ae.config` and `train.py` read them; `model.py` and `recipe.py` beside."""

from keras_ae.variants import options

RECONSTRUCTIONS = ("bernoulli", "gaussian")
OPTIONS = (
    *options.BACKBONE,
    options.Option("beta", "float", "weight of the KL term", minimum=0),
    options.Option("reconstruction", "str", "likelihood, bernoulli or gaussian",
                   choices=RECONSTRUCTIONS),
)
