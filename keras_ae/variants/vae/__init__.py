"""The variational autoencoder: loss = reconstruction NLL + beta × KL.

A variant in one folder: this declaration of its model's options (plain data,
what `keras_ae.config` and `train.py` read), `model.py` (the network and its
loss, `MODEL`) and `recipe.py` (how it trains by default, what it reports and
draws, `RECIPE`).
"""

from keras_ae.variants import options

RECONSTRUCTIONS = ("bernoulli", "gaussian")
OPTIONS = (
    *options.BACKBONE,
    options.Option("beta", "float", "weight of the KL term", minimum=0),
    options.Option("reconstruction", "str", "likelihood, bernoulli or gaussian",
                   choices=RECONSTRUCTIONS),
)
