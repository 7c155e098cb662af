"""Streaming a TensorFlow Datasets split from its own record files
(`keras_ae.data.tfds_records`), on a dataset TFDS builds here from local arrays."""

import json
import os
import shutil
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ae import config as config_lib
from keras_ae import data
from keras_ae import distribute
from keras_ae.data import tfds_records
from keras_ae.export import checks
from keras_ae import training
from tests.conftest import after_first_epoch
from tests.conftest import store_tfds_dataset

NAME, TRAIN, TEST, SHARDS = "numbered_pictures", 203, 21, 4


def numbered(count, first=0):
    """8x6 grey images whose first two pixels spell their number (random
    elsewhere): an image's identity survives decoding, shuffling and noise."""
    pixels = np.random.default_rng(first).integers(0, 256, (count, 8, 6, 1), np.uint8)
    numbers = np.arange(first, first + count)
    pixels[:, 0, 0, 0], pixels[:, 0, 1, 0] = numbers // 256, numbers % 256
    return {"image": pixels, "label": numbers % 3}


def numbers_of(batch):
    """The numbers of a float batch of `numbered` images."""
    pixels = np.round(np.asarray(batch)[:, 0, :2, 0] * 255).astype(int)
    return pixels[:, 0] * 256 + pixels[:, 1]


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    import tensorflow_datasets as tfds

    directory = str(tmp_path_factory.mktemp("tfds"))
    store_tfds_dataset(directory, NAME, {
        "image": tfds.features.Image(shape=(8, 6, 1)),
        "label": tfds.features.ClassLabel(num_classes=3),
    }, {"train": numbered(TRAIN), "test": numbered(TEST, first=TRAIN)}, shards=SHARDS)
    return directory


def load(tfds_dir, **options):
    return data.load(NAME, data_dir=tfds_dir, download=False,
                     **{"input": "stream", "memory_limit": 2**30, **options})


def test_auto_streams_above_the_limit_and_decodes_as_in_memory(tfds_dir):
    decoded = TRAIN * 8 * 6
    memory = load(tfds_dir, input="auto", memory_limit=decoded)
    streamed = load(tfds_dir, input="auto", memory_limit=decoded - 1)
    assert isinstance(memory.train_images, np.ndarray)
    records = streamed.train_images
    assert isinstance(records, tfds_records.TfdsRecords) and records.shape == (TRAIN, 8, 6, 1)
    # Pixel for pixel TFDS's own decoding (each in its own order).
    by_number = lambda images: images[np.argsort(numbers_of(images / 255))]  # noqa: E731
    np.testing.assert_array_equal(by_number(records.read()), by_number(memory.train_images))
    first = records[:5].read()
    assert len(first) == 5 and set(numbers_of(first / 255)) < set(range(TRAIN))
    # The test records stream too, all of them whatever the limit, read in
    # their files' order, each with its own label.
    tiny = load(tfds_dir, input="stream", memory_limit=8 * 48)
    assert isinstance(tiny.test_images, tfds_records.TfdsRecords)
    by_number = np.argsort(numbers_of(memory.test_images / 255))
    streamed_order = np.argsort(numbers_of(tiny.test_images.in_memory() / 255))
    np.testing.assert_array_equal(tiny.test_images.in_memory()[streamed_order],
                                  memory.test_images[by_number])
    np.testing.assert_array_equal(tiny.test_labels[streamed_order],
                                  memory.test_labels[by_number])
    assert len(load(tfds_dir, train_examples=50).train_images) == 50
    # The rest of the Images interface: records are read in order only.
    chunks = list(records.chunks(50))
    assert [len(c) for c in chunks] == [50] * 4 + [3]
    np.testing.assert_array_equal(np.concatenate(chunks), records.read())
    np.testing.assert_array_equal(records.sample(5, seed=1), first)
    np.testing.assert_array_equal(records.subset(range(5)).in_memory(), first)
    with pytest.raises(TypeError, match="can only be read from the first"):
        records.subset([1, 0])
    # Past the first few, a batch within a budget at a time, as the export
    # counts a quantized detector's decisions (`checks.Decisions`).
    with mock.patch.object(checks, "IMAGE_BUDGET", 8 * 6 * 4 * 7):
        after = list(checks.batches_after(records, 5, 50))
    assert [len(batch) for batch in after] == [2] + [7] * 6 + [1]  # chunks of 7 from the first
    np.testing.assert_allclose(np.concatenate(after), records[:50].read()[5:] / 255, atol=1e-7)


def test_workers_read_disjoint_equal_shares_and_a_resumed_epoch_repeats(tfds_dir):
    records = load(tfds_dir).train_images
    epochs, batch_size = 3, 8

    def pipeline(index, first_epoch=0, seed=5):
        # Two workers of two replicas each: every element a replica's 2 images.
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=index,
                                             num_replicas_in_sync=4)
        return [(x.numpy(), y.numpy()) for x, y in data.train_dataset(
            records, batch_size=batch_size, epochs=epochs, noise_stddev=0.2, seed=seed,
            first_epoch=first_epoch, input_context=context)]

    steps = records.steps_per_epoch(batch_size, pipelines=2)
    assert steps == (TRAIN // 2) // 4 == 25
    shares = [pipeline(0), pipeline(1)]
    per_epoch = 2 * steps  # two replicas' elements a step
    seen = []
    for share in shares:
        assert len(share) == epochs * per_epoch
        assert {x.shape for x, _ in share} == {(2, 8, 6, 1)}
        seen.append([np.concatenate([numbers_of(y) for _, y in share[e * per_epoch:][
            :per_epoch]]) for e in range(epochs)])
        assert not np.array_equal(seen[-1][0], seen[-1][1])  # each epoch its own order
    for epoch in range(epochs):
        both = np.concatenate([seen[0][epoch], seen[1][epoch]])
        assert len(set(both)) == len(both) == steps * batch_size  # each image at most once
        # The shares are the split's halves, read whole but for one image each.
        assert set(seen[0][epoch]) | set(seen[1][epoch]) <= set(range(TRAIN))
    # Each worker keeps its own share, epoch after epoch.
    assert set(np.concatenate(seen[0])).isdisjoint(np.concatenate(seen[1]))
    for x, y in shares[0]:
        assert 0 < np.abs(x - y).mean() and np.all((0 <= x) & (x <= 1))  # noisy, clipped
    # Resuming at epoch 1 gives the batches and noise an uninterrupted run saw.
    resumed = pipeline(0, first_epoch=1)
    for (x, y), (x0, y0) in zip(resumed, shares[0][per_epoch:], strict=True):
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(y, y0)
    # Another seed, another order.
    assert not np.array_equal(numbers_of(pipeline(0, seed=6)[0][1]), numbers_of(shares[0][0][1]))


def _run_config(tfds_dir, model_dir, **anomaly_options):
    return config_lib.RunConfig(
        config_lib.DataConfig(NAME, data_dir=tfds_dir, download=False, input="stream",
                              batch_size=8),
        config_lib.ModelConfig(variant="linear"),
        config_lib.TrainConfig(model_dir=str(model_dir), epochs=3, strategy="mirrored"),
        config_lib.AnomalyConfig(**anomaly_options),
    )


def test_a_tfds_stream_trains_on_two_replicas_and_a_lost_file_is_named(tfds_dir, tmp_path):
    strategy = distribute.get_strategy("mirrored")
    metrics = training.train(_run_config(tfds_dir, tmp_path / "run"), strategy, verbose=0)
    assert (metrics["input"], metrics["replicas"], metrics["train_images"]) == (
        "stream", 2, TRAIN)
    history = json.load(open(tmp_path / "run" / "metrics.json"))
    assert history["test_mse"] == metrics["test_mse"]
    model = keras.saving.load_model(tmp_path / "run" / training.MODEL_FILE)
    test = load(tfds_dir).test_images.in_memory() / np.float32(255)
    np.testing.assert_allclose(
        metrics["test_mse"], np.mean((model.predict(test, verbose=0) - test) ** 2), rtol=1e-5)

    with pytest.raises(config_lib.ConfigError, match="normal_classes: needs the training "
                                                     "labels.*--input=memory"):
        training.train(_run_config(tfds_dir, tmp_path / "anomaly", normal_classes=("1",)),
                       strategy, verbose=0)

    # A record file that disappears while training: named, last good epoch kept.
    copy = tmp_path / "copy"
    shutil.copytree(tfds_dir, copy)
    shards = sorted(str(p) for p in copy.glob(f"{NAME}/1.0.0/*train.tfrecord*"))
    assert len(shards) == SHARDS
    with pytest.raises(data.DataError, match=r"(?s)tfrecord.*keeps the last good epoch"):
        training.train(_run_config(str(copy), tmp_path / "lost"), strategy, verbose=0,
                       callbacks=[after_first_epoch(lambda: os.remove(shards[0]))])
    backup = json.load(open(tmp_path / "lost" / "backup" / "training_metadata.json"))
    assert backup["epoch"] >= 1


def test_a_stream_of_images_of_many_sizes_needs_a_size(tmp_path):
    import tensorflow_datasets as tfds

    store_tfds_dataset(str(tmp_path), "sized_pictures", {
        "image": tfds.features.Image(shape=(None, None, 3))}, {
        "train": {"image": np.zeros((4, 5, 7, 3), np.uint8)},
        "test": {"image": np.zeros((2, 5, 7, 3), np.uint8)}})
    options = {"data_dir": str(tmp_path), "download": False, "memory_limit": 2**30}
    with pytest.raises(data.DataError, match=r"no one size \(None, None, 3\).*--image_size"):
        data.load("sized_pictures", input="stream", **options)
    resized = data.load("sized_pictures", input="stream", image_size=(4, 4), **options)
    assert resized.train_images.shape == (4, 4, 4, 3) and resized.test_images.shape == (2, 4, 4, 3)
    assert resized.train_images.read().shape == (4, 4, 4, 3)
    # auto cannot tell their decoded size: into memory, as before.
    assert isinstance(data.load("sized_pictures", input="auto", **options).train_images,
                      np.ndarray)
