"""The DRAEM-style detector's recipe: trained on simulated anomalies."""

from keras_ae.variants.base_recipe import Recipe


class DraemRecipe(Recipe):
    """Clean images with anomalies pasted in by the input pipeline
    (`keras_ae.data.anomalies`), Adam warmed up over the first epoch then
    decayed; the map is the segmentation as it is (its score smooths it),
    on images smaller than the tile smoothed (`on_small_images`)."""

    simulated_anomalies = True
    batch_size = 8  # DRAEM's: eight times the steps of the default 64 per epoch
    learning_rate = 2e-3
    learning_rate_schedule = "warmup_cosine"
    # Epochs by the training images, an image smaller than the tile counted as its
    # share of the tile's pixels: 54 of 300 texture crops (bench/textures.py), 16 of
    # 5,400 Fashion-MNIST images of 28 px (bench/defects.py; 3 until it counted so).
    epochs = None
    images_shown = 16_000
    anomaly_map_smoothing = 0.0
    # Images smaller than the tile are whole small parts, as bench/defects.py's
    # 28 px garments: there half of the masks are rectangles (CutPaste's
    # patch, straight-edged) and the map is smoothed as conv's, which raised
    # their pixel AUROC; on crops of textures the rectangles cost both grass and
    # gravel (BUILD.md, "Small whole images").
    on_small_images = {"rectangles": 0.5, "anomaly_map_smoothing": 1 / 16}


RECIPE = DraemRecipe()
