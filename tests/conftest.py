"""Test session set-up: two logical CPU devices, and small IDX datasets."""

import gzip
import os
import struct

import numpy as np
import pytest

from keras_ae import commands  # noqa: E402,F401  first: TensorFlow's environment, as train.py's

from keras_ae import distribute  # noqa: E402

# Before TensorFlow initializes its devices: lets MirroredStrategy run two real
# replicas on this CPU-only machine.
distribute.split_cpu(2)

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "slow: starts processes (train.py, export, workers, a fresh SavedModel loader), "
        "converts to TFLite, trains on real data or for many steps to show an effect; "
        "CI runs it, the fast tier (-m 'not slow') leaves it out",
    )
    # pytest-xdist (since 3.5) sorts `--dist loadfile`'s files by their count
    # of tests unless told not to (since 3.8), which ran test_multi_worker.py
    # (3 tests, a minute) last: keep LONGEST_FIRST's order instead.
    if getattr(config.option, "loadscopereorder", None):
        config.option.loadscopereorder = False


# The files that take longest, longest first (per-file seconds summed from
# `--durations=0`, BUILD.md "Tests"): pytest-xdist's `--dist loadfile` hands out
# files in this order, so no long one is started last while the other worker
# idles (`pytest_configure` keeps xdist from reordering them).
LONGEST_FIRST = ("test_train.py", "test_draem.py", "test_export.py", "test_restoration.py",
                 "test_multi_worker.py", "test_anomaly.py", "test_images.py", "test_masks.py",
                 "test_linear.py", "test_stream.py", "test_sparse.py", "test_contractive.py",
                 "test_denoising.py", "test_vae.py", "test_conv.py")


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file's tests stay in order


def write_idx(path, array):
    """Writes a uint8 array as a gzipped IDX file (the MNIST format)."""
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


def make_images(count, seed, height=28, width=28):
    """Blurry blobs: structured enough for an autoencoder to learn quickly."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    size = min(height, width)
    centres = rng.uniform(size / 4, 3 * size / 4, size=(count, 2, 1, 1))
    radius = rng.uniform(size / 9, size / 4, size=(count, 1, 1))
    dist2 = (y - centres[:, 0]) ** 2 + (x - centres[:, 1]) ** 2
    return (255 * np.exp(-dist2 / (2 * radius**2))).astype(np.uint8)


def write_idx_dataset(directory, train=256, test=64):
    """An MNIST-format dataset: the four IDX .gz files in `directory`."""
    os.makedirs(directory, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte.gz": make_images(train, seed=1),
        "train-labels-idx1-ubyte.gz": np.arange(train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte.gz": make_images(test, seed=2),
        "t10k-labels-idx1-ubyte.gz": np.arange(test, dtype=np.uint8) % 10,
    }
    for name, array in arrays.items():
        write_idx(os.path.join(directory, name), array)
    return arrays


def store_tfds_dataset(data_dir, name, features, splits, shards=None):
    """A TFDS dataset `name` in `data_dir`, prepared from `{split: columns}`."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    tfds.dataset_builders.store_as_tfds_dataset(
        name=name, version="1.0.0", data_dir=data_dir,
        features=tfds.features.FeaturesDict(features),
        split_datasets={split: tf.data.Dataset.from_tensor_slices(columns)
                        for split, columns in splits.items()},
        download_config=tfds.download.DownloadConfig(num_shards=shards),
    )


def after_first_epoch(action):
    """A Keras callback that calls `action()` once, when the first epoch ends."""
    import keras

    return keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: action() if epoch == 0 else None)


@pytest.fixture(scope="session")
def tiny_mnist_dir(tmp_path_factory):
    """A directory holding a small synthetic dataset in MNIST's IDX format."""
    directory = str(tmp_path_factory.mktemp("tiny-mnist"))
    write_idx_dataset(directory)
    return directory


@pytest.fixture(scope="module")
def fresh_process_runs(request, tmp_path_factory):
    """The battery's fresh-process SavedModel checks (tests/test_case.py) of
    every class of this test file that runs one, in one process (one file's
    tests share a pytest-xdist worker: `--dist loadfile`)."""
    from tests.test_case import run_all_fresh

    classes = list(dict.fromkeys(
        item.cls for item in request.session.items
        if item.module is request.module
        and item.originalname == "test_saved_model_in_a_fresh_process_matches_keras"
    ))
    return run_all_fresh(classes, tmp_path_factory)
