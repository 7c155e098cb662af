"""The restoration detector: its views, its loss, its score, and the collapse guard."""

import os

import numpy as np
import pytest
import tensorflow as tf

from keras_ae import anomaly
from keras_ae import config as config_lib
from keras_ae import distribute
from keras_ae import models
from keras_ae import training
from keras_ae.export import checks
from keras_ae.variants.restoration import model as restoration
from keras_ae.training import callbacks
from tests.test_case import AutoencoderTestCase

FASHION = "/usr/share/datasets/fashion-mnist"


class TestRestoration(AutoencoderTestCase):
    variant = "restoration"
    options = {"latent_dim": 2, "filters": (4, 8), "decoder_filters": (4,)}
    code_names = ["latent", "view"]


class TestRestorationOblong(AutoencoderTestCase):
    variant = "restoration"
    input_shape = (8, 12, 3)
    options = {"latent_dim": 2, "filters": (4, 8), "decoder_filters": (4, 8),
               "upsampling": "transpose"}
    code_names = ["latent", "view"]


def test_the_views_of_a_square_image_are_its_quarter_turns():
    image = np.array([[1, 2], [3, 4]], np.float32)[None, :, :, None]
    views = [v.numpy()[0, :, :, 0] for v in restoration.views(tf.constant(image))]
    np.testing.assert_array_equal(views[0], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(views[1], [[2, 4], [1, 3]])  # 90° anticlockwise
    np.testing.assert_array_equal(views[2], [[4, 3], [2, 1]])
    np.testing.assert_array_equal(views[3], [[3, 1], [4, 2]])


def test_the_views_of_an_oblong_image_keep_its_shape():
    image = np.array([[1, 2, 3], [4, 5, 6]], np.float32)[None, :, :, None]
    views = [v.numpy()[0, :, :, 0] for v in restoration.views(tf.constant(image))]
    np.testing.assert_array_equal(views[1], [[6, 5, 4], [3, 2, 1]])
    np.testing.assert_array_equal(views[2], [[3, 2, 1], [6, 5, 4]])
    np.testing.assert_array_equal(views[3], [[4, 5, 6], [1, 2, 3]])


def test_each_view_is_divided_by_its_validation_mean():
    validation = np.array([[1.0, 2.0], [3.0, 6.0]])
    constants = anomaly.view_constants(validation)
    assert constants == [2.0, 4.0]
    scores = anomaly.combine(np.array([[2.0, 4.0], [1.0, 12.0]], np.float32), constants)
    np.testing.assert_allclose(scores, [1.0, 1.75])
    assert anomaly.view_constants(np.array([[0.5], [0.7]])) == [1.0]  # one view: as it is


def test_an_export_check_measures_the_score_by_what_its_views_may_err():
    expected = {"serving_default": {"anomaly_views": np.array([[0.001, 0.0005]]),
                                    "anomaly_score": np.array([0.251]),
                                    "reconstruction_error": np.array([0.5])}}
    detector = _detector(threshold=4.0, view_constants=(0.5, 1e-3))
    scale = checks.scales(expected, detector)["serving_default"]
    np.testing.assert_allclose(scale["anomaly_views"], [[1.0, 1.0]])
    np.testing.assert_allclose(scale["anomaly_score"], [(1 / 0.5 + 1 / 1e-3) / 2])
    np.testing.assert_allclose(scale["normalized_score"], [0.5 * 501 / 4.0])
    np.testing.assert_allclose(scale["reconstruction_error"], [1.0])
    # The second view erring by the tolerance moves the score by half of it
    # over 1e-3, 0.05, which is 20% of 0.251: accepted; 2.5 times that is not.
    move = checks.FLOAT_TOLERANCE / 1e-3 / 2
    moved = {"serving_default": {**expected["serving_default"],
                                 "anomaly_score": np.array([0.251 + move])}}
    checks.compare("export", moved, expected, {"serving_default": scale})
    moved["serving_default"]["anomaly_score"] = np.array([0.251 + 2.5 * move])
    with pytest.raises(checks.ExportError, match="anomaly_score"):
        checks.compare("export", moved, expected, {"serving_default": scale})


def test_an_export_check_accepts_what_float32_round_off_can_make_and_no_more():
    """A code summed over many terms strays from its float64 twin's by 3e-4,
    three times FLOAT_TOLERANCE: 30 times the stray is accepted, more is
    not; a decision flipped where the score is within its tolerance of the
    threshold is round-off too, elsewhere a broken export."""
    expected = {"encode": {"latent": np.array([[0.5, 1.0003], [2.0, 3.0]])},
                "serving_default": {"anomaly_views": np.array([[2.0], [1.0]]),
                                    "anomaly_score": np.array([2.0, 1.0]),
                                    "is_anomaly": np.array([False, False])}}
    reference = {"encode": {"latent": np.array([[0.5, 1.0]])},
                 "serving_default": {"anomaly_views": np.array([[2.0]]),
                                     "anomaly_score": np.array([2.0]),
                                     "is_anomaly": np.array([True])}}
    strays = {name: checks.strays(expected[name], reference[name]) for name in expected}
    assert strays["encode"] == {"latent": pytest.approx(3e-4)}
    assert "is_anomaly" not in strays["serving_default"]  # a flip measures no round-off
    scale = checks.scales(expected, _detector(threshold=2.0, view_constants=(1.0,)), strays)
    exported = {"encode": {"latent": expected["encode"]["latent"] + 8.9e-3}}
    checks.compare("export", exported, {"encode": expected["encode"]}, scale)
    exported["encode"]["latent"] = expected["encode"]["latent"] + 9.1e-3
    with pytest.raises(checks.ExportError, match="'latent'"):
        checks.compare("export", exported, {"encode": expected["encode"]}, scale)
    served = dict(expected["serving_default"], is_anomaly=np.array([True, False]))
    checks.compare("export", {"serving_default": served},
                   {"serving_default": expected["serving_default"]}, scale)
    served["is_anomaly"] = np.array([False, True])  # 1.0 is nowhere near 2.0
    with pytest.raises(checks.ExportError, match="is_anomaly"):
        checks.compare("export", {"serving_default": served},
                       {"serving_default": expected["serving_default"]}, scale)


@pytest.fixture(scope="module")
def model():
    model = models.build("restoration", (12, 12, 1), latent_dim=8, filters=(4, 8),
                         view_weight=0.1)
    model.compile()
    return model


def test_the_loss_is_the_mean_restoration_error_plus_the_weighted_view_entropy(model):
    images = np.random.default_rng(0).random((6, 12, 12, 1), np.float32)
    loss = model.compute_loss(images, images, model(images), training=True)
    views = model.anomaly_views(images).numpy()  # computed apart, at inference
    np.testing.assert_allclose(loss, views[:, :4].mean() + 0.1 * views[:, 4:].mean(), rtol=1e-5)


def test_a_model_of_one_constant_image_collapsed_and_a_fresh_one_did_not(model):
    sample = np.random.default_rng(1).random((32, 12, 12, 1), np.float32)
    guard = callbacks.StopOnDivergence(1e-3, "model.keras", sample)
    collapsed = models.build("restoration", (12, 12, 1), latent_dim=8, filters=(4, 8))
    last = collapsed.decoder.get_layer("reconstruction")
    last.kernel.assign(tf.zeros_like(last.kernel))  # sigmoid(bias) whatever the input
    guard.set_model(collapsed)
    guard.on_epoch_end(2)  # too few steps to judge: batch normalization may lag
    guard.steps = callbacks.COLLAPSE_JUDGED_AFTER
    with pytest.raises(training.TrainingCollapsed, match=r"training collapsed: after epoch 3 "
                       r"the model returns nearly the same image for every input .*"
                       r"Lower the learning rate"):
        guard.on_epoch_end(2)
    guard.set_model(model)
    guard.on_epoch_end(0)  # freshly initialised: its outputs vary with its input


def test_validation_scores_that_are_all_equal_separate_nothing():
    anomaly.check_separates(np.array([0.1, 0.1, 0.1000002]))
    with pytest.raises(anomaly.CalibrationError, match="all score 0.1: the model cannot tell"):
        anomaly.check_separates(np.full(100, 0.1))


def test_without_a_variant_normal_classes_train_the_detector_at_its_recipe():
    def resolved(**anomaly_options):
        return training.resolve(config_lib.RunConfig(
            config_lib.DataConfig(), config_lib.ModelConfig(), config_lib.TrainConfig("/tmp/run"),
            config_lib.AnomalyConfig(**anomaly_options)))

    detector = resolved(normal_classes=("3",))
    assert detector.model.variant == "restoration" and detector.train.epochs == 12
    assert detector.train.learning_rate_schedule == "warmup_cosine"
    plain = resolved()
    assert plain.model.variant == "linear" and plain.train.epochs == 10


@pytest.mark.slow
def test_the_detector_separates_a_class_better_than_plain_reconstruction(tmp_path):
    """Bags (class 8) normal, trained on bags alone and calibrated on held-out
    bags: the 1,000 test bags told from the other 9,000 clothes by the
    restoration detector's multi-view score, above 0.9 on a third of the data
    in 3 epochs, where no plain reconstruction error reaches it with all of it
    in 5 (`bench/anomaly-baselines.json`, bags: linear 0.896, conv 0.823, vae
    0.817, denoising 0.733; this test ran conv alike too until it measured
    0.767 against 0.933 here). Flags → config is test_train.py's, a
    detector's export test_anomaly.py's."""
    if not os.path.isdir(FASHION):
        pytest.fail("needs Debian's dataset-fashion-mnist: apt-get install dataset-fashion-mnist")
    config = config_lib.RunConfig(
        config_lib.DataConfig("fashion_mnist", download=False, train_examples=20000),
        config_lib.ModelConfig("restoration"),
        config_lib.TrainConfig(str(tmp_path / "restoration"), epochs=3),
        config_lib.AnomalyConfig(normal_classes=("8",)),
    )
    metrics = training.train(config, distribute.get_strategy("default"), verbose=0)
    assert metrics["test_normal_images"] == 1000 and metrics["test_anomalous_images"] == 9000
    print(metrics["test_auroc"])  # measured 0.933
    assert metrics["test_auroc"] > 0.9


def test_a_map_is_its_image_score_spread_over_pixels():
    """The mean of a pixel map is the image's "mse" score, for the plain and
    the multi-view detector, the head's views counting alike at each pixel."""
    images = tf.random.stateless_uniform((3, 8, 8, 1), seed=(4, 2))
    for model in (models.build("conv", (8, 8, 1), latent_dim=2, filters=(4, 8)),
                  models.build("restoration", (8, 8, 1), latent_dim=2, filters=(4, 8),
                               decoder_filters=(4,))):
        views, maps = model.anomaly_views(images, "mse", maps=True)
        assert np.allclose(np.mean(maps, axis=(2, 3)), views[:, :maps.shape[1]], rtol=1e-5)
        constants = np.linspace(0.5, 2.0, views.shape[1]).astype(np.float32)
        combined = anomaly.combine_maps(views, maps, constants).numpy()
        assert combined.shape == (3, 8, 8)
        assert np.allclose(combined.mean(axis=(1, 2)), anomaly.combine(views, constants),
                           rtol=1e-5)


def test_smoothing_spreads_a_point_as_a_gaussian_and_keeps_a_flat_map_flat():
    sigma = 1.5
    point = np.zeros((1, 15, 15), np.float32)
    point[0, 7, 7] = 1.0
    blurred = anomaly.smooth(point, sigma).numpy()[0]
    assert np.isclose(blurred.sum(), 1.0) and blurred.argmax() == 7 * 15 + 7
    for dy, dx in ((0, 1), (2, 3), (-4, 0)):
        assert np.isclose(blurred[7 + dy, 7 + dx] / blurred[7, 7],
                          np.exp(-(dy ** 2 + dx ** 2) / (2 * sigma ** 2)), rtol=1e-4)
    flat = np.full((2, 6, 9), 0.3, np.float32)  # the edges reflected, not padded with 0
    np.testing.assert_allclose(anomaly.smooth(flat, 4.0), flat, rtol=1e-6)
    assert anomaly.smooth(point, 0.0) is point


def _detector(**fields):
    return anomaly.Detector(**{"score": "top_k", "threshold": 1.0, "fpr": 0.01,
                               "normal_classes": ("0",), "validation_images": 100,
                               "validation_quantiles": {}} | fields)


def numpy_map(views, maps, constants, sigma):
    """`anomaly.combine_maps` in numpy: the views combined per pixel, then a
    Gaussian of `sigma` (cut at 3 sigma, or at the side less one) convolved
    along each side of the edge-reflected map."""
    pixel_views = maps.shape[1]
    pixels = np.sum(maps / constants[None, :pixel_views, None, None], axis=1)
    whole = np.sum(views[:, pixel_views:] / constants[pixel_views:], axis=1)
    combined = (pixels + whole[:, None, None]) / views.shape[1]
    for axis in (1, 2) if sigma else ():
        radius = min(int(np.ceil(3 * sigma)), combined.shape[axis] - 1)
        weights = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2 * sigma ** 2))
        padding = [(0, 0)] * 3
        padding[axis] = (radius, radius)
        padded = np.pad(combined, padding, mode="reflect")
        combined = np.apply_along_axis(
            lambda line: np.convolve(line, weights / weights.sum(), mode="valid"), axis, padded)
    return combined


def test_the_served_map_is_the_views_combined_per_pixel_and_smoothed():
    """`combine_maps` (blur matrices, what evaluation and exports serve)
    against a numpy convolution of the reflected map, on a side shorter than
    the Gaussian's reach too; and a detector's outputs against numpy."""
    rng = np.random.default_rng(1)
    views = rng.random((4, 3)).astype(np.float32)
    maps = rng.random((4, 2, 7, 12)).astype(np.float32)
    constants = np.array([0.5, 2.0, 0.1], np.float32)
    for sigma in (0.0, 0.8, 3.0):
        np.testing.assert_allclose(
            anomaly.combine_maps(views, maps, constants, sigma).numpy(),
            numpy_map(views, maps, constants, sigma), rtol=1e-5, atol=1e-6)
    detector = _detector(threshold=2.5, view_constants=tuple(constants), map_sigma=0.8)
    served = detector.outputs(views, maps)
    score = np.mean(views / constants, axis=1)
    np.testing.assert_allclose(served["anomaly_score"], score, rtol=1e-6)
    np.testing.assert_allclose(served["normalized_score"], 0.5 * score / 2.5, rtol=1e-6)
    np.testing.assert_array_equal(served["is_anomaly"], score > 2.5)
    np.testing.assert_allclose(served["anomaly_map"], numpy_map(views, maps, constants, 0.8),
                               rtol=1e-5, atol=1e-6)


def test_regions_join_diagonal_neighbours_and_keep_apart_the_rest():
    masks = np.zeros((2, 6, 6), bool)
    masks[0, 0, 0] = masks[0, 1, 1] = masks[0, 2, 2] = True  # one diagonal line
    masks[0, 4:, 4:] = True
    masks[1, 0, :] = masks[1, :, 0] = masks[1, 5, 3:] = True  # an L and a bar
    numbered = anomaly.regions(masks)
    assert len(np.unique(numbered[masks])) == 4 and (numbered[~masks] == 0).all()
    assert len(np.unique(numbered[0][[0, 1, 2], [0, 1, 2]])) == 1
    assert numbered[1, 0, 5] == numbered[1, 5, 0] != numbered[1, 5, 5]


def test_pro_weighs_every_region_alike_and_integrates_to_the_fpr_limit():
    rng = np.random.default_rng(0)
    masks = np.zeros((20, 16, 16), bool)
    masks[:10, 2:4, 2:4] = True  # small regions
    masks[:10, 8:16, 8:16] = True  # large ones
    assert abs(anomaly.pro(masks.astype(np.float32), masks) - 1.0) < 1e-9
    scores = rng.random(masks.shape)
    assert np.isclose(anomaly.pro(scores, masks), _pro_threshold_by_threshold(scores, masks))
    # Random scores flag each region as much as the defect-free pixels: 0.15.
    assert abs(anomaly.pro(rng.random((400, 16, 16)), np.tile(masks, (20, 1, 1))) - 0.15) < 0.01
    # Finding only the large regions is worth half, though they hold 94% of
    # the defect pixels (pixel AUROC counts pixels instead), and the rest tie
    # at 0: the curve goes straight on from (0, 0.5) to (1, 1), 0.575 on average to 0.3.
    large = np.zeros(masks.shape, np.float32)
    large[:10, 8:16, 8:16] = 1.0
    assert abs(anomaly.pro(large, masks) - 0.575) < 1e-9
    assert np.isclose(anomaly.pro(large, masks), _pro_threshold_by_threshold(large, masks))
    assert anomaly.pixel_auroc(large, masks) > 0.95
    assert anomaly.pro(large, np.zeros(masks.shape, bool)) is None


def _pro_threshold_by_threshold(scores, masks, max_fpr=0.3):
    """PRO as the MVTec AD paper defines it, one threshold at a time."""
    numbered = anomaly.regions(masks)
    points = [(0.0, 0.0)]
    for threshold in np.unique(scores)[::-1]:
        flagged = scores >= threshold
        overlap = np.mean([flagged[numbered == r].mean() for r in range(1, numbered.max() + 1)])
        points.append((flagged[~masks].mean(), overlap))
    fpr, overlap = np.array(points).T
    limit = np.interp(max_fpr, fpr, overlap)
    kept = fpr <= max_fpr
    return np.trapezoid(np.r_[overlap[kept], limit], np.r_[fpr[kept], max_fpr]) / max_fpr
