"""The defect detector trained on simulated anomalies (DRAEM's recipe): a
reconstructive network restores the image, a segmentation network marks where
the input and its restoration differ. Its model's options, as `keras_ae.config`
and `train.py` read them; `model.py` and `recipe.py` beside."""

from keras_ae.variants import options

OPTIONS = (
    options.Option("width", "int", "channels of the first level; each deeper level "
                   "doubles them, up to 8 times"),
    options.UPSAMPLING,
    options.Option("tile", "int", "side of the crops it trains on; a larger image is "
                   "scored by overlapping tiles of this side, stitched in the export"),
    options.Option("top_pixels", "int", "how many of the segmentation's highest pixels "
                   "the image's score averages"),
    options.Option("contrast", "str", "the local contrast the segmenter reads: each "
                   "pixel's differences with its right and lower neighbours, by direction; "
                   "earlier models': their mean (neighbours), or each pixel's deviation "
                   "from its 3x3 mean (mean)", choices=("directions", "neighbours", "mean")),
)
