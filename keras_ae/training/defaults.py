"""A run's configuration with every default it uses written in, before it starts."""

import dataclasses

from keras_ae import config as config_lib
from keras_ae import models
from keras_ae import variants


def resolve(config):
    """`config` with every default the run uses written in.

    Noise, masking noise, batch size, epochs, learning rate, schedule and
    anomaly score left None come from the variant's recipe (on a folder of
    defects, its `on_defects` first)
    (`keras_ae.variants.recipe`), the test noise from the training noise, and
    model options from the model's constructor (`default_options`). A model's
    own `seed` option is not a field: it is the run's `data.seed`.

    Example:

        resolve(config_lib.RunConfig(config_lib.DataConfig(), config_lib.ModelConfig("conv"),
                                     config_lib.TrainConfig("/tmp/run")))
        # ... learning_rate=0.003, learning_rate_schedule="cosine", latent_dim=32, ...
    """
    recipe = variants.recipe(config.model.variant)
    for name in ("rectangles", "grain_at_place", "paste_at_place", "cells"):
        if getattr(config.data, name) and not recipe.simulated_anomalies:
            raise config_lib.ConfigError(
                name, f"shapes simulated anomalies, which variant {config.model.variant!r} "
                "is not trained on; drop it, or train --variant=draem")
    on_defects = recipe.on_defects if config.defects_layout() else {}
    noise = _or(config.data.noise_stddev, recipe.noise_stddev)
    data = dataclasses.replace(
        config.data, noise_stddev=noise, batch_size=_or(config.data.batch_size, recipe.batch_size),
        eval_noise_stddev=_or(config.data.eval_noise_stddev, noise),
        masking_noise=_or(config.data.masking_noise,
                          on_defects.get("masking_noise", recipe.masking_noise)),
    )
    options = models.VARIANTS[config.model.variant].default_options(**config.model.options())
    options.pop("seed", None)
    model = dataclasses.replace(config.model, **options)
    train = dataclasses.replace(
        config.train,
        epochs=_or(config.train.epochs, recipe.epochs),
        learning_rate=_or(config.train.learning_rate, recipe.learning_rate),
        learning_rate_schedule=_or(
            config.train.learning_rate_schedule, recipe.learning_rate_schedule
        ),
    )
    anomaly = config.anomaly
    if anomaly.normal_classes:
        score = on_defects.get("anomaly_score", recipe.anomaly_score)
        anomaly = dataclasses.replace(anomaly, anomaly_score=_or(anomaly.anomaly_score, score))
    return dataclasses.replace(config, data=data, model=model, train=train, anomaly=anomaly)


def with_data(config, data):
    """`config` with what `data` decides written in: the image size and
    channels, the masks' and a detector's validation images' folders found,
    the anomaly map's sigma, the recipe's share of the shorter side unless
    given, how simulated anomalies are drawn (`data.simulation`), and the
    epochs of a recipe that counts them by the training images
    (`Recipe.epochs_for`: images smaller than the model's `tile` by their
    share of its pixels), each unless given; on images smaller than the
    tile, the recipe's `on_small_images`."""
    height, width, channels = data.image_shape()
    masks = data.test_masks and data.test_masks.directory
    recipe = variants.recipe(config.model.variant)
    share = tile_share(config, height, width)
    anomaly = config.anomaly
    if anomaly.normal_classes:
        smoothing = recipe.on_images("anomaly_map_smoothing", share)
        anomaly = dataclasses.replace(anomaly, anomaly_map_sigma=_or(
            anomaly.anomaly_map_sigma, round(smoothing * min(height, width), 4)))
    train = dataclasses.replace(config.train, epochs=_or(
        config.train.epochs, recipe.epochs_for(len(data.train_images), share)))
    return dataclasses.replace(config, anomaly=anomaly, train=train, data=dataclasses.replace(
        config.data, image_size=(height, width), channels=channels,
        rectangles=_or(config.data.rectangles, recipe.on_images("rectangles", share)),
        grain_at_place=_or(config.data.grain_at_place, recipe.on_images("grain_at_place", share)),
        paste_at_place=_or(config.data.paste_at_place, recipe.on_images("paste_at_place", share)),
        cells=_or(config.data.cells, recipe.on_images("cells", share)),
        test_mask_dir=masks or config.data.test_mask_dir,
        validation_dir=_validation_dir(config, data)))


def tile_share(config, height=None, width=None):
    """The share of its model's tile (`config.model.tile`, None where it takes
    whole images) that an image of the run fills, `height` x `width` (default
    `config.data.image_size`): below 1 for images smaller than the tile."""
    tile = config.model.tile  # a field of every ModelConfig, None where not taken or set
    if height is None:
        height, width = config.data.image_size
    return min(height, tile) * min(width, tile) / tile ** 2 if tile else 1.0


def _validation_dir(config, data):
    """The validation folder a folder's detector read, "" for none (so that
    the export reads none either); None for other sources."""
    if config.data.dataset != "folder":
        return None
    return (config.anomaly.normal_classes and data.validation_dir) or ""


def _or(value, default):
    return default if value is None else value
