"""The defect detector trained on simulated anomalies (DRAEM's recipe): a
reconstructive network restores the image, a segmentation network marks where
the input and its restoration differ. Its model's options, as `keras_ae.config`
and `train.py` read them; `model.py` and `recipe.py` beside."""

from keras_ae.variants import options

OPTIONS = (
    options.Option("width", "int", "channels of the first level; each deeper level "
                   "doubles them, up to 8 times"),
    options.UPSAMPLING,
)
