"""The built-in data sets, read from a local copy, else TensorFlow Datasets.

`read` finds one of `DATASETS` locally (original IDX `.gz` files, a
Keras-style `.npz`, CIFAR's binary batches; see `local_dirs` for where) and
falls back to TensorFlow Datasets, which downloads it if allowed. A local copy
that exists but cannot be read is an error, never silently replaced.
"""

import dataclasses
import gzip
import math
import os
import struct
import zlib

import numpy as np

from keras_ae import choices
from keras_ae.data import decoding
from keras_ae.data.image_data import DataError
from keras_ae.data.image_data import ImageData


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What is known about one named dataset."""

    name: str
    image_shape: tuple
    tfds_name: str
    formats: tuple  # local readers to try, in order: "idx", "npz", "cifar_bin"

    @property
    def dashed_name(self):
        return self.name.replace("_", "-")


DATASETS = {
    spec.name: spec
    for spec in [
        DatasetSpec("mnist", (28, 28, 1), "mnist", ("idx", "npz")),
        DatasetSpec("fashion_mnist", (28, 28, 1), "fashion_mnist", ("idx", "npz")),
        DatasetSpec("kmnist", (28, 28, 1), "kmnist", ("idx", "npz")),
        DatasetSpec("cifar10", (32, 32, 3), "cifar10", ("cifar_bin", "npz")),
    ]
}
assert tuple(DATASETS) == choices.BUILT_IN_DATASETS


def local_dirs(name, data_dir=None):
    """The directories searched for a local copy of `name`, in order."""
    dashed = DATASETS[name].dashed_name
    roots = [data_dir, os.environ.get("KERAS_AE_DATA_DIR")]
    dirs = []
    for root in filter(None, roots):
        dirs += [root, os.path.join(root, dashed), os.path.join(root, name)]
    dirs.append(os.path.join("/usr/share/datasets", dashed))
    keras_cache = os.path.join(os.path.expanduser("~"), ".keras", "datasets")
    dirs += [keras_cache, os.path.join(keras_cache, dashed)]
    return list(dict.fromkeys(dirs))  # drop repeats, keep order


def read(config, memory_limit=None):
    """Both splits of the built-in data set `config.dataset` (a `DataConfig`),
    shaped as it asks (uint8; float32 in [0, 1] from a float `.npz`); always
    in memory (`memory_limit` is not needed)."""
    spec = DATASETS[config.dataset]
    data = None
    searched = local_dirs(config.dataset, config.data_dir)
    for directory in searched:
        data = _read_local(spec, directory)
        if data is not None:
            break
    if data is None:
        data = _read_tfds(spec, config.data_dir, config.download, searched)
    return decoding.converted(_validated(spec, data), config.image_size, config.channels,
                              config.crop_to_aspect_ratio)


def read_idx(path):
    """Reads one gzipped IDX file of unsigned bytes into an array."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a readable gzip file ({e}); replace it") from e
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08" or raw[3] == 0:
        raise DataError(
            f"{path}: magic number {raw[:4].hex() or 'missing'} is not that of an "
            "unsigned-byte IDX file (00 00 08 0N); is this the right file?"
        )
    header = 4 + 4 * raw[3]
    if len(raw) < header:
        raise DataError(f"{path}: truncated header; replace the file")
    dims = struct.unpack(f">{raw[3]}I", raw[4:header])
    if len(raw) != header + math.prod(dims):
        raise DataError(
            f"{path}: {len(raw) - header} data bytes, but the header's dimensions "
            f"{dims} need {math.prod(dims)}; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _read_local(spec, directory):
    """Reads `spec` from `directory` in the first format present there, or None."""
    for fmt in spec.formats:
        data = _LOCAL_READERS[fmt](spec, directory)
        if data is not None:
            return data
    return None


def _read_idx_dir(spec, directory):
    """The four original IDX files, each checked against the others and `spec`."""
    files = {
        (split, kind): os.path.join(directory, f"{prefix}-{kind}-idx{ndim}-ubyte.gz")
        for split, prefix in (("train", "train"), ("test", "t10k"))
        for kind, ndim in (("images", 3), ("labels", 1))
    }
    present = [f for f in files.values() if os.path.isfile(f)]
    if not present:
        return None
    if len(present) < len(files):
        missing = [os.path.basename(f) for f in files.values() if f not in present]
        raise DataError(
            f"{directory}: has {len(present)} of the 4 IDX files of {spec.name} but lacks "
            f"{', '.join(missing)}; copy the missing file(s) there, or remove the others"
        )
    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[split, "images"], arrays[split, "labels"]
        images_file, labels_file = files[split, "images"], files[split, "labels"]
        if images.shape[1:] != spec.image_shape[:-1]:
            raise DataError(
                f"{images_file}: images of shape {images.shape[1:]}, but {spec.name} "
                f"images are {spec.image_shape[:-1]}; is this the right file?"
            )
        if labels.ndim != 1:
            raise DataError(
                f"{labels_file}: {labels.ndim}-dimensional, but labels are a list; "
                "is this the right file?"
            )
        if len(images) != len(labels):
            raise DataError(
                f"{images_file} has {len(images)} images but {labels_file} has "
                f"{len(labels)} labels; one of them is from another dataset or truncated"
            )
    return ImageData(
        arrays["train", "images"], arrays["train", "labels"],
        arrays["test", "images"], arrays["test", "labels"],
        source=f"IDX files in {directory}",
    )


def _read_npz(spec, directory):
    path = os.path.join(directory, f"{spec.name}.npz")
    if not os.path.isfile(path):
        return None
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        # Never unpickle: a pickle in a data file can run any code.
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded as npz:
                arrays = {k: npz[k] for k in keys if k in npz.files}
    # numpy and zipfile raise a dozen types on a damaged archive (BadZipFile,
    # zlib.error, ValueError, tokenize.TokenError, NotImplementedError, ...; the
    # fuzz test in tests/test_data.py meets them all): each means "unreadable".
    except Exception as e:
        raise DataError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from e
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: a single .npy array, not an .npz archive of {', '.join(keys)}")
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise DataError(f"{path}: lacks array(s) {', '.join(missing)}")
    return ImageData(*(arrays[k] for k in keys), source=path)


def _read_cifar_bin(spec, directory):
    """CIFAR-10's binary version: records of 1 label byte + 3072 CHW pixels."""
    batches = os.path.join(directory, "cifar-10-batches-bin")
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    paths = [os.path.join(batches, n) for n in names]
    if not all(os.path.isfile(p) for p in paths):
        return None
    records = []
    for path in paths:
        raw = np.fromfile(path, np.uint8)
        if raw.size == 0 or raw.size % 3073:
            raise DataError(f"{path}: size {raw.size} is not a whole number of records")
        records.append(raw.reshape(-1, 3073))
    train, test = np.concatenate(records[:5]), records[5]

    def split(r):
        return r[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), r[:, 0]

    return ImageData(*split(train), *split(test), source=f"binary batches in {batches}")


_LOCAL_READERS = {"idx": _read_idx_dir, "npz": _read_npz, "cifar_bin": _read_cifar_bin}


def _read_tfds(spec, data_dir, download, searched):
    where = "\n  ".join(searched)
    fix = (
        f"Fix: put the original files (e.g. train-images-idx3-ubyte.gz) or "
        f"{spec.name}.npz in a directory and pass --data_dir=DIR"
        + (", or `apt-get install dataset-fashion-mnist`" if spec.name == "fashion_mnist" else "")
        + ", or go online so TensorFlow Datasets can download it."
    )
    if not download:
        raise DataError(
            f"dataset {spec.name!r}: no local copy, and downloading is off. "
            f"Looked in:\n  {where}\n{fix}"
        )
    try:
        import tensorflow_datasets as tfds

        train, test = tfds.as_numpy(
            tfds.load(
                spec.tfds_name,
                split=["train", "test"],
                batch_size=-1,
                as_supervised=True,
                data_dir=data_dir,
            )
        )
    except Exception as e:  # any download/prepare failure: say all we know
        raise DataError(
            f"dataset {spec.name!r}: no local copy, and TensorFlow Datasets "
            f"failed ({type(e).__name__}: {str(e)[:300]}). Looked in:\n  {where}\n{fix}"
        ) from e
    return ImageData(*train, *test, source=f"TensorFlow Datasets {spec.tfds_name!r}")


def _validated(spec, data):
    """Checks shapes, counts and pixel range; adds the channel axis to 2-D images."""
    fields = {}
    for split in ("train", "test"):
        images = np.asarray(getattr(data, f"{split}_images"))
        labels = np.asarray(getattr(data, f"{split}_labels"))
        if images.ndim == 3 and spec.image_shape[-1] == 1:
            images = images[..., np.newaxis]
        problem = None
        if images.shape[1:] != spec.image_shape:
            problem = f"images have shape {images.shape[1:]}, expected {spec.image_shape}"
        elif len(images) == 0:
            problem = "no images"
        elif labels.shape != (len(images),):
            problem = f"{len(images)} images but labels of shape {labels.shape}"
        elif images.dtype != np.uint8:
            if np.issubdtype(images.dtype, np.integer):
                if images.min() < 0 or images.max() > 255:
                    problem = "integer pixels outside 0..255"
                else:
                    images = images.astype(np.uint8)
            elif not np.issubdtype(images.dtype, np.floating):
                problem = f"pixel dtype {images.dtype}; expected integers 0..255 or floats 0..1"
            elif not np.isfinite(images).all():
                problem = "NaN or infinite pixel values"
            elif images.min() < 0 or images.max() > 1:
                problem = "float pixels outside [0, 1]"
            else:
                images = images.astype(np.float32)
        if problem:
            raise DataError(f"{spec.name} {split} split from {data.source}: {problem}")
        fields[f"{split}_images"] = images
        fields[f"{split}_labels"] = labels
    return dataclasses.replace(data, **fields)
