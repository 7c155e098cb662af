"""The contractive autoencoder: λ‖J_f(x)‖²_F on the encoder's Jacobian.

A variant in one folder: this declaration of its model's options (plain data,
what `keras_ae.config` and `train.py` read), `model.py` (the network and its
loss, `MODEL`) and `recipe.py` (how it trains by default, what it reports and
draws, `RECIPE`).
"""

from keras_ae.variants import options

JACOBIAN_METHODS = ("exact", "estimate")
OPTIONS = (
    *options.BACKBONE,
    options.Option("contractive_weight", "float", "lambda of ||J||_F^2", minimum=0),
    options.Option("jacobian", "str", "exact or estimate (Hutchinson)",
                   choices=JACOBIAN_METHODS),
    options.Option("jacobian_samples", "int", "samples per image for estimate"),
)
