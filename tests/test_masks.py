"""Ground-truth masks in MVTec AD's layout, and the pixel metrics they give a detector."""

import dataclasses
import os
import sys
import types

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from keras_ae import anomaly
from keras_ae import config as config_lib
from keras_ae import data
from keras_ae import distribute
from keras_ae import export
from keras_ae import model_dir as model_dir_lib
from keras_ae import models
from keras_ae import plots
from keras_ae import training
from keras_ae.commands import train as train_command
from keras_ae.data import DataError
from keras_ae.data import masks as masks_lib
from keras_ae.export import signatures


def _save(path, pixels):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).save(path)


def _part(rng, size):
    """A good part: a smooth gradient with a little noise."""
    ramp = np.linspace(60, 180, size)[None, :] + rng.normal(0, 4, (size, size))
    return np.clip(ramp, 0, 255).astype(np.uint8)


def make_layout(root, size=32, train=300, test=30, seed=0):
    """MVTec AD's layout: train/good, test/good, test/scratch and
    ground_truth/scratch/<name>_mask.png; each scratch a bright bar somewhere.
    One scratched image has no mask."""
    rng = np.random.default_rng(seed)
    for i in range(train):
        _save(f"{root}/train/good/{i:03d}.png", _part(rng, size))
    for i in range(test):
        _save(f"{root}/test/good/{i:03d}.png", _part(rng, size))
        image, mask = _part(rng, size), np.zeros((size, size), np.uint8)
        row, column = rng.integers(2, size - 10, 2)
        image[row:row + 3, column:column + 8] = 255
        mask[row:row + 3, column:column + 8] = 255
        _save(f"{root}/test/scratch/{i:03d}.png", image)
        if i:
            _save(f"{root}/ground_truth/scratch/{i:03d}_mask.png", mask)
    return root


def test_masks_are_found_beside_the_test_folder_and_shaped_as_their_images(tmp_path):
    root = make_layout(str(tmp_path), train=1, test=3)
    test_dir = f"{root}/test"
    assert masks_lib.default_dir(test_dir) == f"{root}/ground_truth"
    paths = sorted(f"{test_dir}/{kind}/{name}" for kind in ("good", "scratch")
                   for name in os.listdir(f"{test_dir}/{kind}"))
    found = masks_lib.read(f"{root}/ground_truth", test_dir, paths, (16, 16))
    assert [paths[i] for i in found.indices] == [f"{test_dir}/scratch/001.png",
                                                 f"{test_dir}/scratch/002.png"]
    full = np.array(Image.open(f"{root}/ground_truth/scratch/001_mask.png")) > 0
    halved = full.reshape(16, 2, 16, 2).mean(axis=(1, 3)) >= 0.5
    pixels, has_mask = found.chunk(0, len(paths))
    assert has_mask.tolist() == [False] * 4 + [True] * 2  # scratch/001 and 002
    assert pixels.shape == (6, 16, 16) and not pixels[:4].any() and (pixels[4] == halved).all()
    later, has_mask = found.chunk(3, 5)  # a chunk that ends before the last mask
    assert has_mask.tolist() == [False, True] and (later == pixels[3:5]).all()


def test_a_mask_of_another_size_or_unreadable_is_an_error_naming_it(tmp_path):
    root = make_layout(str(tmp_path), train=1, test=2)
    paths = [f"{root}/test/scratch/001.png"]
    mask = f"{root}/ground_truth/scratch/001_mask.png"
    _save(mask, np.zeros((20, 32), np.uint8))
    with pytest.raises(DataError, match=f"{mask}: the mask is 32x20 pixels but its image"):
        masks_lib.read(f"{root}/ground_truth", f"{root}/test", paths, (16, 16))
    with open(mask, "wb") as f:
        f.write(b"not a png")
    with pytest.raises(DataError, match=f"{mask}: not a readable mask"):
        masks_lib.read(f"{root}/ground_truth", f"{root}/test", paths, (16, 16))


@pytest.fixture(scope="module")
def scratches_run(tmp_path_factory):
    root = make_layout(str(tmp_path_factory.mktemp("parts")))
    config = config_lib.RunConfig(
        config_lib.DataConfig("folder", data_dir=f"{root}/train", test_dir=f"{root}/test",
                              batch_size=32),
        config_lib.ModelConfig("conv", latent_dim=16, filters=(8, 16)),
        config_lib.TrainConfig(str(tmp_path_factory.mktemp("run")), epochs=8),
        config_lib.AnomalyConfig(normal_classes=("good",), validation_fraction=0.34),
    )
    return config, training.train(config, distribute.get_strategy("default"), verbose=0)


def test_a_detector_with_masks_reports_where_the_defects_are(scratches_run):
    config, metrics = scratches_run
    assert metrics["test_masked_images"] == 29
    assert metrics["test_anomalous_images_without_mask"] == 1
    print({k: metrics[k] for k in ("test_auroc", "test_pixel_auroc", "test_pro")})
    # The scratches' pixels score above the rest of the parts'; chance is 0.5.
    assert metrics["test_pixel_auroc"] > 0.9 and metrics["test_pro"] > 0.5
    assert os.path.isfile(os.path.join(config.train.model_dir, model_dir_lib.MAPS_FIGURE_FILE))
    ran, _, detector = model_dir_lib.read_run(config.train.model_dir)  # what ran, written in
    assert ran.data.test_mask_dir == os.path.dirname(config.data.test_dir) + "/ground_truth"
    assert ran.anomaly.anomaly_map_sigma == detector["map_sigma"] == 32 / 16
    assert detector["score"] == "map_max"  # conv's on a folder of defects
    assert ran.data.masking_noise == 0.125
    line = train_command.summary(metrics, config.train.model_dir)  # train.py's last line
    assert f"pixel AUROC {metrics['test_pixel_auroc']:.4f}, PRO " in line


def test_one_pass_pixel_metrics_are_the_exact_ones_within_their_bound(scratches_run):
    """The run's accumulated pixel AUROC and PRO against `anomaly.pixel_auroc`
    and `anomaly.pro` of every test map held at once."""
    config, metrics = scratches_run
    loaded = data.load(config.data)
    _, model_file, detector = model_dir_lib.read_run(config.train.model_dir)
    detector = anomaly.Detector.from_dict(detector)
    outputs = anomaly.outputs_of(models.load(model_file), loaded.test_images,
                                 config.data.batch_size, detector=detector)
    maps = outputs["anomaly_map"]
    # "map_max": the score is the map's highest pixel (the map divided by its
    # constant, the validation images' mean score, as the score is).
    np.testing.assert_allclose(outputs["anomaly_score"], maps.max(axis=(1, 2)), rtol=1e-5)
    masks, has_mask = loaded.test_masks.chunk(0, len(maps))
    known = (loaded.test_labels == loaded.class_names.index("good")) | has_mask
    for name, exact in (("pixel_auroc", anomaly.pixel_auroc), ("pro", anomaly.pro)):
        bound = metrics[f"test_{name}_bound"]
        assert bound < 2e-3
        assert abs(metrics[f"test_{name}"] - exact(maps[known], masks[known])) <= bound + 1e-6


@pytest.mark.slow  # exports: a fresh SavedModel process, a TFLite conversion
def test_a_map_max_detector_is_served_as_keras_scores_it(scratches_run, tmp_path):
    config, metrics = scratches_run
    report = export.export_run(config.train.model_dir, config_lib.ExportConfig(
        str(tmp_path), quantize=("float32",)))  # checks every output against Keras
    for entry in ("saved_model", "tflite/reconstruct_float32.tflite"):
        differences = report["files"][entry]["max_abs_diff"]
        assert differences["serving_default/is_anomaly"] == 0, entry
        assert differences["serving_default/anomaly_score"] < 1e-5, entry
    loaded = tf.saved_model.load(report["path"])
    images = next(data.as_images(data.load(config.data).test_images).float_chunks(64))
    served = loaded.signatures[signatures.RECONSTRUCT](images=tf.constant(images))
    np.testing.assert_allclose(served["anomaly_score"],
                               np.max(served["anomaly_map"], axis=(1, 2)), rtol=1e-5)
    assert report["anomaly"]["threshold"] == metrics["anomaly_threshold"]


def test_the_defects_benchmark_writes_mvtec_layout_with_masks_of_what_it_changed(tmp_path):
    """bench/defects.py's folders: each defect's mask is exactly the pixels
    it changed by more than MASK_CHANGE, and the folder source finds every mask."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "bench"))
    import defects  # pylint: disable=import-outside-toplevel
    rng = np.random.default_rng(0)

    def garments(count):  # bright blocks on black, as Fashion-MNIST's are
        images = np.zeros((count, 28, 28, 1), np.uint8)
        images[:, 4:24, 6:22] = rng.integers(80, 220, (count, 1, 1, 1))
        return images

    fashion = types.SimpleNamespace(train_images=garments(8), train_labels=np.arange(8) % 2,
                                    test_images=garments(20), test_labels=np.arange(20) % 2)
    defects.write_layout(fashion, 0, str(tmp_path), seed=0, good=4, per_defect=2)
    originals = fashion.test_images[fashion.test_labels == 0][..., 0]
    assert len(os.listdir(tmp_path / "train" / "good")) == 4
    assert len(os.listdir(tmp_path / "test" / "good")) == 4
    for kind in defects.DEFECTS:
        names = sorted(os.listdir(tmp_path / "test" / kind))
        assert len(names) == 2
        for name in names:
            image = np.asarray(Image.open(tmp_path / "test" / kind / name), np.float32)
            mask = np.asarray(Image.open(tmp_path / "ground_truth" / kind /
                                         name.replace(".png", "_mask.png"))) > 0
            changed = np.abs(image - originals[int(name[:4])]) > 255 * defects.MASK_CHANGE
            assert (mask == changed).all() and mask.sum() >= defects.MIN_DEFECT_PIXELS
    loaded = data.load(config_lib.DataConfig("folder", data_dir=str(tmp_path / "train"),
                                             test_dir=str(tmp_path / "test")))
    masks, _ = loaded.test_masks.chunk(0, len(loaded.test_images))
    assert len(loaded.test_masks.indices) == 6 and masks.sum() > 6 * 4


def test_the_textures_benchmark_holds_out_its_test_crops_and_masks_each_defect(tmp_path):
    """bench/textures.py's folders: training crops never overlap the held-out
    region the test and validation crops come from (a band across the middle,
    or the bottom-right quarter for crops too large for one); a defect changes
    its masked pixels visibly and nothing beyond its soft 1 px edge."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "bench"))
    import textures  # pylint: disable=import-outside-toplevel
    rng = np.random.default_rng(0)
    # Each pixel's value its own place: a crop's values tell where it came from.
    place = (np.arange(128 * 128).reshape(128, 128) / (128 * 128)).astype(np.float32)
    for size, region in ((32, (44, 84, 0)), (48, (64, 128, 64))):
        assert textures.held_out_region(128, size) == region
        held_out = set(place[region[0]:region[1], region[2]:].ravel().tolist())
        for crop in textures.crops(place, 40, size, rng, held_out=False):
            assert held_out.isdisjoint(crop.ravel().tolist())
        for crop in textures.crops(place, 10, size, rng, held_out=True):
            assert held_out.issuperset(crop.ravel().tolist())
    photos = {name: rng.random((128, 128)).astype(np.float32) for name in textures.TEXTURES}
    for kind in textures.DEFECTS:
        for _ in range(5):
            crop = photos["brick"][64:96, 64:96]
            image, mask = textures.defective(crop, kind, rng, [photos["grass"]])
            changed = np.abs(image - crop) > 1e-6
            assert mask.any() and not (changed & ~scipy_free_dilate(mask, 1)).any(), kind
            assert np.abs(image - crop)[mask].mean() > 0.05, kind
    textures.write_layout(photos, "brick", str(tmp_path), 0, size=32, train=6, good=2,
                          per_defect=2, validation=3)
    loaded = data.load(config_lib.DataConfig("folder", data_dir=str(tmp_path / "train"),
                                             test_dir=str(tmp_path / "test")))
    assert len(loaded.train_images) == 6 and len(loaded.test_images) == 2 + 8
    assert len(loaded.validation_images) == 3
    held_out = textures.held_out_region(128, 32)  # the validation crops come from it
    band = photos["brick"][held_out[0]:held_out[1], held_out[2]:]
    for crop in loaded.validation_images.in_memory()[..., 0] / 255:
        assert any(np.allclose(band[y:y + 32, x:x + 32], crop, atol=1 / 255)
                   or np.allclose(band[y:y + 32, x:x + 32][:, ::-1], crop, atol=1 / 255)
                   for y in range(band.shape[0] - 31) for x in range(band.shape[1] - 31))
    assert len(loaded.test_masks.indices) == 2 * len(textures.DEFECTS)


def scipy_free_dilate(mask, steps=2):
    """`mask` grown by `steps` pixels (8-connected), in numpy."""
    grown = mask.copy()
    for _ in range(steps):
        padded = np.pad(grown, 1)
        grown = np.max([padded[i:i + mask.shape[0], j:j + mask.shape[1]]
                        for i in range(3) for j in range(3)], axis=0)
    return grown


def test_a_detector_run_with_a_wide_map_blur_completes(tmp_path):
    """A blur of 241 taps (sigma 40 at 128x128; 145 at 384x384 by default)
    aborted the process in evaluation, once it had trained: oneDNN's eager
    convolution "Check failed: dtype() == expected_dtype" (exit 134). The
    smallest run found to do so; the map is now two matrix products."""
    root = make_layout(str(tmp_path), size=128, train=16, test=4)
    config = config_lib.RunConfig(
        config_lib.DataConfig("folder", data_dir=f"{root}/train", test_dir=f"{root}/test",
                              batch_size=8),
        config_lib.ModelConfig("conv", latent_dim=8, filters=(8, 16)),
        config_lib.TrainConfig(str(tmp_path / "run"), epochs=1),
        config_lib.AnomalyConfig(normal_classes=("good",), validation_fraction=0.5,
                                 anomaly_fpr=0.2, anomaly_map_sigma=40.0),
    )
    metrics = training.train(config, distribute.get_strategy("default"), verbose=0)
    assert metrics["test_masked_images"] == 3 and 0 <= metrics["test_pixel_auroc"] <= 1


def test_mvtec_ad_2s_layout_calibrates_on_its_validation_folder(tmp_path):
    """MVTec AD 2 lays out `validation/good/` beside `train/` and the masks
    inside the test folder (`test_public/ground_truth/bad/`). The run trains
    on every good training image, calibrates on the validation folder's good
    images (its threshold their highest score: 5 are too few for 1%), and
    reads the masks as masks, not as test images of a class "ground_truth"."""
    root = str(tmp_path / "can")
    rng = np.random.default_rng(0)
    for i in range(16):
        _save(f"{root}/train/good/{i:03d}_regular.png", _part(rng, 32))
    for i in range(5):
        _save(f"{root}/validation/good/{i:03d}_regular.png", _part(rng, 32))
    _save(f"{root}/validation/bad/000_regular.png", np.full((32, 32), 255, np.uint8))
    for i in range(3):
        _save(f"{root}/test_public/good/{i:03d}_regular.png", _part(rng, 32))
        image, mask = _part(rng, 32), np.zeros((32, 32), np.uint8)
        image[10:13, 4:20] = mask[10:13, 4:20] = 255
        _save(f"{root}/test_public/bad/{i:03d}_regular.png", image)
        _save(f"{root}/test_public/ground_truth/bad/{i:03d}_regular_mask.png", mask)
    config = config_lib.RunConfig(
        config_lib.DataConfig("folder", data_dir=f"{root}/train",
                              test_dir=f"{root}/test_public", batch_size=8),
        config_lib.ModelConfig("conv", latent_dim=8, filters=(8, 16)),
        config_lib.TrainConfig(str(tmp_path / "run"), epochs=1),
        config_lib.AnomalyConfig(normal_classes=("good",)))
    metrics = training.train(config, distribute.get_strategy("default"), verbose=0)
    assert metrics["train_images"] == 16
    assert (metrics["test_normal_images"], metrics["test_masked_images"],
            metrics["test_anomalous_images_without_mask"]) == (3, 3, 0)
    ran, model_file, detector = model_dir_lib.read_run(config.train.model_dir)
    assert ran.data.validation_dir == f"{root}/validation"
    assert ran.data.test_mask_dir == f"{root}/test_public/ground_truth"
    assert detector["validation_images"] == 5
    loaded = data.load(config.data)
    good = loaded.validation_images.subset(
        np.flatnonzero(loaded.validation_labels == loaded.class_names.index("good")))
    scores = anomaly.outputs_of(models.load(model_file), good, 8,
                                detector=anomaly.Detector.from_dict(detector))["anomaly_score"]
    assert detector["threshold"] == pytest.approx(float(scores.max()), rel=1e-5)
    streamed = data.load(config.data, input="stream").validation_images
    assert streamed.streamed and len(streamed) == 6
    np.testing.assert_array_equal(streamed.in_memory(), data.load(
        config.data, input="memory").validation_images)
    # Read by a detector only, and not with --validation_dir= (the resolved config
    # says "": the export reads none either).
    plain = dataclasses.replace(config, anomaly=config_lib.AnomalyConfig())
    assert training.load_data(plain).validation_images is None
    assert training.with_data(training.resolve(plain), loaded).data.validation_dir == ""
    none = dataclasses.replace(config, data=dataclasses.replace(config.data, validation_dir=""))
    assert training.load_data(none).validation_images is None
    assert training.with_data(training.resolve(none),
                              training.load_data(none)).data.validation_dir == ""
    # A validation folder with no good image, or one named without --normal_classes.
    no_good = dataclasses.replace(config.data, validation_dir=f"{root}/test_public/ground_truth")
    with pytest.raises(config_lib.ConfigError, match="no images of the normal classes"):
        training.train(dataclasses.replace(config, data=no_good),
                       distribute.get_strategy("default"), verbose=0, overwrite=True)
    with pytest.raises(config_lib.ConfigError, match="name the normal classes"):
        config_lib.RunConfig(no_good, config.model, config.train)


@pytest.mark.slow  # a draem run with the defaults: 23 s of the fast tier
def test_sixty_four_good_images_train_and_calibrate_with_the_defaults(tmp_path, caplog):
    """MVTec AD's smallest categories: 64 good images hold out 6, too few for
    a 1% false-positive rate. The run calibrates at their highest score and
    says what that flags of normal images, 1/7, in the log and anomaly.json.
    (The default detector of defects, `draem`, for 1 epoch: its own 276
    take minutes.)"""
    root = make_layout(str(tmp_path), size=40, train=64, test=4)
    config = config_lib.RunConfig(
        config_lib.DataConfig("folder", data_dir=f"{root}/train", test_dir=f"{root}/test"),
        config_lib.ModelConfig(), config_lib.TrainConfig(str(tmp_path / "run"), epochs=1),
        config_lib.AnomalyConfig(normal_classes=("good",)))
    with caplog.at_level("WARNING"):
        metrics = training.train(config, distribute.get_strategy("default"), verbose=0)
    _, _, detector = model_dir_lib.read_run(config.train.model_dir)
    assert detector["validation_images"] == 6 and metrics["train_images"] == 58
    assert metrics["variant"] == "draem"
    assert detector["expected_fpr"] == metrics["anomaly_expected_fpr"] == pytest.approx(1 / 7)
    assert detector["threshold"] == detector["validation_quantiles"]["max"]
    warned = [record.getMessage() for record in caplog.records
              if "cannot calibrate" in record.getMessage()]
    assert len(warned) == 1, warned  # once, before training, with the fix
    assert warned[0].startswith("6 validation images cannot calibrate a false-positive rate "
                                "of 0.01, which needs 100 (0.1 of 64 normal training images)")
    assert "will flag about 14.3% of normal images" in warned[0]
    assert "--validation_fraction" in warned[0]


def test_figures_reduce_large_images_keeping_a_maps_few_bright_pixels():
    image = np.random.default_rng(0).random((1024, 768, 3), np.float32)
    shown = plots.shown(image)
    assert shown.shape == (256, 192, 3)  # blocks of 4x4 pixels
    np.testing.assert_allclose(shown[1, 2], image[4:8, 8:12].mean(axis=(0, 1)), rtol=1e-6)
    defect = np.zeros((1024, 1024, 1), np.float32)
    defect[501, 333] = 1.0  # one pixel: the mean would dim it 16 times
    assert plots.shown(defect, np.max)[125, 83, 0] == 1.0
    small = np.ones((28, 28, 1), np.float32)
    np.testing.assert_array_equal(plots.shown(small), small)  # small enough as it is
