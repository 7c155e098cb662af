"""Training on the user's own images: folders, any TFDS image dataset, any size,
and the SavedModel signature that takes encoded image files."""

import io
import json
import os

import keras
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from keras_ae import config as config_lib
from keras_ae import data
from keras_ae import distribute
from keras_ae import export
from keras_ae import images
from keras_ae import models
from keras_ae import training
from keras_ae.export import signatures
from tests.conftest import store_tfds_dataset
from tests.test_train import assert_writes_the_variants_outputs

SIZE = (21, 14)  # non-square, odd: the decoders must end at exactly this


def write_image(path, pixels):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).save(path)


def make_folder(root, count=24, seed=0):
    """Smooth random pictures (so they can be learnt): PNG and JPEG, grey and
    RGB, of several sizes, in classes `a/` (with a nested folder) and `b/`,
    plus a text file."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        height, width = rng.integers(18, 40, 2)
        small = rng.integers(0, 256, (3, 3, 3)).astype(np.float32)
        pixels = tf.image.resize(small, (height, width)).numpy().astype(np.uint8)
        kind = ("a", "a/deep", "b")[i % 3]
        if i % 2:
            write_image(f"{root}/{kind}/rgb-{seed}-{i}.png", pixels)
        else:
            write_image(f"{root}/{kind}/grey-{seed}-{i}.jpg", pixels[..., 0])
    with open(f"{root}/README.txt", "w") as f:
        f.write("not an image")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("pictures"))
    make_folder(root, count=48)
    with open(f"{root}/b/broken.png", "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n truncated")
    return root


def load_folder(root, **options):
    options = {"image_size": SIZE, "skip_bad_images": True, **options}
    return data.load("folder", data_dir=root, test_fraction=0.25, **options)


def test_a_folder_loads_resized_with_labels_and_counts(folder):
    loaded = load_folder(folder)
    assert loaded.train_images.shape[1:] == (*SIZE, 3)  # RGB, as some files are
    assert loaded.train_images.dtype == np.uint8
    assert len(loaded.train_images) + len(loaded.test_images) == 48
    assert loaded.class_names == ("a", "b")  # top-level folders; a/deep is in a
    labels = np.concatenate([loaded.train_labels, loaded.test_labels])
    assert len(loaded.train_labels) == len(loaded.train_images)
    assert np.bincount(labels).tolist() == [32, 16]  # a/ and a/deep: 32 files; b/: 16
    assert loaded.skipped == (f"{folder}/b/broken.png",)
    assert loaded.ignored == 1  # README.txt
    grey = load_folder(folder, channels=1, crop_to_aspect_ratio=True)
    assert grey.train_images.shape[1:] == (*SIZE, 1)


def test_bad_folders_name_the_problem_and_the_fix(folder, tmp_path):
    with pytest.raises(data.DataError, match=r"broken.png: not a readable image.*"
                                             r"--skip_bad_images"):
        load_folder(folder, skip_bad_images=False)
    with pytest.raises(data.DataError, match=r"different sizes, e\.g\. \d+x\d+ \(.*"
                                             r"--image_size=HEIGHT,WIDTH"):
        load_folder(folder, image_size=None)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "notes.txt").write_text("x")
    with pytest.raises(data.DataError, match=r"empty: no images.*\.png.*1 other file"):
        load_folder(str(tmp_path / "empty"))
    with pytest.raises(data.DataError, match="no such folder"):
        load_folder(str(tmp_path / "missing"))


def test_the_test_split_is_stable_as_files_are_added(tmp_path):
    root = str(tmp_path / "grows")
    make_folder(root, count=30)
    before = load_folder(root)
    make_folder(root, count=30, seed=1)  # 30 more files, other names
    after = load_folder(root)
    key = lambda image: image.tobytes()  # noqa: E731 (the images are all distinct)
    after_test = {key(x) for x in after.test_images.in_memory()}  # streamed: files
    after_train = {key(x) for x in after.train_images}
    assert all(key(x) in after_test for x in before.test_images.in_memory())
    assert all(key(x) in after_train for x in before.train_images)
    # A fair share: of 10,000 paths, test_fraction 0.1 picks about 1,000.
    picked = sum(data.in_test_split(f"class/{i}.png", 0.1) for i in range(10_000))
    assert 900 < picked < 1100


def test_preprocessing_converts_channels_and_crops_without_distortion():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    assert images.to_channels(grey, 3).numpy().tolist() == np.repeat(grey, 3, -1).tolist()
    np.testing.assert_array_equal(images.to_channels(np.repeat(grey, 3, -1), 1), grey)
    # A 4×8 image whose left and right quarters are black: cropping to a
    # square keeps only the white middle.
    wide = np.zeros((4, 8, 1), np.uint8)
    wide[:, 2:6] = 255
    assert images.resize(wide, (2, 2), crop_to_aspect_ratio=True).numpy().min() == 255
    assert images.resize(wide, (2, 2)).numpy().min() < 255
    same = np.random.default_rng(0).integers(0, 256, (5, 7, 3), np.uint8)
    np.testing.assert_array_equal(images.resize(same, (5, 7)), same)


@pytest.fixture(scope="module")
def folder_runs(folder, tmp_path_factory):
    """Every variant trained on the folder at SIZE under two replicas, and
    exported. At batch 2 the last batch of each split (33 training, 15 test
    images) holds one image, which leaves a replica empty: oneDNN's
    convolutions (on by default on Intel CPUs) rejected that in fit() and
    predict(); tests/test_distribute.py checks the mechanism on any CPU."""
    base = tmp_path_factory.mktemp("folder-runs")
    strategy = distribute.get_strategy("mirrored")  # two logical CPUs (conftest)
    runs = {}
    for variant in models.VARIANTS:
        config = config_lib.RunConfig(
            config_lib.DataConfig(dataset="folder", data_dir=folder, image_size=SIZE,
                                  skip_bad_images=True, test_fraction=0.25, batch_size=2),
            # The VAE's 2-D code draws its latent figures too.
            config_lib.ModelConfig(variant=variant, latent_dim=2 if variant == "vae" else None),
            config_lib.TrainConfig(model_dir=str(base / variant), epochs=1,
                                   strategy="mirrored"),
        )
        metrics = training.train(config, strategy, verbose=0)
        report = None
        if variant in EXPORTED:
            report = export.export_run(str(base / variant), config_lib.ExportConfig(
                str(base / "exports"), formats=("saved_model",)))
        runs[variant] = (str(base / variant), metrics, report)
    return runs


# Export costs 8 s a variant: one shows a folder run's input described at its
# odd size. Every variant exports in its battery class (the VAE's two codes too).
EXPORTED = ("conv",)


@pytest.mark.slow
def test_every_variant_trains_and_evaluates_from_a_folder(folder_runs, folder):
    test = load_folder(folder).test_images.in_memory() / np.float32(255)
    for variant, (model_dir, metrics, report) in folder_runs.items():
        assert metrics["replicas"] == 2 and metrics["image_shape"] == [*SIZE, 3], variant
        assert (metrics["train_images"], metrics["test_images"]) == (33, 15), variant
        assert metrics["skipped_images"] == 1, variant
        assert_writes_the_variants_outputs(variant, metrics, model_dir)
        model = keras.saving.load_model(os.path.join(model_dir, training.MODEL_FILE))
        recomputed = np.mean((model.predict(test, verbose=0) - test) ** 2)
        np.testing.assert_allclose(metrics["test_mse"], recomputed, rtol=1e-5)
        with open(os.path.join(model_dir, training.CONFIG_FILE)) as f:
            written = json.load(f)["data"]
        assert (written["image_size"], written["channels"]) == ([*SIZE], 3)


@pytest.mark.slow
def test_folder_runs_export_with_their_input_described(folder_runs):
    for variant in EXPORTED:
        report = folder_runs[variant][2]
        assert report["input"]["image_shape"] == [*SIZE, 3]
        served = report["files"]["saved_model"]["signatures"]
        assert served[signatures.BYTES]["inputs"] == {
            "image_bytes": {"dtype": "string", "shape": [-1]}}


def _encoded(pixels, fmt):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.slow
def test_the_bytes_signature_sees_a_file_as_training_did(folder_runs):
    model_dir, _, report = folder_runs["conv"]
    model = keras.saving.load_model(os.path.join(model_dir, training.MODEL_FILE))
    serve = tf.saved_model.load(report["path"]).signatures[signatures.BYTES]
    rng = np.random.default_rng(3)
    small = rng.integers(0, 256, (4, 4, 3)).astype(np.float32)
    pixels = tf.image.resize(small, (33, 26)).numpy().astype(np.uint8)  # not SIZE

    def expected(decoded):  # Pillow's decoding, TensorFlow's bilinear resize
        resized = tf.image.resize(decoded.astype(np.float32), SIZE, method="bilinear")
        x = np.round(np.clip(resized.numpy(), 0, 255))[None] / np.float32(255)
        reconstruction = model.predict(x, verbose=0)
        return reconstruction, np.mean((reconstruction - x) ** 2)

    for fmt, tolerance in (("PNG", 1e-5), ("JPEG", 0.02)):
        encoded = _encoded(pixels, fmt)
        served = serve(image_bytes=tf.constant([encoded, encoded]))
        reconstruction, error = expected(np.asarray(Image.open(io.BytesIO(encoded))))
        np.testing.assert_allclose(served["reconstruction"][1], reconstruction[0],
                                   atol=tolerance, err_msg=fmt)
        assert abs(float(served["reconstruction_error"][0]) - error) <= tolerance, fmt
    # A grey PNG is given the model's three channels, as in training.
    encoded = _encoded(pixels[..., 0], "PNG")
    reconstruction, _ = expected(np.repeat(pixels[..., :1], 3, axis=-1))
    np.testing.assert_allclose(serve(image_bytes=tf.constant([encoded]))["reconstruction"][0],
                               reconstruction[0], atol=1e-5)


@pytest.mark.slow
def test_any_tfds_image_dataset_trains_by_name(tmp_path):
    import tensorflow_datasets as tfds

    data_dir = str(tmp_path / "tfds")
    rng = np.random.default_rng(0)

    def columns(count):
        return {"picture": rng.integers(0, 256, (count, 12, 10, 3), np.uint8),
                "mask": rng.integers(0, 256, (count, 12, 10, 1), np.uint8),
                "label": rng.integers(0, 3, count)}

    Image_, Label = tfds.features.Image, tfds.features.ClassLabel
    store_tfds_dataset(data_dir, "tiny_pictures", {
        "picture": Image_(shape=(12, 10, 3)), "mask": Image_(shape=(12, 10, 1)),
        "label": Label(names=["x", "y", "z"])}, {"train": columns(40), "test": columns(8)})
    store_tfds_dataset(data_dir, "no_pictures", {"value": tfds.features.Tensor(
        shape=(2,), dtype=np.float32)}, {"train": {"value": np.zeros((4, 2), np.float32)}})

    with pytest.raises(data.DataError, match="2 image features among its features: .*"
                                             "name one with --image_key") as error:
        data.load("tiny_pictures", data_dir=data_dir, download=False)
    for feature in ("picture (Image)", "mask (Image)", "label (ClassLabel)"):
        assert feature in str(error.value)
    with pytest.raises(data.DataError, match=r"value \(Tensor\); it has no images"):
        data.load("no_pictures", data_dir=data_dir, download=False)
    with pytest.raises(data.DataError, match="nor a dataset TensorFlow Datasets can find"):
        data.load("not_a_dataset_anywhere", data_dir=data_dir, download=False)

    config = config_lib.RunConfig(
        config_lib.DataConfig(dataset="tiny_pictures", data_dir=data_dir, download=False,
                              image_key="picture", train_split="train[:75%]",
                              test_split="train[75%:]", image_size=(16, 16), batch_size=10),
        config_lib.ModelConfig(variant="conv"),
        config_lib.TrainConfig(model_dir=str(tmp_path / "run"), epochs=1),
    )
    loaded = data.load(config.data)
    assert (len(loaded.train_images), len(loaded.test_images)) == (30, 10)
    assert loaded.class_names == ("x", "y", "z")
    assert loaded.train_images.shape[1:] == (16, 16, 3)
    metrics = training.train(config, distribute.get_strategy("default"), verbose=0)
    assert metrics["image_shape"] == [16, 16, 3] and np.isfinite(metrics["test_mse"])
