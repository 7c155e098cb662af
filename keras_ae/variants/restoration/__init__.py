"""The restoration detector (ARNet-style): restores each image from its quarter turns while
a head names the turn. Its model's options, as `keras_ae.config` and `train.py` read them;
`model.py` and `recipe.py` beside."""

from keras_ae.variants import options

OPTIONS = (
    options.LATENT_DIM,
    options.FILTERS,
    options.Option("decoder_filters", "ints", "the decoder's channels per level"),
    options.UPSAMPLING,
    options.Option("view_weight", "float", "weight of the view head's cross-entropy",
                   minimum=0),
)
