"""Training from files too many to hold decoded: `--input=stream`."""

import json
import os
import pathlib
import shutil

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

import keras_ae
from keras_ae import config as config_lib
from keras_ae import data
from keras_ae import distribute
from keras_ae import training
from keras_ae.data import image_files
from keras_ae.data import image_data
from tests.conftest import after_first_epoch
from tests.test_train import run_train

COUNT = 45  # images: in batches of 8, each epoch ends with a partial batch


def write_numbered(root, count, size=(6, 5), start=0):
    """PNG files `00000.png ...` whose pixels all hold the image's number,
    half of them RGB: an image's identity survives decoding and batching."""
    os.makedirs(root, exist_ok=True)
    for i in range(start, start + count):
        pixels = np.full((*size, 3 if i % 2 else 1), i % 256, np.uint8)
        Image.fromarray(pixels.squeeze()).save(os.path.join(root, f"{i:05d}.png"))


@pytest.fixture(scope="module")
def numbered(tmp_path_factory):
    root = tmp_path_factory.mktemp("numbered")
    write_numbered(root / "train", COUNT)
    write_numbered(root / "test", 6, start=COUNT)
    return root


def load(root, **options):
    return data.load("folder", data_dir=str(root / "train"), test_dir=str(root / "test"),
                     **{"channels": 3, "memory_limit": 2**30, **options})


def batches(dataset):
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def test_auto_streams_only_above_the_memory_limit(numbered):
    decoded = COUNT * 6 * 5 * 3
    assert isinstance(load(numbered, input="auto", memory_limit=decoded).train_images, np.ndarray)
    streamed = load(numbered, input="auto", memory_limit=decoded - 1)
    assert isinstance(streamed.train_images, image_files.ImageFiles)
    assert streamed.train_images.shape == (COUNT, 6, 5, 3)
    # The test images stream too, all of them, whatever the limit.
    test = load(numbered, input="stream", memory_limit=3 * 90).test_images
    assert isinstance(test, image_files.ImageFiles)
    np.testing.assert_array_equal(test.in_memory(), load(numbered, input="memory").test_images)


def test_files_answer_the_images_interface_as_the_array_of_their_pixels(numbered):
    files, array = load(numbered, input="stream").train_images, load(numbered).train_images
    assert files.streamed and not array.streamed
    assert isinstance(array, np.ndarray) and files.shape == array.shape
    picked = [44, 0, 7]
    np.testing.assert_array_equal(files.subset(picked).in_memory(), array.subset(picked))
    np.testing.assert_array_equal(files[:4].in_memory(), array[:4])
    chunks = list(files.chunks(8))
    assert [len(c) for c in chunks] == [8] * 5 + [5]
    np.testing.assert_array_equal(np.concatenate(chunks), array)
    np.testing.assert_array_equal(files.sample(10, seed=3), array.sample(10, seed=3))
    assert not np.array_equal(array.sample(10, seed=3), array.sample(10, seed=4))
    floats = np.concatenate(list(files.float_chunks(batch_size=4, budget=1)))
    np.testing.assert_array_equal(floats, array / np.float32(255))
    assert files.steps_per_epoch(8, smallest_batch=2) == array.steps_per_epoch(8, 2) == 6


def test_a_streamed_test_split_evaluates_chunk_by_chunk_as_in_memory(numbered, tmp_path,
                                                                       monkeypatch):
    monkeypatch.setattr(image_data, "CHUNK_BYTES", 1)  # every chunk one batch: 4 + 2 images
    memory, streamed = load(numbered, input="memory"), load(numbered, input="stream")
    assert isinstance(streamed.test_images, image_files.ImageFiles)
    config = training.resolve(config_lib.RunConfig(
        config_lib.DataConfig("folder", data_dir="unused", batch_size=4, eval_noise_stddev=0.3),
        config_lib.ModelConfig("linear"), config_lib.TrainConfig(str(tmp_path))))
    model = keras_ae.build("linear", (6, 5, 3))
    got = training.evaluate(model, streamed, config, str(tmp_path))
    # Independently: the whole split at once, its noise from eval_dataset.
    clean = memory.test_images / np.float32(255)
    noisy = np.concatenate([x.numpy() for x, _ in data.eval_dataset(
        memory.test_images, batch_size=4, noise_stddev=0.3, seed=0)])
    reconstruct = lambda x: model.predict(x, verbose=0)  # noqa: E731
    np.testing.assert_allclose(got["test_mse"], np.mean((reconstruct(clean) - clean) ** 2),
                               rtol=1e-6)
    np.testing.assert_allclose(got["test_psnr_noisy"], training.psnr(clean, noisy), rtol=1e-6)
    np.testing.assert_allclose(got["test_psnr_denoised"],
                               training.psnr(clean, reconstruct(noisy)), rtol=1e-5)


def test_streamed_and_in_memory_batches_are_identical(numbered):
    memory, streamed = load(numbered, input="memory"), load(numbered, input="stream")
    assert isinstance(streamed.train_images, image_files.ImageFiles)
    np.testing.assert_array_equal(streamed.test_images.in_memory(), memory.test_images)
    options = dict(batch_size=8, epochs=2, noise_stddev=0.3, seed=4, smallest_batch=2)
    expected = batches(data.train_dataset(memory.train_images, **options))
    got = batches(data.train_dataset(streamed.train_images, **options))
    assert len(got) == len(expected) == 12
    for (x, y), (x_expected, y_expected) in zip(got, expected):
        np.testing.assert_array_equal(x, x_expected)  # order, pixels and noise
        np.testing.assert_array_equal(y, y_expected)


def test_a_cache_of_decoded_images_feeds_the_same_batches_and_follows_changes(
        numbered, tmp_path):
    root, cache = tmp_path / "copy", str(tmp_path / "cache")
    shutil.copytree(numbered, root)
    with open(root / "train" / "broken.png", "wb") as f:
        f.write(b"\x89PNG truncated")
    options = dict(batch_size=8, epochs=2, noise_stddev=0.3, seed=4, smallest_batch=2)
    with pytest.raises(data.DataError, match="broken.png: not a readable image.*--skip_bad"):
        load(root, input="stream", cache_dir=cache, image_size=(4, 3))
    os.remove(root / "train" / "broken.png")
    plain = load(root, input="stream", image_size=(4, 3))  # resized: more than a decode
    cached = load(root, input="stream", image_size=(4, 3), cache_dir=cache)
    assert cached.train_images.decoded and len(cached.train_images) == COUNT
    assert all(path.startswith(cache) for path in cached.train_images.paths)
    for (x, y), (x_plain, y_plain) in zip(
            batches(data.train_dataset(cached.train_images, **options)),
            batches(data.train_dataset(plain.train_images, **options)), strict=True):
        np.testing.assert_array_equal(x, x_plain)
        np.testing.assert_array_equal(y, y_plain)
    copies = sorted(cached.train_images.paths)
    # Loaded again: the same copies, none written again; another shape: its own.
    written = {path: os.stat(path).st_mtime_ns for path in copies}
    assert sorted(load(root, input="stream", image_size=(4, 3),
                       cache_dir=cache).train_images.paths) == copies
    assert {path: os.stat(path).st_mtime_ns for path in copies} == written
    assert set(load(root, input="stream", cache_dir=cache).train_images.paths).isdisjoint(copies)
    # A file changed since is decoded again.
    write_numbered(root / "train", 1, size=(9, 9), start=7)  # 00007.png, now 9x9 of 7s
    again = load(root, input="stream", image_size=(4, 3), cache_dir=cache).train_images
    assert len(set(again.paths) - set(copies)) == 1
    np.testing.assert_array_equal(again.read([7])[0], np.full((4, 3, 3), 7, np.uint8))


@pytest.mark.parametrize("pipelines, replicas, anomalies, crop",
                         [(1, 2, False, None), (2, 2, False, None), (2, 4, True, (3, 2))])
def test_pipelines_read_disjoint_shares_that_make_up_the_global_batches(
        numbered, pipelines, replicas, anomalies, crop):
    files = load(numbered, input="stream").train_images
    options = dict(batch_size=8, epochs=2, noise_stddev=0.3, masking=0.25, seed=4,
                   smallest_batch=replicas, anomalies=anomalies, crop=crop)
    global_batches = batches(data.train_dataset(files, **options))
    assert crop is None or global_batches[0][0].shape[1:3] == crop
    shares = [batches(data.train_dataset(
        files, input_context=tf.distribute.InputContext(pipelines, pipeline, replicas),
        **options)) for pipeline in range(pipelines)]
    per_pipeline = replicas // pipelines
    for step, (x, y) in enumerate(global_batches):
        pieces = [share[step * per_pipeline + k] for share in shares for k in range(per_pipeline)]
        sizes = [len(piece_y) for _, piece_y in pieces]
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1  # as even as can be
        np.testing.assert_array_equal(np.concatenate([p for p, _ in pieces]), x)
        np.testing.assert_array_equal(np.concatenate([p for _, p in pieces]), y)
    # Every image once per epoch across the pipelines: none read twice.
    steps = data.steps_per_epoch(COUNT, 8, replicas)
    for epoch in range(2):
        ids = np.concatenate([
            np.rint(piece_y[:, 0, 0, 0] * 255) for share in shares
            for _, piece_y in share[epoch * steps * per_pipeline:(epoch + 1) * steps * per_pipeline]
        ])
        used = min(COUNT, steps * 8)
        assert len(ids) == len(set(ids)) == used


def test_a_streamed_file_of_another_size_is_named(numbered, tmp_path):
    shutil.copytree(numbered, tmp_path / "copy")
    write_numbered(tmp_path / "copy" / "train", 1, size=(7, 5), start=COUNT + 100)
    files = load(tmp_path / "copy", input="stream").train_images
    bad = image_files.unreadable(files)
    assert [path for path, _ in bad] == [str(tmp_path / "copy" / "train" / f"{COUNT + 100:05d}.png")]
    assert "--image_size" in bad[0][1]
    # Resized, it reads.
    assert image_files.unreadable(load(tmp_path / "copy", input="stream", image_size=(6, 5))
                                  .train_images) == []


def _run_config(root, model_dir, **data_options):
    return config_lib.RunConfig(
        config_lib.DataConfig("folder", data_dir=str(root / "train"),
                              test_dir=str(root / "test"), input="stream", batch_size=8,
                              **data_options),
        config_lib.ModelConfig("linear"), config_lib.TrainConfig(str(model_dir), epochs=4),
    )


@pytest.mark.parametrize("skip", [False, True])
def test_a_file_damaged_while_training_is_named_or_skipped(numbered, tmp_path, skip):
    root = tmp_path / "copy"
    shutil.copytree(numbered, root)
    damaged = str(root / "train" / "00007.png")
    config = _run_config(root, tmp_path / "run", skip_bad_images=skip)
    strategy = distribute.get_strategy("default")
    callbacks = [after_first_epoch(lambda: pathlib.Path(damaged).write_bytes(b"\x89PNG damaged"))]
    if not skip:
        with pytest.raises(data.DataError, match="(?s)00007.png.*keeps the last good epoch"):
            training.train(config, strategy, verbose=0, callbacks=callbacks)
        backup = json.load(open(tmp_path / "run" / "backup" / "training_metadata.json"))
        assert backup["epoch"] >= 1 and (tmp_path / "run" / "model.keras").exists()
        assert not (tmp_path / "run" / "metrics.json").exists()
        return
    metrics = training.train(config, strategy, verbose=0, callbacks=callbacks)
    assert metrics["skipped_images"] == 1 and metrics["train_images"] == COUNT - 1
    assert metrics["resumed_at_epoch"] >= 1  # from the last good epoch, not afresh


def _peak_memory_mib(*flags):
    """metrics.json's `peak_memory_mib` of a train.py process with `flags`:
    its peak RSS from train() on, past the imports' transient peak."""
    result = run_train(*flags)
    assert result.returncode == 0, result.stderr[-3000:]
    model_dir = next(f.split("=", 1)[1] for f in flags if f.startswith("--model_dir="))
    return json.load(open(os.path.join(model_dir, "metrics.json")))["peak_memory_mib"]


@pytest.mark.slow
def test_data_four_times_the_memory_limit_trains_within_it(tmp_path):
    """A stream's memory is the model's, not the data's: a folder decoding to
    4.5x the limit trains with a peak RSS within the limit of the same
    training (model, batch, steps) on 64 of its images.

    Steps, because the process's memory grows with them (the allocator's
    pools, per-epoch saves), measured here: 64 images for 43 epochs peak
    above 2,752 images for one.
    """
    limit_mib, size, batch = 16, (96, 96), 32
    count = 86 * batch  # 2,752 RGB images, 4.5x the limit decoded
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (count + 8, 4, 4, 3)).astype(np.float32)
    pictures = tf.image.resize(small, size).numpy().astype(np.uint8)  # quick to write
    for folder, first, last in (("all", 0, count), ("few", 0, 64), ("test", count, count + 8)):
        os.makedirs(tmp_path / folder)
        for i in range(first, last):
            Image.fromarray(pictures[i]).save(tmp_path / folder / f"{i:05d}.png")
    common = ["--variant=linear", "--dataset=folder", f"--test_dir={tmp_path / 'test'}",
              f"--batch_size={batch}", f"--memory_limit_mib={limit_mib}"]
    reference = _peak_memory_mib(*common, f"--data_dir={tmp_path / 'few'}", "--input=stream",
                                 "--epochs=43", f"--model_dir={tmp_path / 'few-run'}")
    streamed = _peak_memory_mib(*common, f"--data_dir={tmp_path / 'all'}", "--epochs=1",
                                f"--model_dir={tmp_path / 'run'}")
    metrics = json.load(open(tmp_path / "run" / "metrics.json"))
    assert metrics["input"] == "stream" and metrics["train_images"] == count  # chosen by auto
    print(f"peak RSS of the runs: {streamed:.0f} MiB streaming {count} images "
          f"({count * size[0] * size[1] * 3 / 2**20:.0f} MiB decoded), {reference:.0f} MiB "
          f"on 64 of them; limit {limit_mib} MiB")
    assert streamed - reference < limit_mib


def test_files_are_read_through_tensorflows_file_systems():
    # ram:// stands in for gs:// here: a path tf.io reads but the os cannot.
    pixels = np.arange(2 * 5 * 4, dtype=np.uint8).reshape(2, 5, 4, 1)
    paths = []
    for i, image in enumerate(pixels):
        encoded = tf.io.encode_png(image).numpy()
        paths.append(f"ram://keras-ae-test/{i}.png")
        with tf.io.gfile.GFile(paths[-1], "wb") as f:
            f.write(encoded)
    files = image_files.ImageFiles(tuple(paths), (5, 4, 1))
    np.testing.assert_array_equal(files.read([1, 0]), pixels[::-1])


def test_stream_is_for_folders_and_tfds_and_a_limit_is_positive():
    with pytest.raises(config_lib.ConfigError, match="input: stream reads a folder's image "
                                                     "files or a TFDS dataset's record files"):
        config_lib.DataConfig("fashion_mnist", input="stream")
    config_lib.DataConfig("celeb_a", input="stream")  # any other name is TFDS's
    with pytest.raises(config_lib.ConfigError, match="cache_dir: applies to --dataset=folder"):
        config_lib.DataConfig("celeb_a", cache_dir="cache")
    with pytest.raises(config_lib.ConfigError, match="memory_limit_mib"):
        config_lib.DataConfig("folder", data_dir="x", memory_limit_mib=0)
    with pytest.raises(config_lib.ConfigError, match="input: unknown value .disk."):
        config_lib.DataConfig("folder", data_dir="x", input="disk")
