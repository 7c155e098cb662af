"""The DRAEM-style detector's recipe: trained on simulated anomalies."""

from keras_ae.variants.base_recipe import Recipe


class DraemRecipe(Recipe):
    """Clean images with anomalies pasted in by the input pipeline
    (`keras_ae.data.anomalies`), Adam warmed up over the first epoch then
    decayed; the map is the segmentation as it is (its score smooths it)."""

    simulated_anomalies = True
    batch_size = 8  # DRAEM's: eight times the steps of the default 64 per epoch
    learning_rate = 2e-3
    learning_rate_schedule = "warmup_cosine"
    # Epochs by the training images: 60 of 270 texture crops (bench/textures.py),
    # 3 of 5,400 Fashion-MNIST images (bench/defects.py).
    epochs = None
    images_shown = 16_000
    anomaly_map_smoothing = 0.0


RECIPE = DraemRecipe()
