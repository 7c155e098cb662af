"""Anomaly detection: scores, calibration, metrics, and the exported decision."""

import dataclasses
import http.server
import json
import os
import threading
import types

import keras
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
from keras_ae import training
from keras_ae.commands import train as train_command
from keras_ae.export import checks
from keras_ae.export import signatures
from tests.conftest import make_images, write_idx
from tests.test_export import _StandInServer
from tests.test_export import run_module


def brute_force_auroc(scores, anomalous):
    pairs = [(a > n) + 0.5 * (a == n) for a in scores[anomalous] for n in scores[~anomalous]]
    return np.mean(pairs)


def brute_force_average_precision(scores, anomalous):
    total, previous_recall = 0.0, 0.0
    for threshold in sorted(set(scores), reverse=True):
        flagged = scores >= threshold
        recall = (flagged & anomalous).sum() / anomalous.sum()
        total += (recall - previous_recall) * (flagged & anomalous).sum() / flagged.sum()
        previous_recall = recall
    return total


@pytest.mark.parametrize("seed", range(5))
def test_auroc_and_average_precision_equal_an_independent_count(seed):
    rng = np.random.default_rng(seed)
    anomalous = rng.random(60) < 0.3
    scores = np.round(rng.normal(anomalous * 0.8, 1.0), 1)  # rounded: many ties
    assert len(set(scores)) < len(scores)
    assert anomaly.auroc(scores, anomalous) == pytest.approx(
        brute_force_auroc(scores, anomalous), abs=1e-12)
    assert anomaly.average_precision(scores, anomalous) == pytest.approx(
        brute_force_average_precision(scores, anomalous), abs=1e-12)


def test_auroc_interval_is_a_bootstrap_of_the_images():
    """Against resampling the images themselves and counting pairs anew:
    the same interval, within what the quantiles of 2,000 resamples vary by
    (about 0.004); it holds the AUROC, and four times the images halve it."""
    rng = np.random.default_rng(0)
    anomalous = np.r_[np.zeros(60, bool), np.ones(80, bool)]
    scores = np.round(rng.normal(anomalous * 0.55, 1.0), 1)  # many ties
    low, high = anomaly.auroc_interval(scores, anomalous, resamples=2000)
    draws = [np.r_[rng.integers(0, 60, 60), rng.integers(60, 140, 80)] for _ in range(2000)]
    brute = [np.mean((s[a][:, None] > s[~a]) + 0.5 * (s[a][:, None] == s[~a]))  # every pair
             for s, a in ((scores[d], anomalous[d]) for d in draws)]
    np.testing.assert_allclose((low, high), np.quantile(brute, [0.025, 0.975]), atol=0.015)
    assert low < anomaly.auroc(scores, anomalous) < high
    more_low, more_high = anomaly.auroc_interval(np.tile(scores, 4), np.tile(anomalous, 4))
    assert 0.4 < (more_high - more_low) / (high - low) < 0.6
    assert anomaly.auroc_interval(scores[:60], anomalous[:60]) is None  # normal images only


def test_known_cases():
    anomalous = np.array([False, False, True, True])
    assert anomaly.auroc(np.array([0.1, 0.2, 0.3, 0.4]), anomalous) == 1.0
    assert anomaly.auroc(np.array([0.4, 0.3, 0.2, 0.1]), anomalous) == 0.0
    assert anomaly.auroc(np.ones(4), anomalous) == 0.5
    assert anomaly.average_precision(np.ones(4), anomalous) == 0.5  # one threshold: all
    assert anomaly.auroc(np.ones(4), np.zeros(4, bool)) is None  # undefined
    assert anomaly.average_precision(np.ones(4), np.zeros(4, bool)) is None
    rates = anomaly.at_threshold(np.array([0.1, 0.5, 0.3, 0.9]), anomalous, 0.4)
    assert rates == {"fpr": 0.5, "tpr": 0.5, "precision": 0.5, "f1": 0.5}


def test_pixel_metrics_accumulated_chunk_by_chunk_are_exact_within_their_bound():
    """Binned and exact pixel AUROC and PRO on maps where defects score
    higher but overlap the rest: apart by at most the stated bound, itself
    small; values on few levels fall in distinct bins and come out exact."""
    rng = np.random.default_rng(3)
    masks = np.zeros((12, 24, 24), bool)
    for image, (row, column) in zip(masks[::2], rng.integers(0, 18, (6, 2))):
        image[row:row + rng.integers(1, 6), column:column + rng.integers(2, 7)] = True
    maps = rng.gamma(2.0, 0.01, masks.shape) * np.where(masks, 2.5, 1.0)
    for values, bounded in ((maps, True), (np.round(maps, 2), False)):
        accumulated = anomaly.PixelMetrics()
        for start in range(0, len(values), 5):
            accumulated.update(values[start:start + 5], masks[start:start + 5])
        exact_auroc, exact_pro = anomaly.pixel_auroc(values, masks), anomaly.pro(values, masks)
        assert 0.6 < exact_auroc < 0.95 and 0.1 < exact_pro < 0.9
        if bounded:
            assert 0 < accumulated.auroc_bound() < 1e-3 and 0 < accumulated.pro_bound() < 1e-2
            assert abs(accumulated.auroc() - exact_auroc) <= accumulated.auroc_bound()
            assert abs(accumulated.pro() - exact_pro) <= accumulated.pro_bound()
        else:
            assert accumulated.auroc() == pytest.approx(exact_auroc, abs=1e-12)
            assert accumulated.pro() == pytest.approx(exact_pro, abs=1e-12)
    assert anomaly.PixelMetrics().auroc() is None and anomaly.PixelMetrics().pro() is None



@pytest.mark.parametrize("fpr", [0.01, 0.05])
def test_the_calibrated_threshold_flags_fpr_of_fresh_normal_images(fpr):
    # The threshold is an order statistic of n validation scores: on fresh
    # images from the same distribution its FPR follows Beta(n - k + 1, k),
    # mean about fpr, sd about sqrt(fpr / n): 3 sd is the tolerance.
    rng = np.random.default_rng(0)
    n = 4000
    threshold = anomaly.calibrate(rng.gamma(2.0, size=n), fpr)
    fresh = rng.gamma(2.0, size=200_000)
    assert abs(np.mean(fresh > threshold) - fpr) < 3 * np.sqrt(fpr / n)
    assert anomaly.expected_fpr(n, fpr) == pytest.approx(fpr, abs=1 / n)
    # The fewest images that resolve fpr: the threshold is then their second largest.
    scores = np.arange(anomaly.needed_images(fpr), dtype=float)
    assert anomaly.calibrate(scores, fpr) == scores[-2]
    # Fewer: their largest, which flags 1 / (n + 1) of normal images on average.
    few = anomaly.needed_images(fpr) - 2
    assert anomaly.calibrate(scores[:few], fpr) == scores[few - 1]
    assert anomaly.expected_fpr(few, fpr) == 1 / (few + 1) > fpr


def test_a_threshold_from_few_images_flags_what_it_promises():
    """The highest of n validation scores, drawn again and again from one
    distribution, flags on average `expected_fpr(n)` = 1 / (n + 1) of fresh
    normal images, whatever the distribution (here a gamma)."""
    rng = np.random.default_rng(1)
    for n in (6, 20):
        # Beta(1, n)'s sd is 0.12 at n = 6: over 2,000 draws 0.0026, and 0.01 is 3.8 of it.
        thresholds = [anomaly.calibrate(rng.gamma(2.0, size=n), 0.01) for _ in range(2000)]
        flagged = np.mean([np.mean(rng.gamma(2.0, size=2000) > t) for t in thresholds])
        assert abs(flagged - anomaly.expected_fpr(n, 0.01)) < 0.01, n


def test_the_chance_of_flagging_normal_images_is_what_thresholds_do():
    """`chance_of_flagging` against thresholds drawn again and again: the
    highest of 30 validation scores (uniform: any distribution alike), and
    60 fresh normal images each."""
    rng = np.random.default_rng(2)
    trials = 40_000
    flagged = rng.binomial(60, 1 - rng.random((trials, 30)).max(axis=1))
    for at_least in (1, 3, 6, 10):
        simulated = np.mean(flagged >= at_least)
        chance = anomaly.chance_of_flagging(at_least, 60, 30, 0.01)
        assert abs(simulated - chance) < 4 * np.sqrt(chance * (1 - chance) / trials) + 1e-4
    assert anomaly.chance_of_flagging(0, 60, 30, 0.01) == pytest.approx(1.0)


def test_evaluation_says_when_normal_test_images_are_flagged_beyond_its_promise(
        tmp_path, caplog):
    rng = np.random.default_rng(3)
    validation = rng.gamma(2.0, size=30)
    detector = anomaly.Detector(score="mse", threshold=anomaly.calibrate(validation, 0.01),
                                fpr=0.01, normal_classes=("good",), validation_images=30,
                                validation_quantiles={}, expected_fpr=1 / 31)
    labels = np.r_[np.zeros(60, int), np.ones(20, int)]
    split = types.SimpleNamespace(test_labels=labels, train_labels=np.zeros(1, int),
                                  class_names=["good", "scratch"], test_masks=None)
    for shift, warned in ((1.0, False), (4.0, True)):  # as the validation scores, and larger
        caplog.clear()
        test = anomaly.DetectorTest(detector, split, "folder")
        scores = np.r_[shift * rng.gamma(2.0, size=60), rng.gamma(2.0, size=20) + 5]
        test.add(0, np.zeros((80, 4, 4, 1), np.float32), {"anomaly_score": scores})
        with caplog.at_level("WARNING"):
            test.finish(str(tmp_path))
        flagged = int(np.sum(scores[:60] > detector.threshold))
        assert (f"the threshold flags {flagged} of the 60 normal test images" in caplog.text) \
            == warned, (flagged, caplog.text)
    assert "where its 30 validation images promise about 3.2%" in caplog.text


def test_top_k_scores_a_small_defect_that_the_mean_hides():
    images = tf.zeros((2, 20, 20, 1))
    reconstructions = tf.tensor_scatter_nd_update(  # image 1: 4 pixels wrong by 1
        tf.zeros((2, 20, 20, 1)), [[1, 0, 0, 0], [1, 0, 1, 0], [1, 1, 0, 0], [1, 1, 1, 0]],
        [1.0] * 4)
    mse = anomaly.score(images, reconstructions, "mse").numpy()
    top = anomaly.score(images, reconstructions, "top_k").numpy()
    np.testing.assert_allclose(mse, [0, 4 / 400])
    np.testing.assert_allclose(top, [0, 4 / 40])  # 10% of 400 pixels: the worst 40


@pytest.fixture(scope="module")
def blobs_dir(tmp_path_factory):
    """3,000 training and 2,000 test blobs, labels alternating 0 and 1: the two
    classes look alike, so every test image is a fresh normal-like image."""
    directory = str(tmp_path_factory.mktemp("blobs"))
    for prefix, count, seed in (("train", 3000, 1), ("t10k", 2000, 2)):
        write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"),
                  make_images(count, seed))
        write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"),
                  np.arange(count, dtype=np.uint8) % 2)
    return directory


def detector_config(data_dir, model_dir, **anomaly_options):
    return config_lib.RunConfig(
        config_lib.DataConfig("mnist", data_dir=data_dir, download=False),
        config_lib.ModelConfig("linear"),
        config_lib.TrainConfig(str(model_dir), epochs=2),
        config_lib.AnomalyConfig(normal_classes=("0",), validation_fraction=0.5,
                                 **anomaly_options),
    )


@pytest.fixture(scope="module")
def detector_run(blobs_dir, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("detector") / "run"
    metrics = training.train(detector_config(blobs_dir, model_dir),
                             distribute.get_strategy("default"), verbose=0)
    return model_dir, metrics


def test_a_detector_trains_on_normal_images_and_is_calibrated(detector_run):
    model_dir, metrics = detector_run
    assert metrics["train_images"] == 750  # class 0's 1,500, half held out
    detector = json.load(open(model_dir / model_dir_lib.ANOMALY_FILE))
    assert detector["validation_images"] == 750 and detector["score"] == "mse"
    assert detector["map_sigma"] == 28 / 16  # the recipe's share of the side, written in
    run = json.load(open(model_dir / model_dir_lib.CONFIG_FILE))
    assert run["anomaly"]["anomaly_map_sigma"] == 28 / 16
    assert metrics["anomaly_threshold"] == detector["threshold"]
    assert metrics["test_normal_images"] == metrics["test_anomalous_images"] == 1000
    # Class 1 looks like class 0: its images are fresh normal ones too, so
    # both rates estimate the false-positive rate of a threshold calibrated on
    # 750 images: 0.01, sd 0.0037 (see the test above), plus the sampling
    # noise of 1,000 images (sd 0.003): 3 sd of both.
    for rate in ("test_fpr_at_threshold", "test_tpr_at_threshold"):
        assert abs(metrics[rate] - 0.01) < 0.015, (rate, metrics[rate])
    assert 0.4 < metrics["test_auroc"] < 0.6  # no better than chance, rightly
    low, high = metrics["test_auroc_interval"]
    assert low < metrics["test_auroc"] < high and high - low < 0.1  # 2,000 test images
    for figure in ("anomaly_scores.png", "roc.png", "highest_scores.png"):
        assert (model_dir / figure).exists()
    line = train_command.summary(metrics, str(model_dir))  # what train.py prints last
    assert (f"detector: test AUROC {metrics['test_auroc']:.4f} (95% interval {low:.2f}-"
            f"{high:.2f}), threshold "
            f"{metrics['anomaly_threshold']:.4g} (test FPR "
            f"{metrics['test_fpr_at_threshold']:.1%}, TPR ") in line
    plain = {k: v for k, v in metrics.items() if k != "anomaly_threshold"}
    assert "test AUROC" not in train_command.summary(plain, str(model_dir))


def test_a_test_split_without_anomalies_has_no_auroc(detector_run, blobs_dir, tmp_path,
                                                     caplog):
    model_dir, _ = detector_run
    config = training.resolve(detector_config(blobs_dir, model_dir))  # as the run ran
    split = anomaly.normal_split(data.load(config.data), [0], 0.5, 0.01, seed=0)
    only_normal = dataclasses.replace(split, test_labels=np.zeros_like(split.test_labels))
    model = keras.saving.load_model(model_dir / "model.keras")
    metrics = training.evaluate(model, only_normal, config, str(tmp_path))
    assert metrics["test_auroc"] is None and metrics["test_average_precision"] is None
    assert "undefined: the test split has no anomalous images" in caplog.text


def test_bad_normal_classes_and_small_validation_splits_are_named(blobs_dir, tmp_path):
    strategy = distribute.get_strategy("default")
    config = detector_config(blobs_dir, tmp_path / "run")
    bad_class = dataclasses.replace(
        config, anomaly=dataclasses.replace(config.anomaly, normal_classes=("2",)))
    with pytest.raises(config_lib.ConfigError, match=r"class '2' is not one of mnist's "
                       r"classes: 0 to 1"):
        training.train(bad_class, strategy, verbose=0)
    none = dataclasses.replace(config, anomaly=dataclasses.replace(
        config.anomaly, validation_fraction=0.0001))
    with pytest.raises(config_lib.ConfigError, match="is 0 validation images, which leaves "
                       "none to calibrate on: raise --validation_fraction"):
        training.train(none, strategy, verbose=0)
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def exported_detector(detector_run, tmp_path_factory):
    model_dir, _ = detector_run
    base = tmp_path_factory.mktemp("exports")
    config = config_lib.ExportConfig(str(base), model_name="m", quantize=("float32",))
    return export.export_run(str(model_dir), config)  # checks every output vs Keras


@pytest.mark.slow  # TFLite conversions
def test_a_quantized_detector_that_decides_otherwise_is_left_out(detector_run, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setattr(checks, "MAX_DECIDED_OTHERWISE", -1.0)  # none may pass
    config = config_lib.ExportConfig(str(tmp_path), model_name="m", formats=("tflite",),
                                     quantize=("float32", "dynamic"), eval_examples=50)
    report = export.export_run(str(detector_run[0]), config)
    name = "tflite/reconstruct_dynamic.tflite"
    assert list(report["tflite_left_out"]) == [name]
    assert "dynamic quantization: is_anomaly other than" in report["tflite_left_out"][name]
    published = sorted(os.listdir(os.path.join(report["path"], "tflite")))
    # Encode and decode decide nothing; the float32 file is held to its tolerance.
    assert published == ["decode_dynamic.tflite", "decode_float32.tflite",
                         "encode_dynamic.tflite", "encode_float32.tflite",
                         "reconstruct_float32.tflite"]
    assert sorted(report["files"]) == sorted(f"tflite/{f}" for f in published)


@pytest.mark.slow  # the exported detector: a fresh SavedModel process, a TFLite conversion
def test_decisions_are_counted_on_test_images_beyond_those_the_checks_hold(
        exported_detector, detector_run, blobs_dir, monkeypatch):
    """A quantized detector's decisions are checked on DECISION_IMAGES test
    images: past the first the checks hold, read a batch within IMAGE_BUDGET
    at a time. Counted here against a Keras detector whose threshold is the
    median score, the served file (at the calibrated threshold) decides
    otherwise on the images between the two."""
    model_dir, _ = detector_run
    model = keras.saving.load_model(model_dir / model_dir_lib.MODEL_FILE)
    calibrated = anomaly.Detector.from_dict(json.load(open(model_dir / model_dir_lib.ANOMALY_FILE)))
    test_images = data.load(detector_config(blobs_dir, model_dir).data).test_images
    first = test_images[:checks.DECISION_IMAGES]
    median = dataclasses.replace(calibrated, threshold=float(np.median(
        anomaly.outputs_of(model, first, 64, detector=calibrated)["anomaly_score"])))
    decided = [anomaly.outputs_of(model, first, 64, detector=d)["is_anomaly"]
               for d in (calibrated, median)]
    monkeypatch.setattr(checks, "IMAGE_BUDGET", 10 * 28 * 28 * 4)  # batches of 10 images
    decisions = checks.Decisions(model, median, test_images, checked=5)
    entry = {"mse_vs_keras": {"serving_default/is_anomaly": 2 / 5}}  # 2 of the 5 checked
    decisions.count(entry, os.path.join(exported_detector["path"], "tflite",
                                        "reconstruct_float32.tflite"))
    between = int(np.sum(decided[0][5:] != decided[1][5:]))
    assert between > 5
    assert entry["decided_otherwise"] == {"images": checks.DECISION_IMAGES, "count": 2 + between}
    assert checks.flipped(entry, 5) == (2 + between, checks.DECISION_IMAGES)


@pytest.mark.slow  # exports: a fresh SavedModel process, a TFLite conversion
def test_the_export_answers_is_anomaly_as_keras_does(exported_detector, detector_run):
    report = exported_detector
    _, metrics = detector_run
    assert report["anomaly"]["threshold"] == metrics["anomaly_threshold"]
    served = report["files"]["saved_model"]["signatures"]
    for name in (signatures.RECONSTRUCT, signatures.BYTES):
        assert {"anomaly_score", "normalized_score", "is_anomaly"} <= set(served[name]["outputs"])
    # Compared with the Keras model on every test image: not one decision differs.
    for entry in ("saved_model", "tflite/reconstruct_float32.tflite"):
        differences = report["files"][entry]["max_abs_diff"]
        assert differences["serving_default/is_anomaly"] == 0, entry
        assert differences["serving_default/anomaly_score"] < 1e-5, entry


@pytest.fixture(scope="module")
def restoration_run(blobs_dir, tmp_path_factory):
    """A small restoration detector of blobs, trained for two epochs and
    exported (checked on 500 test images)."""
    model_dir = tmp_path_factory.mktemp("restoration") / "run"
    config = dataclasses.replace(
        detector_config(blobs_dir, model_dir),
        model=config_lib.ModelConfig("restoration", latent_dim=8, filters=(8, 16)))
    metrics = training.train(config, distribute.get_strategy("default"), verbose=0)
    exports = config_lib.ExportConfig(str(tmp_path_factory.mktemp("exports")), model_name="r",
                                      quantize=("float32", "int8"), calibration_examples=100,
                                      eval_examples=500)
    return model_dir, metrics, export.export_run(str(model_dir), exports)


@pytest.mark.slow  # exports: a fresh SavedModel process and TFLite conversions
def test_the_export_serves_every_view_of_the_restoration_detector_as_keras(restoration_run):
    model_dir, metrics, report = restoration_run
    detector = json.load(open(model_dir / model_dir_lib.ANOMALY_FILE))
    assert len(detector["views"]) == len(detector["view_constants"]) == 8
    for entry in ("saved_model", "tflite/reconstruct_float32.tflite"):
        differences = report["files"][entry]["max_abs_diff"]  # every checked image
        assert differences["serving_default/anomaly_views"] < 1e-4, entry
        assert differences["serving_default/anomaly_score"] < 1e-5, entry
        assert differences["serving_default/anomaly_map"] < 1e-5, entry  # smoothed: 1.75 px
        assert differences["serving_default/is_anomaly"] == 0, entry
    # The int8 file runs every view in LiteRT too (its differences reported, not
    # bounded). The restoration detector scores "top_k" (its recipe's default),
    # so this also serves that score as Keras does, in every file: a plain
    # model's "top_k" is the same `image_error` of its one view.
    assert "anomaly_map" in report["files"]["tflite/reconstruct_int8.tflite"]["outputs"]
    loaded = tf.saved_model.load(report["path"])
    served = loaded.signatures[signatures.RECONSTRUCT](
        images=tf.constant(make_images(16, seed=3)[..., None] / 255.0, tf.float32))
    # The map spreads the views over the pixels; the "top_k" score (the
    # detector's default) averages each view's worst pixels, so it is above
    # the map's mean ("mse" would equal it: test_restoration.py).
    assert detector["score"] == "top_k" and served["anomaly_map"].shape == (16, 28, 28)
    mean = np.mean(served["anomaly_map"], axis=(1, 2))
    assert np.all(mean < served["anomaly_score"]) and np.all(mean > 0)
    (constants,) = loaded.anomaly_view_constants
    np.testing.assert_allclose(constants.numpy(), detector["view_constants"], rtol=1e-6)
    # Blobs of class 1 are fresh normal images: about 1% flagged, as calibrated.
    images = tf.constant(make_images(2000, seed=11)[..., None] / 255.0, tf.float32)
    flagged = loaded.signatures[signatures.RECONSTRUCT](images=images)["is_anomaly"]
    assert abs(np.mean(flagged) - 0.01) < 0.015
    assert abs(metrics["test_fpr_at_threshold"] - 0.01) < 0.015


@pytest.mark.slow  # exports: a fresh SavedModel process, a TFLite conversion
def test_a_new_threshold_changes_the_served_decisions(exported_detector):
    loaded = tf.saved_model.load(exported_detector["path"])
    images = tf.constant(make_images(64, seed=5)[..., None] / 255.0, tf.float32)
    serve = loaded.signatures[signatures.RECONSTRUCT]
    before = serve(images=images)
    (threshold,) = loaded.anomaly_threshold
    threshold.assign(float(np.median(before["anomaly_score"])))
    after = serve(images=images)
    np.testing.assert_array_equal(after["is_anomaly"],
                                  after["anomaly_score"].numpy() > np.median(before["anomaly_score"]))
    assert after["is_anomaly"].numpy().sum() == 32 != before["is_anomaly"].numpy().sum()


@pytest.mark.slow  # exports: a fresh SavedModel process, a TFLite conversion
def test_the_client_prints_each_files_score_and_decision_and_writes_its_map(exported_detector, tmp_path):
    # Two blobs, and an image of noise that looks like no blob.
    blobs = make_images(2, seed=7)
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    paths = []
    for name, pixels in (("a", blobs[0]), ("b", blobs[1]), ("noise", noise)):
        paths.append(str(tmp_path / f"{name}.png"))
        Image.fromarray(pixels).save(paths[-1])
    loaded = tf.saved_model.load(exported_detector["path"])
    _StandInServer.signatures = loaded.signatures
    server = http.server.HTTPServer(("127.0.0.1", 0), _StandInServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run_module("export.client", *paths, "--model_name=m",
                            f"--server=http://127.0.0.1:{server.server_port}",
                            f"--anomaly_maps={tmp_path / 'maps'}")
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr[-2000:]
    served = loaded.signatures[signatures.BYTES](
        image_bytes=tf.constant([open(p, "rb").read() for p in paths]))
    for path, anomaly_map, score in zip(paths, served["anomaly_map"].numpy(),
                                        served["anomaly_score"].numpy()):
        name = os.path.splitext(os.path.basename(path))[0] + "_map.png"
        written = np.asarray(Image.open(tmp_path / "maps" / name), np.float32)
        threshold = loaded.anomaly_threshold[0].numpy()  # grey 128 at the threshold
        np.testing.assert_allclose(
            written, 255 * np.clip(0.5 * anomaly_map / threshold, 0, 1), atol=1)
        # "mse": unsmoothed, the map's mean is the score; the blur's reflected
        # edges move it a little (measured 0.3-1.5%).
        assert np.isclose(anomaly_map.mean(), score, rtol=0.03)
    lines = result.stdout.strip().splitlines()
    for line, score, decision in zip(lines, served["anomaly_score"].numpy(),
                                     served["is_anomaly"].numpy()):
        assert f"anomaly_score {score:.6f}" in line
        assert line.endswith("anomaly" if decision else "normal")
    assert lines[-1].endswith(": anomaly")  # noise is no blob


def test_each_anomalous_class_gets_its_own_auroc_and_they_weigh_into_the_whole(
        detector_run, blobs_dir, tmp_path):
    """Half of class 1 (normal-looking) becomes class 2, noise: class 2's AUROC
    is near 1, class 1's near chance, and the whole split's AUROC is their
    mean weighted by images (the chance an anomalous image outscores a normal one)."""
    model_dir, _ = detector_run
    config = training.resolve(detector_config(blobs_dir, model_dir))
    split = anomaly.normal_split(data.load(config.data), [0], 0.5, 0.01, seed=0)
    labels, images = split.test_labels.copy(), split.test_images.copy()
    noise = np.flatnonzero(labels == 1)[::2]
    labels[noise] = 2
    images[noise] = np.random.default_rng(0).integers(0, 256, images[noise].shape)
    model = keras.saving.load_model(model_dir / "model.keras")
    metrics = training.evaluate(
        model, dataclasses.replace(split, test_labels=labels, test_images=images), config,
        str(tmp_path))
    by_class = metrics["test_auroc_by_class"]
    assert set(by_class) == {"1", "2"} and by_class["2"] > 0.99 and by_class["1"] < 0.6
    counts = {"1": np.sum(labels == 1), "2": len(noise)}
    weighted = sum(counts[c] * by_class[c] for c in counts) / sum(counts.values())
    assert np.isclose(metrics["test_auroc"], weighted)


def test_a_folder_of_good_parts_and_a_test_folder_of_good_and_defective_ones(tmp_path):
    # anomalib's Folder layout: normal images to train on; test/good, test/defect.
    rng = np.random.default_rng(0)
    folders = {"train/good": make_images(120, seed=1), "test/good": make_images(30, seed=2),
               "test/defect": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)}
    for folder, pictures in folders.items():
        os.makedirs(tmp_path / folder)
        for i, pixels in enumerate(pictures):
            Image.fromarray(pixels).save(tmp_path / folder / f"{i}.png")
    config = config_lib.RunConfig(
        config_lib.DataConfig("folder", data_dir=str(tmp_path / "train"),
                              test_dir=str(tmp_path / "test"), batch_size=16),
        config_lib.ModelConfig("linear"), config_lib.TrainConfig(str(tmp_path / "run"), epochs=3),
        config_lib.AnomalyConfig(normal_classes=("good",), validation_fraction=0.25,
                                 anomaly_fpr=0.1))
    metrics = training.train(config, distribute.get_strategy("default"), verbose=0)
    assert metrics["train_images"] == 90  # 30 of the 120 held out to calibrate
    assert metrics["test_normal_images"] == metrics["test_anomalous_images"] == 30
    assert metrics["test_auroc"] > 0.95  # noise is far from any blob
