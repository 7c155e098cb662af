"""The DRAEM-style detector's recipe: trained on simulated anomalies."""

from keras_ae.variants.base_recipe import Recipe


class DraemRecipe(Recipe):
    """Clean images with anomalies pasted in by the input pipeline
    (`keras_ae.data.anomalies`), Adam warmed up over the first epoch then
    decayed; the map is the segmentation as it is (its score smooths it)."""

    simulated_anomalies = True
    batch_size = 8  # DRAEM's: as fast per image here as 64, and 8 times the steps
    learning_rate = 2e-3
    learning_rate_schedule = "warmup_cosine"
    # Epochs by the training images: 60 of 270 texture crops (bench/textures.py,
    # about 7 minutes here), 3 of 5,400 Fashion-MNIST images.
    epochs = None
    images_shown = 16_000
    anomaly_map_smoothing = 0.0


RECIPE = DraemRecipe()
