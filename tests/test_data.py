"""Dataset sources and the tf.data pipeline."""

import gzip
import os
import pathlib
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from keras_ae import data
from tests.conftest import write_idx, write_idx_dataset


# --- Reading files ----------------------------------------------------------


def test_read_idx_round_trips(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a.gz"), array)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "truncated or corrupt"),
        (b"\x12\x34\x56\x78", "magic number 12345678"),
        (b"", "magic number missing"),
        (b"\x00\x00\x08\x03\x00", "truncated header"),
    ],
)
def test_read_idx_rejects_bad_content(tmp_path, content, message):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as f:
        f.write(content)
    with pytest.raises(data.DataError, match=message) as error:
        data.read_idx(path)
    assert str(path) in str(error.value)


def test_read_idx_rejects_a_file_that_is_not_gzip(tmp_path):
    path = tmp_path / "plain.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(data.DataError, match="not a readable gzip file"):
        data.read_idx(path)


def test_load_reads_local_idx_files_with_channel_axis(tiny_mnist_dir):
    loaded = data.load("mnist", data_dir=tiny_mnist_dir, download=False)
    assert loaded.train_images.shape == (256, 28, 28, 1)
    assert loaded.test_images.shape == (64, 28, 28, 1)
    assert loaded.train_images.dtype == np.uint8
    assert tiny_mnist_dir in loaded.source


def test_data_dir_comes_before_the_environment_variable(tmp_path, monkeypatch):
    first = write_idx_dataset(tmp_path / "first", train=10, test=5)
    write_idx_dataset(tmp_path / "second", train=20, test=5)
    monkeypatch.setenv("KERAS_AE_DATA_DIR", str(tmp_path / "second"))
    loaded = data.load("kmnist", data_dir=str(tmp_path / "first"), download=False)
    np.testing.assert_array_equal(
        loaded.train_images[..., 0], first["train-images-idx3-ubyte.gz"]
    )
    # Without --data_dir the environment variable's copy, in its named subfolder.
    write_idx_dataset(tmp_path / "root" / "kmnist", train=7, test=5)
    monkeypatch.setenv("KERAS_AE_DATA_DIR", str(tmp_path / "root"))
    assert len(data.load("kmnist", download=False).train_images) == 7


def test_load_reads_npz_without_pickle(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "y_train": np.zeros(12, np.uint8),
        "x_test": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "y_test": np.zeros(4, np.uint8),
    }
    np.savez(tmp_path / "kmnist.npz", **arrays)
    loaded = data.load("kmnist", data_dir=str(tmp_path), download=False)
    np.testing.assert_array_equal(loaded.test_images[..., 0], arrays["x_test"])


def test_load_reads_cifar_binary_batches_as_hwc(tmp_path):
    batches = tmp_path / "cifar-10-batches-bin"
    batches.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        record = np.zeros(3073, np.uint8)
        record[0] = 7  # label
        record[1:1025], record[1025:2049], record[2049:] = 10, 20, 30  # R, G, B planes
        np.tile(record, 2).tofile(batches / f"{name}.bin")
    loaded = data.load("cifar10", data_dir=str(tmp_path), download=False)
    assert loaded.train_images.shape == (10, 32, 32, 3)
    np.testing.assert_array_equal(loaded.test_images[0, 5, 9], [10, 20, 30])
    assert set(loaded.train_labels) == {7}


def test_missing_dataset_says_where_it_looked_and_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no Keras cache
    monkeypatch.delenv("KERAS_AE_DATA_DIR", raising=False)
    with pytest.raises(data.DataError) as error:
        data.load("kmnist", data_dir=str(tmp_path / "nowhere"), download=False)
    message = str(error.value)
    assert str(tmp_path / "nowhere") in message
    assert "/usr/share/datasets/kmnist" in message
    assert "--data_dir" in message


def test_a_corrupt_local_copy_is_an_error_not_a_fallback(tmp_path):
    write_idx_dataset(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"garbage")
    with pytest.raises(data.DataError, match="t10k-images-idx3-ubyte.gz"):
        data.load("mnist", data_dir=str(tmp_path), download=True)


@pytest.mark.parametrize(
    "name, array, message",
    [
        ("train-labels-idx1-ubyte.gz", np.zeros(9, np.uint8),
         "train-images-idx3-ubyte.gz has 10 images but .*train-labels-idx1-ubyte.gz has 9 labels"),
        ("train-images-idx3-ubyte.gz", np.zeros((10, 27, 28), np.uint8),
         r"train-images-idx3-ubyte.gz: images of shape \(27, 28\), but mnist images are \(28, 28\)"),
        ("t10k-images-idx3-ubyte.gz", np.zeros((5, 784), np.uint8),
         r"t10k-images-idx3-ubyte.gz: images of shape \(784,\)"),
        ("t10k-labels-idx1-ubyte.gz", np.zeros((5, 2), np.uint8),
         "t10k-labels-idx1-ubyte.gz: 2-dimensional, but labels are a list"),
    ],
)
def test_idx_files_must_agree_with_each_other_and_the_dataset(tmp_path, name, array, message):
    write_idx_dataset(tmp_path, train=10, test=5)
    write_idx(tmp_path / name, array)
    with pytest.raises(data.DataError, match=message):
        data.load("mnist", data_dir=str(tmp_path), download=False)


def test_a_missing_idx_file_is_named_not_skipped(tmp_path):
    write_idx_dataset(tmp_path, train=10, test=5)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(data.DataError, match="has 3 of the 4 IDX files of mnist but lacks "
                       "t10k-labels-idx1-ubyte.gz"):
        data.load("mnist", data_dir=str(tmp_path), download=True)


def _write_npz(directory, **changes):
    arrays = {
        "x_train": np.zeros((6, 28, 28), np.uint8), "y_train": np.zeros(6, np.uint8),
        "x_test": np.zeros((2, 28, 28), np.uint8), "y_test": np.zeros(2, np.uint8),
    }
    arrays.update(changes)
    np.savez(directory / "mnist.npz", **{k: v for k, v in arrays.items() if v is not None})


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"x_test": np.full((2, 28, 28), np.nan, np.float32)}, "test split .* NaN or infinite"),
        ({"x_train": np.full((6, 28, 28), np.inf, np.float32)}, "train split .* NaN or infinite"),
        ({"x_train": np.full((6, 28, 28), 2.0, np.float32)}, "float pixels outside \\[0, 1\\]"),
        ({"x_train": np.full((6, 28, 28), 256, np.int32)}, "integer pixels outside 0..255"),
        ({"x_train": np.zeros((0, 28, 28), np.uint8), "y_train": np.zeros(0, np.uint8)},
         "train split .* no images"),
        ({"y_test": np.zeros(3, np.uint8)}, "2 images but labels of shape \\(3,\\)"),
        ({"x_test": np.zeros((2, 28, 28), np.complex64)}, "pixel dtype complex64"),
        ({"y_test": None}, "lacks array\\(s\\) y_test"),
        ({"x_test": np.array([None, 1], dtype=object)}, "not a readable .npz file"),
    ],
)
def test_bad_npz_content_is_named(tmp_path, changes, message):
    _write_npz(tmp_path, **changes)
    with pytest.raises(data.DataError, match=message) as error:
        data.load("mnist", data_dir=str(tmp_path), download=False)
    assert str(tmp_path / "mnist.npz") in str(error.value)


def test_npz_integer_pixels_in_range_are_taken_as_bytes(tmp_path):
    _write_npz(tmp_path, x_train=np.full((6, 28, 28), 255, np.int64))
    loaded = data.load("mnist", data_dir=str(tmp_path), download=False)
    assert loaded.train_images.dtype == np.uint8 and loaded.train_images.max() == 255


def test_a_lone_npy_array_is_not_an_npz(tmp_path):
    np.save(tmp_path / "array.npy", np.zeros(3))
    (tmp_path / "array.npy").rename(tmp_path / "mnist.npz")
    with pytest.raises(data.DataError, match="a single .npy array, not an .npz archive"):
        data.load("mnist", data_dir=str(tmp_path), download=False)


# --- Random and damaged files: a correct load or a DataError, nothing else ---


def _small_files():
    """The bytes of a tiny valid copy of mnist in each local format, by file name."""
    with tempfile.TemporaryDirectory() as name:
        directory = pathlib.Path(name)
        write_idx_dataset(directory, train=3, test=2)
        _write_npz(directory)
        return {p.name: p.read_bytes() for p in directory.iterdir()}


_VALID = _small_files()
_CIFAR_RECORD = bytes(range(256)) * 12 + b"\x01"  # 3073 bytes: one CIFAR-10 record


def _damaged(valid):
    """Bytes derived from `valid`: some bytes replaced, then cut short or extended."""
    return st.tuples(
        st.lists(st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)), max_size=6),
        st.integers(0, len(valid)),
        st.binary(max_size=16),
    ).map(lambda t: _apply(valid, *t))


def _apply(valid, replacements, length, tail):
    damaged = bytearray(valid)
    for position, value in replacements:
        damaged[position] = value
    return bytes(damaged[:length]) + (tail if length == len(valid) else b"")


def _gzipped_damage(valid):
    """Valid gzip around damaged IDX content: reaches the IDX parser itself."""
    return _damaged(gzip.decompress(valid)).map(gzip.compress)


def _load_or_data_error(name, files):
    with tempfile.TemporaryDirectory() as directory:
        for path, content in files.items():
            os.makedirs(os.path.dirname(os.path.join(directory, path)), exist_ok=True)
            with open(os.path.join(directory, path), "wb") as f:
                f.write(content)
        try:
            loaded = data.load(name, data_dir=directory, download=False)
        except data.DataError as e:
            assert directory in str(e), str(e)  # names the file
            return
    assert loaded.train_images.dtype in (np.uint8, np.float32)
    assert loaded.train_images.shape[1:] == data.DATASETS[name].image_shape


_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
_IDX_FILE = "t10k-images-idx3-ubyte.gz"


@_FUZZ
@given(content=st.one_of(st.binary(max_size=64), _damaged(_VALID[_IDX_FILE]),
                         _gzipped_damage(_VALID[_IDX_FILE])))
def test_any_idx_file_loads_or_raises_data_error(content):
    idx = {name: v for name, v in _VALID.items() if name.endswith(".gz")}
    _load_or_data_error("mnist", {**idx, _IDX_FILE: content})


@_FUZZ
@given(content=st.one_of(st.binary(max_size=64), _damaged(_VALID["mnist.npz"])))
def test_any_npz_file_loads_or_raises_data_error(content):
    _load_or_data_error("mnist", {"mnist.npz": content})


@_FUZZ
@given(content=st.one_of(st.binary(max_size=7000), _damaged(_CIFAR_RECORD * 2)))
def test_any_cifar_batch_loads_or_raises_data_error(content):
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    files = {f"cifar-10-batches-bin/{n}": _CIFAR_RECORD for n in names}
    _load_or_data_error("cifar10", {**files, "cifar-10-batches-bin/test_batch.bin": content})


def test_train_examples_keeps_the_first_n(tiny_mnist_dir):
    full = data.load("mnist", data_dir=tiny_mnist_dir, download=False)
    part = data.load("mnist", data_dir=tiny_mnist_dir, train_examples=10, download=False)
    np.testing.assert_array_equal(part.train_images, full.train_images[:10])
    with pytest.raises(data.DataError, match="only 256 training examples"):
        data.load("mnist", data_dir=tiny_mnist_dir, train_examples=1000, download=False)


# --- The pipeline -------------------------------------------------------------


def _numbered_images(count):
    """Image i is filled with the value i: its identity survives batching."""
    return np.repeat(np.arange(count, dtype=np.uint8), 4).reshape(count, 2, 2, 1)


def _epochs(dataset, steps):
    """Materializes a stream as a list of epochs, each a list of (x, y) arrays."""
    batches = [(x.numpy(), y.numpy()) for x, y in dataset]
    return [batches[i : i + steps] for i in range(0, len(batches), steps)]


def _ids(epoch):
    """Image identities in a clean epoch, in order."""
    return np.concatenate([np.rint(y[:, 0, 0, 0] * 255) for _, y in epoch]).astype(int)


def test_each_epoch_is_a_fresh_permutation_in_global_batches():
    images = _numbered_images(50)
    stream = data.train_dataset(images, batch_size=16, epochs=3, seed=1)
    epochs = _epochs(stream, data.steps_per_epoch(50, 16))
    assert len(epochs) == 3
    assert [len(x) for x, _ in epochs[0]] == [16, 16, 16, 2]
    orders = [_ids(e) for e in epochs]
    for order in orders:
        assert sorted(order) == list(range(50))
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[0], np.arange(50))
    x, y = epochs[0][0]
    assert x.dtype == np.float32 and x.shape == (16, 2, 2, 1)
    np.testing.assert_array_equal(x, y)  # no noise: (x, x)


def test_same_seed_same_stream_other_seed_other_stream():
    images = _numbered_images(40)

    def stream(seed):
        ds = data.train_dataset(images, batch_size=8, epochs=2, noise_stddev=0.3, seed=seed)
        return np.concatenate([x.numpy() for x, _ in ds])

    np.testing.assert_array_equal(stream(5), stream(5))
    assert not np.allclose(stream(5), stream(6))


def test_noise_is_clipped_gaussian_with_the_given_stddev():
    images = np.full((400, 8, 8, 1), 0.5, np.float32)
    noisy, clean = next(iter(data.train_dataset(
        images, batch_size=400, epochs=1, noise_stddev=0.1, seed=0
    )))
    residual = noisy.numpy() - clean.numpy()
    np.testing.assert_array_equal(clean.numpy(), images)
    # 0.5 ± 5 sigma never clips, so the residual is the noise itself.
    assert abs(residual.mean()) < 0.003
    assert abs(residual.std() - 0.1) < 0.003
    heavy, _ = next(iter(data.train_dataset(
        images, batch_size=400, epochs=1, noise_stddev=2.0, seed=0
    )))
    assert heavy.numpy().min() == 0.0 and heavy.numpy().max() == 1.0


def test_masking_noise_hides_the_share_in_squares_and_is_fresh_every_epoch():
    images = np.full((64, 28, 28, 1), 0.5, np.float32)
    stream = data.train_dataset(images, batch_size=64, epochs=30, masking=0.25, seed=0)
    sides, hidden = set(), []
    for masked, clean in stream:
        np.testing.assert_array_equal(clean.numpy(), images)  # the targets: clean
        visible = masked.numpy()[..., 0] == 0.5
        assert np.all(masked.numpy()[..., 0][~visible] == 0)
        hidden.append(1 - visible.mean())
        # The hidden pixels make squares of one side, on its grid (the last
        # ones clipped by the border): each square is all hidden or all shown.
        side = next(s for s in (7, 4, 2)  # the largest: a 4 px grid is a 2 px one too
                    if np.array_equal(visible, np.repeat(np.repeat(
                        visible[:, ::s, ::s], s, axis=1), s, axis=2)[:, :28, :28]))
        sides.add(side)
    assert sides == {2, 4, 7}  # each batch draws one of the three
    assert abs(np.mean(hidden) - 0.25) < 0.01
    first, second = _epochs(data.train_dataset(
        images, batch_size=64, epochs=2, masking=0.25, seed=3), 1)
    assert not np.array_equal(first[0][0], second[0][0])


def test_noise_is_fresh_every_epoch():
    images = _numbered_images(24)
    epochs = _epochs(
        data.train_dataset(images, batch_size=8, epochs=2, noise_stddev=0.2, seed=3), 3
    )

    def noisy_by_id(epoch):
        return {i: x for batch_x, batch_y in epoch
                for i, x in zip(np.rint(batch_y[:, 0, 0, 0] * 255).astype(int), batch_x)}

    first, second = noisy_by_id(epochs[0]), noisy_by_id(epochs[1])
    for i in range(24):
        assert not np.allclose(first[i], second[i]), f"image {i} got the same noise twice"


def test_a_resumed_stream_continues_exactly():
    images = _numbered_images(30)
    kwargs = dict(batch_size=10, epochs=4, noise_stddev=0.2, masking=0.25, seed=9)
    full = [x.numpy() for x, _ in data.train_dataset(images, **kwargs)]
    resumed = [x.numpy() for x, _ in data.train_dataset(images, first_epoch=2, **kwargs)]
    assert len(resumed) == 6
    for a, b in zip(full[6:], resumed):
        np.testing.assert_array_equal(a, b)


def test_smallest_batch_of_a_full_batch_gives_static_batches():
    stream = data.train_dataset(
        _numbered_images(50), batch_size=16, epochs=1, smallest_batch=16
    )
    assert stream.element_spec[0].shape.as_list() == [16, 2, 2, 1]
    assert len(list(stream)) == data.steps_per_epoch(50, 16, smallest_batch=16) == 3


@pytest.mark.parametrize("smallest_batch, last_batch", [(1, 2), (2, 2), (3, None)])
def test_a_last_batch_smaller_than_smallest_batch_is_dropped(smallest_batch, last_batch):
    # 50 images in batches of 16: the last batch holds 2.
    images = _numbered_images(50)
    kwargs = dict(batch_size=16, epochs=2, seed=3)
    full = [x.numpy() for x, _ in data.train_dataset(images, **kwargs)]
    kept = [x.numpy() for x, _ in data.train_dataset(images, smallest_batch=smallest_batch, **kwargs)]
    steps = data.steps_per_epoch(50, 16, smallest_batch)
    assert [len(x) for x in kept[:steps]] == [16, 16, 16] + ([last_batch] if last_batch else [])
    # The batches kept are those of the same seed without dropping.
    for epoch in range(2):
        for a, b in zip(full[epoch * 4 : epoch * 4 + steps], kept[epoch * steps : (epoch + 1) * steps]):
            np.testing.assert_array_equal(a, b)


def test_eval_dataset_keeps_order_and_converts_to_unit_range():
    images = _numbered_images(20)
    ids = _ids(list(data.eval_dataset(images, batch_size=8)))
    np.testing.assert_array_equal(ids, np.arange(20))
    x, _ = next(iter(data.eval_dataset(images, batch_size=20)))
    np.testing.assert_allclose(x.numpy(), images / 255.0, rtol=1e-6)
