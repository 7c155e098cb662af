"""The reference tutorial's recipe, `Recipe`, which every variant's recipe
(`variants/<name>/recipe.py`) starts from, stating only how it differs.

A recipe is how a variant is trained by default, what it reports and which
figures it draws; the model (`model.py`) is the network and its loss, what
`fit` needs. `keras_ae.training.resolve` takes a run's defaults from the
recipe, and `keras_ae.training` reports and draws what it says. Every run,
whatever its recipe, reports `test_mse`, draws `reconstructions.png`, and with
test noise (`eval_noise_stddev` > 0) reports the PSNR of the noisy test input
and of its reconstruction and draws `denoising.png`.

Example:

    recipe = variants.recipe("vae")
    recipe.learning_rate            # 0.001
    recipe.test_metrics(model, data.test_images, batch_size=64, seed=0)
"""

import math

import numpy as np

from keras_ae import data


class Recipe:
    """The reference tutorial's recipe (the `linear` variant's): clean inputs,
    Adam at a constant learning rate of 1e-3; no metrics or figures of its own."""

    # Stddev of the Gaussian noise the input pipeline adds to training images.
    noise_stddev = 0.0
    # Share of each training input the pipeline hides in black squares
    # (masking noise, `keras_ae.data.pipeline.add_masking`).
    masking_noise = 0.0
    # Whether the input pipeline pastes simulated anomalies into training
    # images (`keras_ae.data.train_dataset`'s `anomalies`).
    simulated_anomalies = False
    # With them: the share of their masks drawn as rectangles, not blobs,
    # whether their grain fill takes the grey of what it covers, the share
    # of their pastes that do, and whether cells are a sixth fill
    # (`keras_ae.data.anomalies.Simulation`).
    rectangles = 0.0
    grain_at_place = False
    paste_at_place = 0.0
    cells = False
    batch_size = 64  # the global batch
    learning_rate = 1e-3
    # "constant", or "cosine": from `learning_rate` down to 0 at the last step.
    learning_rate_schedule = "constant"
    epochs = 10  # or None: by the training images (`epochs_for`)
    # With epochs None: how many training images the run shows the model,
    # whatever their number, an image smaller than the tile a model trains on
    # counted as its share of the tile's pixels (`epochs_for`).
    images_shown = None
    # With --normal_classes: each image's (each view's) error, "mse" or "top_k"
    # (or "map_max", `keras_ae.anomaly`).
    anomaly_score = "mse"
    # On a folder of defects (MVTec AD's layout): the defaults that differ
    # there, by field name ("anomaly_score", "masking_noise").
    on_defects = {}
    # With --normal_classes: the anomaly map's Gaussian smoothing, its sigma
    # a share of the image's shorter side (1.75 px at 28): the best of
    # bench/defects.py's sweep of sigmas (BUILD.md, "Synthetic defects").
    anomaly_map_smoothing = 1 / 16
    # On images smaller than the tile the model trains on (whole small
    # parts, not crops of larger images; `on_images`): the defaults that
    # differ there, by field name ("rectangles", "images_shown").
    on_small_images = {}

    # The names of the variant's own figures of merit (`image_metrics`).
    metrics = ()

    def epochs_for(self, train_images, share=1.0):
        """The epochs of a run on `train_images` images: `epochs`, or, where
        that is None, enough to show the model `images_shown` images (on
        images smaller than the tile, the number `on_small_images` gives),
        each counted as `share` of one (an image smaller than the model's
        tile: its share of the tile's pixels, so that small images train at
        least as long)."""
        if self.epochs is not None:
            return self.epochs
        shown = self.on_images("images_shown", share)
        return max(1, math.ceil(shown / (max(1, train_images) * share)))

    def on_images(self, name, share):
        """The recipe's `name` for images that fill `share` of the model's
        tile (`training.defaults.tile_share`): its `on_small_images` value where that
        is below 1, else its own."""
        own = getattr(self, name)
        return self.on_small_images.get(name, own) if share < 1 else own

    def test_metrics(self, model, images, batch_size, seed):
        """The variant's own figures of merit on the clean test `images` (an
        `Images`, or an array), each the mean over images of `image_metrics`,
        read chunk by chunk."""
        if not self.metrics:
            return {}
        images = data.as_images(images)
        values, start = {name: [] for name in self.metrics}, 0
        for chunk in images.float_chunks(batch_size):
            rows = (start, len(images))
            for name, value in self.image_metrics(model, chunk, batch_size, seed, rows).items():
                values[name].append(value)
            start += len(chunk)
        return {name: float(np.mean(np.concatenate(value))) for name, value in values.items()}

    def image_metrics(self, model, images, batch_size, seed, rows):
        """`{name: [n]}`: each of `metrics` for each of the float `images` in
        [0, 1], the test images `rows[0] ...` of `rows[1]`."""
        return {}

    def save_figures(self, model, directory, images, labels, seed):
        """Writes the variant's own figures of the test split (`images`, an
        `Images` or an array, and their `labels`) to `directory`."""
