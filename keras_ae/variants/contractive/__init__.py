"""The contractive autoencoder: λ‖J_f(x)‖²_F on the encoder's Jacobian. Its model's options,
as `keras_ae.config` and `train.py` read them; `model.py` and `recipe.py` beside."""

from keras_ae.variants import options

JACOBIAN_METHODS = ("exact", "estimate")
OPTIONS = (
    *options.BACKBONE,
    options.Option("contractive_weight", "float", "lambda of ||J||_F^2", minimum=0),
    options.Option("jacobian", "str", "exact or estimate (Hutchinson)",
                   choices=JACOBIAN_METHODS),
    options.Option("jacobian_samples", "int", "samples per image for estimate"),
)
