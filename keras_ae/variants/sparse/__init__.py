"""The sparse autoencoder: an L1 or KL penalty keeps most code units near zero. Its model's
options, as `keras_ae.config` and `train.py` read them; `model.py` and `recipe.py` beside."""

from keras_ae.variants import options

PENALTIES = ("l1", "kl")
OPTIONS = (
    *options.BACKBONE,
    options.Option("sparsity", "str", "penalty, l1 (ReLU code) or kl (sigmoid code)",
                   choices=PENALTIES),
    options.Option("sparsity_weight", "float", "weight of the penalty, by penalty", minimum=0),
    options.Option("sparsity_target", "float", "target mean activation rho for kl",
                   between=(0, 1)),
)
