"""The detector trained on simulated anomalies: its anomalies, its loss, its map
and score, its size, and a run served as Keras scores it."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image
import tensorflow as tf

import keras_ae
from keras_ae import config as config_lib
from keras_ae import data
from keras_ae import distribute
from keras_ae import export
from keras_ae import model_dir as model_dir_lib
from keras_ae import training
from keras_ae.data import anomalies
from keras_ae.export import tflite
from keras_ae.export import tflite_files
from keras_ae.models import tiles
from keras_ae.training import memory
from keras_ae.training import run as run_lib
from keras_ae.variants.draem import layers as draem_layers
from keras_ae.variants.draem import model as draem
from tests.test_case import AutoencoderTestCase


class TestDraem(AutoencoderTestCase):
    """One battery: oblong RGB images (tests/test_conv.py builds the transpose
    decoder at odd sizes)."""
    variant = "draem"
    input_shape = (12, 8, 3)
    options = {"width": 4}


def test_depth_follows_the_image_and_the_parameters_stay_bounded():
    assert [draem.levels((side, side)) for side in (8, 28, 128, 256, 1024)] == [1, 2, 4, 5, 6]
    assert draem.levels((1024, 96)) == 4  # the shorter side decides
    sizes = {side: keras_ae.build("draem", (side, side, 3), tile=side).count_params()
             for side in (256, 1024, 4096)}
    assert sizes[1024] == sizes[4096] < 4_000_000  # no layer grows with the image
    # By default the networks take tiles: those of an image of one tile.
    assert keras_ae.build("draem", (1024, 1024, 3)).count_params() == keras_ae.build(
        "draem", (draem.TILE, draem.TILE, 3)).count_params()


def test_the_local_contrast_is_flat_places_near_zero_and_a_grain_its_scaled_differences():
    images = np.full((1, 8, 8, 2), 0.5, np.float32)
    images[0, :, 4:, 0] = 0.5 + 0.01 * (-1) ** np.arange(8)[:, None]  # a faint grain, rows
    images[0, :, 4:, 1] = (np.arange(8)[:, None] + np.arange(4)) % 2  # a black and white board
    contrast = np.array(draem_layers.LocalContrast()(images))[0]
    assert contrast.shape == (8, 8, 4)  # per channel, right and lower neighbours'
    # Flat, both channels, to the last row (mirrored, not padded): the root of 1e-4.
    assert np.allclose(contrast[:, :2], 0.01)
    # Inside the grain a pixel is 0.02 off its lower neighbour, level with its right one.
    grain = (draem_layers.CONTRAST_SCALES["directions"] * 0.02) ** 2
    assert np.allclose(contrast[1:6, 5, 0], 0.01, atol=1e-4)
    assert np.allclose(contrast[1:6, 5, 1], np.sqrt(grain + 1e-4), atol=1e-4)
    assert np.allclose(contrast[1:6, 5, 2:], 1, atol=1e-3)  # every difference clipped to 1
    layer = draem_layers.LocalContrast(scale=draem_layers.CONTRAST_SCALES["directions"] / 2)
    loaded = draem_layers.LocalContrast.from_config(layer.get_config())
    assert np.allclose(np.array(loaded(images))[0, 1:6, 5, 1], np.sqrt(grain / 4 + 1e-4),
                       atol=1e-4)
    # Earlier models' forms: the two directions' mean (from 2ced6cc), and each
    # pixel's deviation from its 3x3 mean (before).
    mean = np.array(draem_layers.LocalContrast("neighbours")(images))[0]
    assert mean.shape == (8, 8, 2)
    assert np.allclose(mean[1:6, 5, 0], np.sqrt(grain / 2 + 1e-4), atol=1e-4)
    old = np.array(draem_layers.LocalContrast("mean")(images))[0]
    deviation = draem_layers.CONTRAST_SCALES["mean"] * 0.01 * 4 / 3
    assert np.allclose(old[2:6, 6, 0], np.sqrt(deviation ** 2 + 1e-4), atol=1e-4)
    assert np.allclose(old[:, :2], 0.01)


def test_without_a_variant_a_defects_folder_trains_draem_and_classes_restoration():
    def chosen(data, normal_classes=("good",)):
        return config_lib.RunConfig(data, config_lib.ModelConfig(), config_lib.TrainConfig("r"),
                                    config_lib.AnomalyConfig(normal_classes=normal_classes or None))

    # A folder not there (yet): its data is read later, and refused then if missing.
    mvtec = config_lib.DataConfig("folder", data_dir="part/train", test_dir="part/test")
    assert chosen(mvtec).model.variant == "draem"
    assert chosen(config_lib.DataConfig("folder", data_dir="classes")).model.variant == \
        "restoration"
    assert chosen(config_lib.DataConfig("fashion_mnist"), ("1",)).model.variant == "restoration"
    assert chosen(mvtec, ()).model.variant == "linear"
    variant, why = keras_ae.variants.default(("good",), defects_layout=True)
    assert variant == "draem" and "simulated defects" in why


def test_a_run_too_large_for_memory_is_refused_with_a_batch_size_that_fits():
    # Whole 1024x1024 images (the default trains on tiles).
    config = training.resolve(config_lib.RunConfig(
        config_lib.DataConfig("folder", data_dir="part/train", test_dir="part/test"),
        config_lib.ModelConfig(tile=1024), config_lib.TrainConfig("r"),
        config_lib.AnomalyConfig(normal_classes=("good",))))
    strategy = distribute.get_strategy("default")
    shape = (1024, 1024, 3)
    model = keras_ae.build("draem", shape, tile=1024)
    # Every layer's output at least: the image's own size many times over.
    assert memory.activation_bytes(model) > 20 * 4 * np.prod(shape)
    eight = memory.training_bytes(model, 8)
    with pytest.raises(config_lib.ConfigError, match=r"batch_size: training draem on 1024x1024 "
                       r"images in batches of 8 needs at least .* GiB.*use --batch_size=(\d+)"
                       ) as refused:
        memory.check_fits(config, strategy, shape, available=eight - 1)
    fits = int(refused.value.message.split("--batch_size=")[1].split()[0])
    assert 0 < fits < 8 and memory.training_bytes(model, fits) <= eight - 1
    memory.check_fits(config, strategy, shape, available=eight)  # fits: nothing raised
    with pytest.raises(config_lib.ConfigError, match="use a smaller --image_size"):
        memory.check_fits(config, strategy, shape, available=memory.training_bytes(model, 1) - 1)


def _stripes(count, size, seed):
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, (count, 1, 1))
    columns = np.arange(size)[None, None, :]
    return np.broadcast_to(0.5 + 0.3 * np.sin(columns / 2 + phase),
                           (count, size, size)).astype(np.float32)[..., None]


def test_simulated_anomalies_change_only_their_masks_and_are_drawn_from_the_seed():
    images = (_stripes(32, 32, seed=0) * 255).astype(np.uint8)
    options = dict(batch_size=16, epochs=2, anomalies=True)
    first = [(x.numpy(), y.numpy()) for x, y in data.train_dataset(images, seed=1, **options)]
    again = [(x.numpy(), y.numpy()) for x, y in data.train_dataset(images, seed=1, **options)]
    other = [(x.numpy(), y.numpy()) for x, y in data.train_dataset(images, seed=2, **options)]
    for (x, y), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(first[0][1][..., 1], other[0][1][..., 1])
    assert not np.array_equal(first[0][1][..., 1], first[2][1][..., 1])  # epoch 2: fresh
    x = np.concatenate([x for x, _ in first])
    clean, masks = np.concatenate([y[..., :1] for _, y in first]), np.concatenate(
        [y[..., 1:] for _, y in first])
    assert set(np.unique(masks)) == {0.0, 1.0}
    np.testing.assert_array_equal(x[masks == 0], clean[masks == 0])
    assert np.abs(x - clean)[masks == 1].mean() > 0.05  # something was pasted
    with_anomaly = masks.max(axis=(1, 2, 3)) > 0
    assert 0.25 < with_anomaly.mean() < 0.75  # about half, as DRAEM
    shares = masks.mean(axis=(1, 2, 3))[with_anomaly]
    assert shares.min() < 0.05 and shares.max() < 0.6
    # A stain, the flat grey, is opaque: one grey all over its mask, the
    # stripes beneath hidden. The other fills let them show.
    spreads = [np.ptp(image[mask == 1]) for image, mask in zip(x[with_anomaly],
                                                                masks[with_anomaly])]
    assert 0 < sum(spread < 1e-6 for spread in spreads) < len(spreads) / 2
    # Asked for, about a quarter of the masks are rectangles (CutPaste's).
    options["anomalies"] = anomalies.Simulation(rectangles=0.25)
    boxes = [y[..., 1:] for _, y in data.train_dataset(images, seed=1, **options)]
    assert _rectangles(masks) == 0 < _rectangles(np.concatenate(boxes)) < len(spreads) / 2


def test_a_grain_and_a_paste_at_place_are_as_bright_as_what_they_cover():
    """On flat greys every fill is flat but the grain: the grain's mean
    inside its mask is near the grey it covers at place, and about a random
    grey otherwise; the more pastes at place, the more flat fills near it."""
    greys = np.linspace(0.2, 0.8, 512, dtype=np.float32)
    images = np.broadcast_to(greys[:, None, None, None], (512, 32, 32, 1))

    def offsets(grain, **simulation):
        pasted, masks = anomalies.simulate(images, images[::-1], [0, 1],
                                           simulation=anomalies.Simulation(**simulation))
        pasted, masks = pasted.numpy()[..., 0], masks.numpy()[..., 0] > 0.5
        return np.array([abs(image[mask].mean() - grey)
                         for image, mask, grey in zip(pasted, masks, greys)
                         if mask.any() and (np.ptp(image[mask]) > 0.01) == grain])

    at_place, anywhere = offsets(True, grain_at_place=True), offsets(True)
    assert len(at_place) == len(anywhere) > 20  # the same draws: a fifth of half the images
    assert np.median(at_place) < 0.07 < np.median(anywhere)
    near = [np.mean(offsets(False, paste_at_place=share) < anomalies.GRAIN_AT_PLACE)
            for share in (0.0, 0.5, 1.0)]  # among pastes, their inversions, blurs, stains
    assert 2 * near[0] < near[2] and near[0] < near[1] < near[2]
    # What training, the self-check and the int8 calibration draw, from a run's config:
    drawn = dict(rectangles=0.5, grain_at_place=True, paste_at_place=0.5, cells=True)
    assert data.simulation(config_lib.DataConfig(**drawn)) == anomalies.Simulation(**drawn)


def test_cells_are_a_sixth_fill_about_the_grey_at_place():
    """On flat greys every fill is flat but the grain and the cells: with
    `cells` about twice as many anomalies vary (two fills of six against one
    of five), at place about the grey they cover as the grain is."""
    greys = np.linspace(0.2, 0.8, 512, dtype=np.float32)
    images = np.broadcast_to(greys[:, None, None, None], (512, 32, 32, 1))

    def offsets(**simulation):  # per varied fill: its mean's offset from the grey it covers
        pasted, masks = anomalies.simulate(images, images[::-1], [0, 1],
                                           simulation=anomalies.Simulation(**simulation))
        pasted, masks = pasted.numpy()[..., 0], masks.numpy()[..., 0] > 0.5
        return np.array([abs(image[mask].mean() - grey)
                         for image, mask, grey in zip(pasted, masks, greys)
                         if mask.any() and np.ptp(image[mask]) > 0.01])

    five, six = offsets(grain_at_place=True), offsets(grain_at_place=True, cells=True)
    assert len(five) > 20 and 1.4 * len(five) < len(six) < 2.6 * len(five)
    assert np.median(six) < 0.07 < np.median(offsets(cells=True))


def _rectangles(masks):
    """How many of `masks` `[n, h, w, 1]` fill their bounding box, at least
    3 px a side."""
    count = 0
    for mask in masks[..., 0]:
        rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        box = mask[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1] if len(rows) else mask[:0]
        count += min(box.shape) >= 3 and box.all()
    return count


def test_int8_calibrates_a_detector_on_its_simulated_anomalies():
    """The int8 files' activation ranges are calibrated on training images,
    about half with simulated anomalies pasted in for this detector (so that
    a defect's segmentation is not clipped), as they are for others."""
    images = (_stripes(40, 32, seed=0) * 255).astype(np.uint8)
    clean = images.astype(np.float32) / 255
    run = data.ImageData(data.as_images(images), np.zeros(40), data.as_images(images[:4]),
                         np.zeros(4), "stripes")
    model = keras_ae.build("draem", (32, 32, 1), tile=16, width=4)
    config = config_lib.ExportConfig("exports", seed=3)
    calibration = tflite_files.calibration_inputs(model, run, config, "draem")
    pasted = calibration["serving_default"]["images"]
    order = [np.flatnonzero((clean == image).all(axis=(1, 2, 3)))[0] for image in
             tflite_files.calibration_inputs(model, run, config, "conv")[
                 "serving_default"]["images"]]
    changed = (np.abs(pasted - clean[order]) > 1e-6).any(axis=(1, 2, 3))
    assert 0.25 < changed.mean() < 0.75
    again = tflite_files.calibration_inputs(model, run, config, "draem")
    np.testing.assert_array_equal(again["serving_default"]["images"], pasted)
    # The encoder's inputs are the same images' top-left tiles.
    np.testing.assert_array_equal(calibration["encode"]["images"], pasted[:, :16, :16])


def test_mask_noise_is_scaled_per_axis_and_turned_at_any_angle():
    """DRAEM's Perlin masks: cells drawn per axis make streaks (a scratch),
    turned by a random angle (`anomalies._noise`, `anomalies._turned`)."""
    def draw(key, shape):
        return tf.random.stateless_uniform([2, *shape], key)

    noise = anomalies._noise(draw, [0, 1], 64, 64, tf.constant([[2.0, 32.0], [32.0, 2.0]]))

    def rough(images, axis):  # mean change from one pixel to the next
        return np.abs(np.diff(images.numpy(), axis=axis)).mean()

    assert 0 <= noise.numpy().min() and noise.numpy().max() <= 1
    assert rough(noise[0], 1) > 8 * rough(noise[0], 0)  # 2 cells down, 32 across
    assert rough(noise[1], 0) > 8 * rough(noise[1], 1)
    quarter = anomalies._turned(noise[:1], anomalies._angle(tf.constant([1.0])))  # +90 deg
    assert min(np.abs(quarter[0] - np.rot90(noise[0], k)).max() for k in (1, 3)) < 1e-4
    eighth = anomalies._turned(noise[:1], anomalies._angle(tf.constant([0.75])))  # +45 deg
    assert 0.5 < rough(eighth[0], 0) / rough(eighth[0], 1) < 2  # rough both ways


def test_the_loss_is_squared_error_ssim_and_focal_loss():
    keras.utils.set_random_seed(0)
    model = keras_ae.build("draem", (16, 16, 1), width=4)
    model.compile()
    rng = np.random.default_rng(0)
    clean = rng.random((4, 16, 16, 1)).astype(np.float32)
    masks = (rng.random((4, 16, 16, 1)) < 0.2).astype(np.float32)
    inputs = np.where(masks > 0, 1.0 - clean, clean)
    reconstruction = model(inputs)
    loss = model.compute_loss(inputs, np.concatenate([clean, masks], -1), reconstruction,
                              training=False)  # batch normalization by its moving statistics
    p = model.segment(inputs).numpy()
    p_true = np.clip(np.where(masks > 0, p, 1 - p), 1e-7, 1)
    focal = np.mean((1 - p_true) ** 2 * -np.log(p_true))
    ssim = tf.image.ssim(clean, reconstruction, max_val=1.0, filter_size=11).numpy()
    expected = np.mean((reconstruction.numpy() - clean) ** 2) + np.mean(1 - ssim) + focal
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_the_map_is_the_segmentation_and_the_score_the_mean_of_its_highest_pixels():
    keras.utils.set_random_seed(1)
    side = 40
    model = keras_ae.build("draem", (side, side, 1), width=4, tile=side)
    images = _stripes(3, side, seed=1)
    _, views, maps = model.anomaly_parts(tf.constant(images))
    segmentation = model.segment(images).numpy()[..., 0]
    np.testing.assert_allclose(maps.numpy()[:, 0], segmentation, rtol=1e-6)
    highest = np.sort(segmentation.reshape(3, -1), axis=1)[:, -draem.TOP_PIXELS:]
    np.testing.assert_allclose(views.numpy()[:, 0], highest.mean(axis=1), rtol=1e-5)
    assert not np.allclose(views.numpy()[:, 0], segmentation.max(axis=(1, 2)))
    # How many it averages is saved with the model, as its threshold is.
    fewer = type(model).from_config({**model.get_config(), "top_pixels": 2})
    fewer.set_weights(model.get_weights())
    assert type(fewer).from_config(fewer.get_config()).arguments["top_pixels"] == 2
    _, views, _ = fewer.anomaly_parts(tf.constant(images))
    np.testing.assert_allclose(views.numpy()[:, 0], highest[:, -2:].mean(axis=1), rtol=1e-5)
    # So is the segmenter's contrast; a model saved without it (before 2ced6cc)
    # loads with the form it was trained with, the 3x3 mean's.
    def contrast(config):
        return type(model).from_config(config).segmenter.get_layer("contrast").differences

    assert contrast(model.get_config()) == "directions"
    assert contrast({k: v for k, v in model.get_config().items() if k != "contrast"}) == "mean"


def _segmenter_of_flat_images(tile, gain):
    """A segmenter that knows the images are a flat grey of 0.5: each pixel's
    distance from it, times `gain` (0: a constant map), through a sigmoid."""
    images = keras.Input((tile, tile, 1))
    restored = keras.Input((tile, tile, 1))
    brighter = keras.layers.ReLU()(keras.layers.Rescaling(1.0, offset=-0.5)(images))
    darker = keras.layers.ReLU()(keras.layers.Rescaling(-1.0, offset=0.5)(images))
    distance = keras.layers.Add()([brighter, darker])
    segmentation = keras.layers.Activation("sigmoid")(
        keras.layers.Rescaling(gain, offset=-0.02 * gain)(distance))
    return keras.Model([images, restored], segmentation)


def test_the_self_check_scores_simulated_anomalies_in_tiles_of_the_validation_images():
    model = keras_ae.build("draem", (32, 48, 1), width=4, tile=16)
    validation = data.as_images(np.full((2, 32, 48, 1), 128, np.uint8))  # 12 tiles each
    detector = keras_ae.anomaly.Detector("mse", 1.0, 0.01, ("good",), 2, {})

    def check(gain):
        model.segmenter = _segmenter_of_flat_images(16, gain)
        return keras_ae.anomaly.simulated_check(model, validation, detector, 8, seed=0)

    # A map that is the anomalies (but for a paste as grey as the image) finds them.
    found = check(gain=1000.0)
    assert found["validation_simulated_auroc"] > 0.95
    assert found["validation_simulated_pixel_auroc"] > 0.95
    assert set(check(gain=0.0).values()) == {0.5}  # a constant map: chance


def test_crops_are_windows_of_their_images_drawn_from_the_seed():
    images = tf.reshape(tf.range(4 * 9 * 7, dtype=tf.float32), (4, 9, 7, 1))
    crops = data.pipeline.random_crops(images, (3, 5), seed=[0, 1]).numpy()
    corners = set()
    for image, crop in zip(images.numpy(), crops):
        top, left = divmod(int(crop[0, 0, 0]) % 63, 7)  # each value: its index in all
        corners.add((top, left))
        np.testing.assert_array_equal(crop, image[top:top + 3, left:left + 5])
    assert len(corners) > 1  # a place per image
    again = data.pipeline.random_crops(images[1:3], (3, 5), [0, 1], first_row=1, rows=4)
    np.testing.assert_array_equal(again, crops[1:3])  # a batch's rows, however it is split


def test_tiles_cover_the_image_overlapping_and_stitch_back_to_it():
    tiling = tiles.Tiling((40, 29), (16, 16))
    assert tiles.starts(40, 16) == [0, 12, 24] and tiles.starts(16, 16) == [0]
    for side in (17, 40, 1024):  # neighbours share at least a quarter of a tile
        steps = np.diff(tiles.starts(side, 16))
        assert steps.max() <= 12 and tiles.starts(side, 16)[-1] == side - 16
    images = tf.random.stateless_uniform((2, 40, 29, 3), [0, 2])
    np.testing.assert_allclose(tiling.apply(lambda x: x, images, 3), images, atol=1e-6)
    in_groups = tiles.Tiling((40, 29), (16, 16), group=2)  # a loop over 3 rows of 2 + 1 tiles
    np.testing.assert_allclose(in_groups.apply(lambda x: x, images, 3), images, atol=1e-6)
    # Two outputs stitched apart, and one image (no loop over images) as in a batch.
    squares = lambda x: (tf.square(x), tf.reduce_sum(x, -1, keepdims=True))
    for tiling_ in (tiling, in_groups):
        both = tiling_.apply(squares, images, (3, 1))
        np.testing.assert_allclose(both[0], tf.square(images), atol=1e-6)
        np.testing.assert_allclose(both[1], tf.reduce_sum(images, -1, keepdims=True), atol=1e-5)
        first = tiling_.apply(squares, images[:1], (3, 1))
        np.testing.assert_array_equal(first[0], both[0][:1])
        np.testing.assert_array_equal(first[1], both[1][:1])
    # Each tile marked by its number: a pixel's value lies between those of
    # the tiles over it, and is that tile's where only one covers it.
    numbered = tiling.apply(lambda x: tf.broadcast_to(
        tf.range(len(tiling), dtype=tf.float32)[:, None, None, None], tf.shape(x[..., :1])),
        images, 1).numpy()[0, ..., 0]
    over = np.zeros((len(tiling), 40, 29), bool)
    for i, (top, left) in enumerate(tiling.corners):
        over[i, top:top + 16, left:left + 16] = True
    numbers = np.arange(len(tiling))[:, None, None]
    low, high = np.where(over, numbers, np.inf).min(0), np.where(over, numbers, -1).max(0)
    assert np.all((numbered >= low - 1e-5) & (numbered <= high + 1e-5))
    alone = over.sum(0) == 1
    np.testing.assert_allclose(numbered[alone], low[alone], atol=1e-5)


def test_tiles_stitch_in_full_integer_tflite_as_in_float(tmp_path):
    """The stitched image in an int8 TFLite file is within a few steps of its
    scale of the float one's everywhere, where tiles overlap too: divided by
    the windows' sum instead, it was off by 0.17 here, by 0.88 at 128 px."""
    grouped = tiles.Tiling((32, 32), (16, 16), group=4)  # 9 tiles: a loop over 3 rows
    tiling = grouped.ungrouped()  # as the int8 file runs them: all at once, no loop
    images = np.random.default_rng(0).uniform(0, 1, (20, 32, 32, 1)).astype(np.float32)
    np.testing.assert_array_equal(tiling.apply(tf.sigmoid, images[:3], 1),
                                  grouped.apply(tf.sigmoid, images[:3], 1))
    module = tf.Module()
    module.f = tf.function(
        lambda images: {"out": tiling.apply(lambda x: tf.sigmoid(4 * (x - 0.5)), images, 1)},
        input_signature=[tf.TensorSpec([1, 32, 32, 1], tf.float32, name="images")])
    tf.saved_model.save(module, str(tmp_path / "saved"), signatures={"serving_default": module.f})
    path = tmp_path / "stitch_int8.tflite"
    path.write_bytes(tflite.convert(str(tmp_path / "saved"), "serving_default", "int8",
                                    {"images": images}))
    served = tflite.run(str(path), "serving_default", {"images": images[:2]})["out"]
    assert np.abs(served[:1] - module.f(images[:1])["out"].numpy()).max() < 0.05
    assert np.abs(served[1:] - module.f(images[1:2])["out"].numpy()).max() < 0.05


def test_a_float_tflite_file_of_tiles_in_rows_holds_no_buffer_of_their_outputs(tmp_path):
    """An image of more tiles than a group is stitched in a loop over rows of
    tiles that adds each row into the image: its TFLite file holds no buffer
    of every tile's outputs (410 KB here with a `tf.map_fn` over groups of
    tiles, 31 KB without), so it is smaller than one image of float32."""
    tiling = tiles.Tiling((160, 160), (16, 16), group=32)  # 13 rows of 13 tiles
    module = tf.Module()
    module.f = tf.function(lambda images: {"out": tiling.apply(tf.sigmoid, images, 1)},
                           input_signature=[tf.TensorSpec([None, 160, 160, 1], tf.float32,
                                                          name="images")])
    tf.saved_model.save(module, str(tmp_path / "saved"), signatures={"serving_default": module.f})
    path = tmp_path / "rows.tflite"
    path.write_bytes(tflite.convert(str(tmp_path / "saved"), "serving_default", "float32"))
    assert path.stat().st_size < 160 * 160 * 4
    images = np.random.default_rng(0).uniform(0, 1, (2, 160, 160, 1)).astype(np.float32)
    served = tflite.run(str(path), "serving_default", {"images": images})["out"]
    np.testing.assert_allclose(served, tf.sigmoid(images), atol=1e-6)


def test_only_an_image_of_more_tiles_than_int8_runs_at_once_goes_without_its_int8_file():
    """The int8 reconstruct file runs all of an image's tiles at once (TFLite's
    converter crashed on a loop over groups or rows of them): beyond INT8_TILES it is
    left out, and the report says why; more than a group's tiles are not."""
    few, many = (keras_ae.build("draem", (side, side, 1), tile=16, width=4)
                 for side in (160, 280))
    assert tiles.GROUP < len(tiles.Tiling((160, 160), (16, 16))) <= tflite_files.INT8_TILES
    assert len(tiles.Tiling((280, 280), (16, 16))) > tflite_files.INT8_TILES
    assert tflite_files._left_out(few, ("float32", "int8")) == {}
    assert tflite_files._left_out(many, ("float32", "dynamic")) == {}
    (name, why), = tflite_files._left_out(many, ("float32", "int8")).items()
    assert name == "tflite/reconstruct_int8.tflite" and "more than 512 tiles" in why


def _save(path, pixels):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def defects_folder(tmp_path_factory):
    """A small folder in MVTec AD's layout: striped 32x32 parts, good ones to
    train on, 16 good and 16 spotted ones to test with their masks."""
    root = tmp_path_factory.mktemp("mvtec")
    for i, image in enumerate(_stripes(64, 32, seed=2)):
        _save(str(root / "train" / "good" / f"{i:03d}.png"), image[..., 0])
    for i, image in enumerate(_stripes(16, 32, seed=3)):
        _save(str(root / "test" / "good" / f"{i:03d}.png"), image[..., 0])
    for i, image in enumerate(_stripes(16, 32, seed=4)):
        mask = np.zeros((32, 32))
        mask[4 + 2 * (i % 8):9 + 2 * (i % 8), 10 + 8 * (i // 8):15 + 8 * (i // 8)] = 1
        _save(str(root / "test" / "spot" / f"{i:03d}.png"), np.where(mask > 0, 1.0, image[..., 0]))
        _save(str(root / "ground_truth" / "spot" / f"{i:03d}_mask.png"), mask)
    return root


@pytest.fixture(scope="module")
def defects_run(defects_folder, tmp_path_factory):
    """The folder trained with no variant named, as `train.py --dataset=folder
    --data_dir=.../train --test_dir=.../test --normal_classes=good --tile=16
    --validation_fraction=0.25 --epochs=100` does, and exported (SavedModel,
    float32 and int8 TFLite): it trains on 16x16 crops and scores the 32x32
    images by tiles. Trained until it finds the spots (at 40 epochs, one
    seed of four scored their insides below the stripes): a detector that
    does not puts good and spotted images alike near its threshold, where a
    faithful int8 file decides otherwise by chance. A quarter of the good
    images calibrate it: the highest of 6 sat amid the good test images."""
    model_dir = tmp_path_factory.mktemp("defects") / "run"
    config = config_lib.RunConfig(
        config_lib.DataConfig("folder", data_dir=str(defects_folder / "train"),
                              test_dir=str(defects_folder / "test")),
        config_lib.ModelConfig(tile=16),
        config_lib.TrainConfig(str(model_dir), epochs=100),
        config_lib.AnomalyConfig(normal_classes=("good",), validation_fraction=0.25))
    metrics = training.train(config, distribute.get_strategy("default"), verbose=0)
    report = export.export_run(str(model_dir), config_lib.ExportConfig(
        str(tmp_path_factory.mktemp("exports")), quantize=("float32", "int8")))
    return model_dir, metrics, report


@pytest.mark.slow  # exports: a fresh SavedModel process and a TFLite conversion
def test_a_defects_folder_trains_this_detector_and_serves_its_segmentation(defects_run,
                                                                           defects_folder):
    model_dir, metrics, report = defects_run
    ran = json.load(open(model_dir / model_dir_lib.CONFIG_FILE))
    assert ran["model"]["variant"] == "draem"
    assert metrics["test_masked_images"] == 16
    assert metrics["test_auroc"] > 0.9 and metrics["test_pixel_auroc"] > 0.9  # seeds 0-3: 1.0, 0.99
    for name in ("validation_simulated_auroc", "validation_simulated_pixel_auroc"):
        assert 0 <= metrics[name] <= 1, name
    for entry in ("saved_model", "tflite/reconstruct_float32.tflite"):
        differences = report["files"][entry]["max_abs_diff"]
        assert differences["serving_default/anomaly_map"] < 1e-4, entry
        assert differences["serving_default/is_anomaly"] == 0, entry
    # TFLite's int8 converter crashed on the loop over a batch's images: the
    # int8 file takes one image, and has no such loop.
    assert "tflite_left_out" not in report
    int8 = report["files"]["tflite/reconstruct_int8.tflite"]
    assert int8["inputs"]["images"]["shape_signature"] == [1, 32, 32, 1]
    assert int8["decided_otherwise"]["images"] == 32  # every test image
    # Its map within a root mean square of 0.015 of Keras' (0.004-0.006 at seeds
    # 0-3; 0.024 when the tiles' stitching divided by the windows' sum).
    assert int8["mse_vs_keras"]["serving_default/anomaly_map"] < 0.015 ** 2
    served = tf.saved_model.load(report["path"]).signatures["serving_default"]
    images = np.stack([np.asarray(Image.open(defects_folder / "test" / "spot" / name),
                                  np.float32) / 255
                       for name in sorted(os.listdir(defects_folder / "test" / "spot"))])
    outputs = served(images=tf.constant(images[..., None]))
    model = keras.saving.load_model(model_dir / model_dir_lib.MODEL_FILE)
    assert model.input_shape[1:] == (16, 16, 1) and model.image_shape == (32, 32, 1)
    segmentation = model.segment(images[..., None]).numpy()[..., 0]
    np.testing.assert_allclose(outputs["anomaly_map"], segmentation, atol=1e-5)
    # Tiles start at 0, 8 and 16: the top-left 8x8 pixels are the first tile's alone.
    first = model.segment(images[:, :16, :16, None]).numpy()[..., 0]
    np.testing.assert_allclose(segmentation[:, :8, :8], first[:, :8, :8], atol=1e-6)


def test_images_smaller_than_the_tile_train_longer_and_on_rectangles(tmp_path):
    """Epochs by the training images count an image smaller than the tile as
    its share of the tile's pixels, and such images are whole small parts,
    shown twice the pixels of tiles: 28 px Fashion-MNIST shows 10.4 times the
    images of 64 px tiles. Three quarters of their simulated anomalies are
    rectangles, their grain fill about a random grey, not the grey it covers,
    and their map is smoothed (the recipe's `on_small_images`); --rectangles
    asks for them at any size."""
    def run(side, rectangles=None, **options):
        folder = tmp_path / f"{side}-{rectangles}-{options}" / "good"
        os.makedirs(folder)
        for i in range(20):
            Image.new("L", (side, side), i).save(folder / f"{i}.png")
        config = training.resolve(config_lib.RunConfig(
            config_lib.DataConfig("folder", data_dir=str(folder.parent), rectangles=rectangles),
            config_lib.ModelConfig("draem", **options), config_lib.TrainConfig("r"),
            config_lib.AnomalyConfig(normal_classes=("good",))))
        loaded = training.load_data(config)
        config = training.with_data(config, loaded)
        stream = run_lib.training_stream(config, distribute.get_strategy("default"), loaded, 0)
        masks = np.concatenate([y[..., 1:] for _, y in stream.take(8)])  # 64 images
        return (len(loaded.train_images), config.train.epochs), (
            config.anomaly.anomaly_map_sigma, _rectangles(masks), config.data.grain_at_place,
            config.data.paste_at_place, config.data.cells)

    recipe = keras_ae.variants.recipe("draem")
    (images, whole), tiled = run(draem.TILE)
    assert whole == -(-recipe.images_shown // images)
    assert tiled == (0, 0, True, recipe.paste_at_place, True) and recipe.paste_at_place > 0
    assert run(draem.TILE * 2) == ((images, whole), tiled)  # trained on crops of the tile
    (_, small), (sigma, rectangles, grain_at_place, paste_at_place, cells) = run(
        draem.TILE // 2)
    # Twice the images shown, each a quarter of the pixels, the epochs rounded up:
    assert small == -(-recipe.on_small_images["images_shown"] * 4 // images)
    assert small >= 8 * whole - 8
    assert sigma == draem.TILE // 2 / 16 and 0 < rectangles < 32  # of about 32 anomalies
    assert not grain_at_place and paste_at_place == 0 and not cells
    assert run(draem.TILE // 2 + 1, tile=draem.TILE // 2 + 1) == ((images, whole), tiled)
    assert run(draem.TILE, rectangles=1.0)[1][1] > 16  # of about 32 anomalies, all rectangles
