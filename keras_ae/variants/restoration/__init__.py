"""The restoration detector (ARNet-style): restores each image from its quarter turns while a head names the turn.

A variant in one folder: this declaration of its model's options (plain data,
what `keras_ae.config` and `train.py` read), `model.py` (the network and its
loss, `MODEL`) and `recipe.py` (how it trains by default, what it reports and
draws, `RECIPE`).
"""

from keras_ae.variants import options

OPTIONS = (
    options.LATENT_DIM,
    options.FILTERS,
    options.Option("decoder_filters", "ints", "the decoder's channels per level"),
    options.UPSAMPLING,
    options.Option("view_weight", "float", "weight of the view head's cross-entropy",
                   minimum=0),
)
