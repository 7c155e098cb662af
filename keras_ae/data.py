"""Image datasets: where they are found, and the tf.data pipeline that feeds them.

`load()` finds a named dataset locally (original IDX `.gz` files, a Keras-style
`.npz`, CIFAR's binary batches) and falls back to TensorFlow Datasets; it also
reads a folder of image files (`read_folder`) or any TFDS image dataset
(`read_tfds`), shaped by `keras_ae.images`. It returns whole splits as arrays,
decoded in memory, except a folder's training images when they would not fit
(`input`, `memory_limit`): those stay files (`keras_ae.image_files`), read as
training streams them.

`train_dataset()` turns the training images into the stream `fit()` consumes,
for several epochs: each epoch takes them in a fresh shuffled order, in
batches of the global batch size (or one input pipeline's per-replica pieces
of them), gathered from memory or read from their files, adds Gaussian noise
on the fly if asked, and prefetches. Epoch `e` is a pure function of
`(seed, e)`: its order is a permutation drawn from both, and the noise of its
global batch `b` comes from stateless random ops keyed by `(seed, e, b)` (an
input pipeline draws its batch's noise and keeps its own rows). So order and
noise are fresh every epoch, the same in every run with the same seed whatever
the strategy, number of replicas or workers, or source (memory or files), and
a run resumed at epoch `e` sees what an uninterrupted run would.
(`Dataset.shuffle` cannot give this: its seed must be a Python value, so it
can't depend on the epoch inside the stream.)

Example:

    data = load("fashion_mnist")
    ds = train_dataset(data.train_images, batch_size=128, epochs=5,
                       noise_stddev=0.5, seed=1)
    model.fit(ds, epochs=5,
              steps_per_epoch=steps_per_epoch(len(data.train_images), 128))
"""

import dataclasses
import gzip
import hashlib
import math
import os
import struct
import zlib

from absl import logging
import numpy as np
import tensorflow as tf

from keras_ae import image_files
from keras_ae import images
from keras_ae import tfds_records


class DataError(Exception):
    """A dataset could not be found or read; the message says where and why."""


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


@dataclasses.dataclass(frozen=True)
class ImageData:
    """Both splits of a dataset: images NHWC (uint8 0-255, or float32 0-1).

    Streamed training images are `keras_ae.image_files.ImageFiles` or
    `keras_ae.tfds_records.TfdsRecords` (whose labels are not read:
    `train_labels` is then empty).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str  # where it was read from, for logs
    class_names: tuple = ()  # label i's name, where the source names them
    skipped: tuple = ()  # unreadable files left out (--skip_bad_images)
    ignored: int = 0  # files in an image folder that are not images
    validation_images: np.ndarray | None = None  # normal images held out to calibrate


# ---------------------------------------------------------------------------
# Finding and reading a dataset.


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


def load(name, data_dir=None, train_examples=None, download=True, *, image_size=None,
         channels=None, crop_to_aspect_ratio=False, test_dir=None, test_fraction=0.1,
         image_key=None, train_split="train", test_split="test", skip_bad_images=False,
         input="memory", memory_limit=None, cache_dir=None):
    """Loads both splits of a dataset, as images of one size (uint8; float32
    in [0, 1] from a float `.npz`).

    `name` is one of `DATASETS` (a local copy first, see `local_dirs`, then
    TensorFlow Datasets, which downloads it if `download` is true; a local copy
    that exists but cannot be read is an error, never silently replaced);
    "folder", image files under `data_dir` (see `read_folder`); or any other
    TensorFlow Datasets name (see `read_tfds`).

    Args:
        name: a dataset name, as above.
        data_dir: searched first, the image folder, or TFDS's data directory.
        train_examples: keep only the first N training examples. Default None.
        download: let TFDS download when there is no local copy. Default True.
        image_size: `(height, width)` to resize every image to (bilinear,
            `keras_ae.images.resize`). Default None: the data's own, which
            must then be one size.
        channels: 1 or 3. Default None: the data's own (3 if any image is RGB).
        crop_to_aspect_ratio: resize the largest centred crop of the target's
            aspect ratio instead of distorting. Default False.
        test_dir, test_fraction, skip_bad_images, input, memory_limit,
            cache_dir: image folders, see `read_folder`.
        image_key, train_split, test_split: TFDS, see `read_tfds`.

    Returns:
        An `ImageData`.

    Raises:
        DataError: not found, or found but unreadable; the message says where
            it looked and how to fix it.
    """
    shape = {"image_size": image_size, "channels": channels,
             "crop_to_aspect_ratio": crop_to_aspect_ratio}
    if name == "folder":
        data = read_folder(data_dir, test_dir, test_fraction, skip_bad_images, **shape,
                           input=input, memory_limit=memory_limit, cache_dir=cache_dir)
    elif name not in DATASETS:
        data = read_tfds(name, data_dir, download, image_key, train_split, test_split, **shape,
                         input=input, memory_limit=memory_limit)
    else:
        spec = DATASETS[name]
        data = None
        searched = local_dirs(name, data_dir)
        for directory in searched:
            data = _read_local(spec, directory)
            if data is not None:
                break
        if data is None:
            data = _read_tfds(spec, data_dir, download, searched)
        data = _converted(_validated(spec, data), **shape)
    if train_examples is not None:
        if train_examples > len(data.train_images):
            raise DataError(
                f"train_examples={train_examples} but {name} has only "
                f"{len(data.train_images)} training examples"
            )
        data = dataclasses.replace(
            data,
            train_images=data.train_images[:train_examples],
            train_labels=data.train_labels[:train_examples],
        )
    return data


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


# ---------------------------------------------------------------------------
# Images of any size: folders, any TFDS dataset, resizing.


def read_folder(data_dir, test_dir=None, test_fraction=0.1, skip_bad_images=False, *,
                image_size=None, channels=None, crop_to_aspect_ratio=False, input="memory",
                memory_limit=None, cache_dir=None):
    """The image files under `data_dir` (and `test_dir`), decoded and shaped.

    Files are found recursively by extension (`keras_ae.images.EXTENSIONS`, as
    `keras.utils.image_dataset_from_directory`); other files are ignored and
    counted. An image's label is its top-level subfolder (`class_names`, sorted;
    "" for files directly in the folder). The test split is the images under
    `test_dir`, or else those of `data_dir` that `in_test_split` picks by their
    relative path, so that adding files never moves one between the splits.

    A file TensorFlow cannot decode is a DataError naming it, or, with
    `skip_bad_images`, is left out and listed in `skipped`.

    `input="stream"`, or "auto" when the decoded training images would exceed
    `memory_limit` bytes, leaves the training images in their files
    (`keras_ae.image_files.ImageFiles`, read as training streams them; a bad
    file is found when it is read) and decodes the test images, every k-th
    one if they would exceed `memory_limit`. Without `image_size` or
    `channels` the first readable file's are taken. With `cache_dir`, a
    streamed split is decoded and shaped once into it and read from there
    (`keras_ae.image_files.cached`; a bad file is found then).
    """
    if not data_dir:
        raise DataError("dataset 'folder' reads the images under --data_dir=DIR; set it")
    train_files, ignored = _image_files(data_dir)
    if test_dir:
        test_files, more = _image_files(test_dir)
        ignored += more
    else:
        chosen = [in_test_split(relative, test_fraction) for _, relative in train_files]
        test_files = [f for f, test in zip(train_files, chosen) if test]
        train_files = [f for f, test in zip(train_files, chosen) if not test]
        for split, split_files in (("test", test_files), ("training", train_files)):
            if not split_files:
                raise DataError(
                    f"{data_dir}: test_fraction={test_fraction} leaves the {split} split "
                    f"of its {len(chosen)} images empty; change --test_fraction, or put "
                    "test images in a folder of their own and pass --test_dir"
                )
    class_names = sorted({_label_name(relative) for _, relative in train_files + test_files})
    splits = [([path for path, _ in split_files],
               [class_names.index(_label_name(relative)) for _, relative in split_files])
              for split_files in (train_files, test_files)]
    where = data_dir + (f" and {test_dir}" if test_dir else "")
    folder = {"class_names": tuple(class_names), "ignored": ignored}
    if input != "memory":
        shape = _first_shape(splits[0][0], image_size, channels, skip_bad_images)
        decoded = len(train_files) * math.prod(shape)
        if input == "stream" or decoded > memory_limit:
            logging.info("data: streaming %d training images from their files (%s MiB "
                         "decoded, %s)", len(train_files), f"{decoded / 2**20:,.0f}",
                         "--input=stream" if input == "stream" else
                         f"over the memory limit of {memory_limit / 2**20:,.0f} MiB")
            return _streamed(splits, shape, image_size is not None, crop_to_aspect_ratio,
                             memory_limit, skip_bad_images, cache_dir,
                             source=f"image files in {where} (training images streamed"
                             + (f", decoded once into {cache_dir})" if cache_dir else ")"),
                             **folder)
    arrays, skipped = _decoded(splits, image_size, channels, crop_to_aspect_ratio,
                               skip_bad_images)
    return ImageData(*arrays[0], *arrays[1], source=f"image files in {where}",
                     skipped=tuple(skipped), **folder)


def _decoded(splits, image_size, channels, crop_to_aspect_ratio, skip_bad_images):
    """`([(images, labels)] per split, skipped paths)` from `[(paths, labels)]`."""
    streams = [
        (tf.data.Dataset.from_tensor_slices((paths, labels))
         .map(lambda path, label: (images.decode(tf.io.read_file(path)), label),
              num_parallel_calls=tf.data.AUTOTUNE)
         .ignore_errors(),  # drops a file that does not decode, with its label
         paths)
        for paths, labels in splits
    ]
    arrays = _stacked(streams, image_size, channels, crop_to_aspect_ratio)
    skipped = []
    for (paths, _), (pixels, _) in zip(splits, arrays):
        if len(pixels) < len(paths):  # which files, and fail unless skipping
            skipped += _unreadable(paths, skip_bad_images)
    return arrays, skipped


def _first_shape(paths, image_size, channels, skip_bad_images):
    """`(height, width, channels)` of a streamed folder: the flags', else the
    first readable file's."""
    if image_size is None or channels is None:
        first = next((path for path in paths if not _unreadable([path], skip_bad_images)), None)
        if first is None:
            raise DataError(f"none of the {len(paths)} training files is a readable image")
        own = images.decode(tf.io.read_file(first)).shape
        logging.info("data: streamed images are shaped like the first, %s (%s); set "
                     "--image_size and --channels to choose", first, own)
        image_size, channels = image_size or tuple(own[:2]), channels or own[2]
    return (*image_size, channels)


def _streamed(splits, shape, resize, crop_to_aspect_ratio, memory_limit, skip_bad_images,
              cache_dir, **fields):
    """`ImageData` whose training images are `ImageFiles` (cached copies with
    `cache_dir`); the test images decoded, every k-th if all would exceed
    `memory_limit`."""
    (train_paths, train_labels), (test_paths, test_labels) = splits
    every = max(1, math.ceil(len(test_paths) * math.prod(shape) / memory_limit))
    if every > 1:
        logging.info("data: %d test images would exceed the memory limit; evaluating on "
                     "every %d-th", len(test_paths), every)
    test = [(test_paths[::every], test_labels[::every])]
    [(test_images, test_labels)], skipped = _decoded(
        test, shape[:2] if resize else None, shape[2], crop_to_aspect_ratio, skip_bad_images)
    if test_images.shape[1:] != shape:
        raise DataError(
            f"the test images are {test_images.shape[1]}x{test_images.shape[2]}, the streamed "
            f"training images {shape[0]}x{shape[1]} (like the first); pass "
            "--image_size=HEIGHT,WIDTH to resize them all to one")
    train = image_files.ImageFiles(tuple(train_paths), tuple(shape), resize,
                                   crop_to_aspect_ratio)
    train_labels = np.array(train_labels, np.int64)
    if cache_dir:
        logging.info("data: decoding the training images into %s (once per file)", cache_dir)
        train, failures = image_files.cached(train, cache_dir)
        for path, reason in failures:
            if not skip_bad_images:
                raise DataError(f"{path}: not a readable image ({reason}); replace or remove "
                                "it, or pass --skip_bad_images to leave such files out")
            logging.warning("skipped, not a readable image: %s", path)
        failed = {path for path, _ in failures}
        train_labels = train_labels[[path not in failed for path in train_paths]]
        skipped += sorted(failed)
    return ImageData(train, train_labels, test_images, test_labels,
                     skipped=tuple(skipped), **fields)


def in_test_split(relative_path, test_fraction):
    """Whether an image folder's file at `relative_path` is a test image: a
    hash of the path alone, below `test_fraction` for that share of files."""
    digest = hashlib.sha256(relative_path.replace(os.sep, "/").encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < test_fraction


def _label_name(relative_path):
    parts = relative_path.replace(os.sep, "/").split("/")
    return parts[0] if len(parts) > 1 else ""


def _image_files(directory):
    """`([(path, path relative to directory)], number of other files)`, sorted.

    Local folders are walked by `os.walk`; URLs (`gs://...`) by TensorFlow's
    file systems, which the pipeline reads them through too.
    """
    remote = "://" in directory
    if not (tf.io.gfile.isdir(directory) if remote else os.path.isdir(directory)):
        raise DataError(f"{directory}: no such folder; pass the folder of images as --data_dir")
    walk = tf.io.gfile.walk(directory) if remote else os.walk(directory, followlinks=True)
    found, ignored = [], 0
    for root, dirs, names in walk:
        dirs.sort()  # in place: the walk descends in this order
        for name in sorted(names):
            if name.lower().endswith(images.EXTENSIONS):
                path = f"{root.rstrip('/')}/{name}" if remote else os.path.join(root, name)
                found.append((path, path[len(directory.rstrip("/")) + 1:]))
            else:
                ignored += 1
    if not found:
        raise DataError(
            f"{directory}: no images in it or its subfolders (looked for "
            f"{', '.join(images.EXTENSIONS)}; {ignored} other file(s) ignored)"
        )
    return found, ignored


def _unreadable(paths, skip_bad_images):
    """The paths TensorFlow cannot decode, each logged; a DataError naming the
    first unless `skip_bad_images`."""
    bad = []
    for path in paths:
        try:
            images.decode(tf.io.read_file(path))
        except tf.errors.OpError as e:
            if not skip_bad_images:
                raise DataError(
                    f"{path}: not a readable image ({image_files.error_reason(e)}); "
                    "replace or remove it, or pass --skip_bad_images to leave such "
                    "files out"
                ) from e
            logging.warning("skipped, not a readable image: %s", path)
            bad.append(path)
    return bad


def read_tfds(name, data_dir=None, download=True, image_key=None, train_split="train",
              test_split="test", *, image_size=None, channels=None,
              crop_to_aspect_ratio=False, input="memory", memory_limit=None):
    """A TensorFlow Datasets image dataset, by name, decoded and shaped.

    The image feature is found by itself (`image_key` picks one where there are
    several), labels come from a `ClassLabel` feature ("label" first) where
    there is one, and the splits take TFDS's syntax (e.g. "train[:90%]").
    `data_dir` is TFDS's data directory.

    `input="stream"`, or "auto" when the decoded training images would exceed
    `memory_limit` bytes, leaves the training split in TFDS's record files
    (`keras_ae.tfds_records.TfdsRecords`; its labels are not read, and
    `train_labels` is empty) and decodes the test images, every k-th one if
    they would exceed `memory_limit`. A stream needs the images' size and
    channels: the image feature's, else `image_size` and `channels`.
    """
    import tensorflow_datasets as tfds  # only here: it takes seconds to import

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # DatasetNotFoundError and kin
        raise DataError(
            f"dataset {name!r} is not one of {', '.join(DATASETS)}, nor 'folder', nor "
            f"a dataset TensorFlow Datasets can find ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:200]}). Use --dataset=folder --data_dir=DIR for a "
            "folder of images"
        ) from e
    features = builder.info.features
    kinds = {key: type(feature).__name__ for key, feature in features.items()}
    found = [key for key, feature in features.items() if isinstance(feature, tfds.features.Image)]
    listed = ", ".join(f"{key} ({kind})" for key, kind in kinds.items())
    if image_key is None and len(found) != 1:
        raise DataError(
            f"dataset {name!r} has {len(found)} image features among its features: "
            f"{listed}; " + ("name one with --image_key" if found else "it has no images")
        )
    image_key = image_key or found[0]
    if image_key not in found:
        raise DataError(f"dataset {name!r}: --image_key={image_key!r} is not an image "
                        f"feature; its features: {listed}")
    labelled = [key for key, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
    label_key = "label" if "label" in labelled else next(iter(labelled), None)
    source = f"TensorFlow Datasets {name!r} ({train_split}, {test_split}), {image_key!r}"
    class_names = tuple(features[label_key].names) if label_key else ()
    try:
        if download:
            builder.download_and_prepare()
        sizes = {split: builder.info.splits[split].num_examples
                 for split in (train_split, test_split)}
        streamed = None if input == "memory" else _tfds_streamed(
            builder, name, data_dir, image_key, train_split, sizes[train_split], image_size,
            channels, crop_to_aspect_ratio, input, memory_limit)
        every = 1
        if streamed is not None:  # the test images within the memory limit
            every = max(1, math.ceil(sizes[test_split] * math.prod(streamed.image_shape)
                                     / memory_limit))
            image_size, channels = streamed.image_shape[:2], streamed.image_shape[2]
        splits = []
        for split in (train_split, test_split)[streamed is not None:]:
            elements = builder.as_dataset(split=split, shuffle_files=False).shard(every, 0)
            splits.append((elements.map(lambda e: (
                images.drop_alpha(e[image_key]),
                tf.constant(0, tf.int64) if label_key is None else e[label_key],
            )), [f"{split}[{i}]" for i in range(0, sizes[split], every)]))
    except DataError:
        raise
    except Exception as e:
        raise DataError(
            f"dataset {name!r} from TensorFlow Datasets (data_dir {data_dir}): "
            f"{type(e).__name__}: {str(e)[:300]}"
            + ("" if download else "; downloading is off")
        ) from e
    if streamed is not None:
        if every > 1:
            logging.info("data: %d test images would exceed the memory limit; evaluating on "
                         "every %d-th", sizes[test_split], every)
        [(test, test_labels)] = _stacked(splits, image_size, channels, crop_to_aspect_ratio)
        return ImageData(streamed, np.zeros(0, np.int64), test, test_labels,
                         source=source + " (training images streamed)", class_names=class_names)
    (train, train_labels), (test, test_labels) = _stacked(
        splits, image_size, channels, crop_to_aspect_ratio)
    return ImageData(train, train_labels, test, test_labels, source=source,
                     class_names=class_names)


def _tfds_streamed(builder, name, data_dir, image_key, split, count, image_size, channels,
                   crop_to_aspect_ratio, input, memory_limit):
    """`TfdsRecords` of the training split if it is to stream (see
    `read_tfds`), else None."""
    own = builder.info.features[image_key].shape  # (h, w, c), None where it varies
    shape = (*(image_size or own[:2]), channels or {2: 1, 4: 3}.get(own[2], own[2]))
    if None in shape:
        if input == "stream":
            raise DataError(
                f"dataset {name!r}: its {image_key!r} images have no one size "
                f"{own}; a stream needs it: pass --image_size=HEIGHT,WIDTH and --channels")
        return None  # auto: cannot tell the decoded size, so into memory as before
    decoded = count * math.prod(shape)
    if input != "stream" and decoded <= memory_limit:
        return None
    logging.info("data: streaming %d training images from TFDS's record files (%s MiB "
                 "decoded, %s)", count, f"{decoded / 2**20:,.0f}",
                 "--input=stream" if input == "stream" else
                 f"over the memory limit of {memory_limit / 2**20:,.0f} MiB")
    return tfds_records.TfdsRecords(
        name, data_dir, split, image_key, shape, count,
        record_bytes=_record_bytes(builder, split),
        resize=image_size is not None, crop_to_aspect_ratio=crop_to_aspect_ratio)


def _record_bytes(builder, split):
    """Mean size of a record of `split` in its files (TFDS keeps the sizes of
    whole splits: those of "train" for "train[:90%]")."""
    whole = builder.info.splits[split.split("[")[0]]
    return whole.num_bytes / max(1, whole.num_examples)


def _stacked(splits, image_size, channels, crop_to_aspect_ratio):
    """`[(images, labels)]`, one per `(stream, names)` of `splits`: the stream's
    `(uint8 image, label)` pairs read once, each image shaped by
    `keras_ae.images.shaped` and stacked; `names[j]` names image j in errors.

    Without `image_size` every image must have the first one's size; without
    `channels` the images take 3 if any is RGB, else 1.
    """
    read = [
        list(stream.map(
            lambda image, label: (
                images.shaped(image, image_size, channels, crop_to_aspect_ratio), label),
            num_parallel_calls=tf.data.AUTOTUNE,
        ).as_numpy_iterator())
        for stream, _ in splits
    ]
    sizes = {}
    for pairs, (_, names) in zip(read, splits):
        for (array, _), name in zip(pairs, names):
            sizes.setdefault(array.shape[:2], name)
    if len(sizes) > 1:
        examples = ", ".join(f"{h}x{w} ({name})" for (h, w), name in list(sizes.items())[:4])
        raise DataError(
            f"the images have {len(sizes)} different sizes, e.g. {examples}; pass "
            "--image_size=HEIGHT,WIDTH to resize them all to one"
        )
    depth = max(array.shape[-1] for pairs in read for array, _ in pairs)
    return [(np.stack([np.repeat(a, depth // a.shape[-1], axis=-1) for a, _ in pairs]),
             np.array([label for _, label in pairs], np.int64))
            for pairs in read]


def _converted(data, image_size=None, channels=None, crop_to_aspect_ratio=False):
    """`data` with its arrays shaped by `keras_ae.images.shaped`, if asked."""
    height, width, own = data.train_images.shape[1:]
    if image_size in (None, (height, width)) and channels in (None, own):
        return data

    def shaped(array):
        if array.dtype != np.uint8:
            array = np.round(array * 255).astype(np.uint8)
        batches = tf.data.Dataset.from_tensor_slices(array).batch(1024).map(
            lambda x: images.shaped(x, image_size, channels, crop_to_aspect_ratio)
        )
        return np.concatenate(list(batches.as_numpy_iterator()))

    return dataclasses.replace(
        data, train_images=shaped(data.train_images), test_images=shaped(data.test_images)
    )


# ---------------------------------------------------------------------------
# The tf.data pipeline.


def to_float(images):
    """uint8 0-255 → float32 0-1; float input is only cast."""
    if images.dtype == tf.uint8:
        return tf.cast(images, tf.float32) / 255.0
    return tf.cast(images, tf.float32)


def add_noise(images, stddev, seed, first_row=0, rows=None):
    """`clip(images + stddev * N(0, 1), 0, 1)`, from a stateless seed of shape [2].

    With `rows`, `images` are the rows `first_row, ...` of a batch of `rows`
    images, and get those rows of the noise drawn for the whole batch: the
    same however the batch is split.
    """
    first_row, count = tf.cast(first_row, tf.int32), tf.shape(images)[0]
    shape = tf.shape(images) if rows is None else tf.concat(
        [[tf.cast(rows, tf.int32)], tf.shape(images)[1:]], 0)
    noise = tf.random.stateless_normal(shape, seed=seed)[first_row:first_row + count]
    return tf.clip_by_value(images + stddev * noise, 0.0, 1.0)


def steps_per_epoch(num_examples, batch_size, smallest_batch=1):
    """Batches in one epoch of `num_examples` (see `train_dataset`)."""
    full, last = divmod(num_examples, batch_size)
    return full + (last >= smallest_batch)


# Separate random streams for training and evaluation with the same seed.
_TRAIN_STREAM, _EVAL_STREAM = 0, 1


def train_dataset(
    images,
    *,
    batch_size,
    epochs,
    noise_stddev=0.0,
    seed=0,
    first_epoch=0,
    smallest_batch=1,
    input_context=None,
    ram_budget=None,
):
    """The training stream: epochs `first_epoch .. epochs-1`, back to back.

    Each epoch visits every image once in a fresh order and yields
    `(noisy, clean)` batches (`(x, x)` when `noise_stddev` is 0) of
    `batch_size` images, the global batch. Use it with
    `fit(..., epochs=epochs, steps_per_epoch=steps_per_epoch(len(images), batch_size))`.

    With an `input_context` (`strategy.distribute_datasets_from_function`) it
    yields this input pipeline's share instead: every global batch is split
    into one contiguous piece per replica, sizes as even as can be, and the
    pipeline yields the pieces of its own replicas, in replica order, reading
    only their images. Across pipelines the pieces cover each epoch exactly
    once, and the replicas see what they would see of the global stream.

    Args:
        images: array NHWC, uint8 or float32 in [0, 1], held in memory; or
            `keras_ae.image_files.ImageFiles`, read as they are needed.
        batch_size: global batch size.
        epochs: index one past the last epoch.
        noise_stddev: Gaussian noise stddev; 0 for none. Default 0.
        seed: the stream's seed. Default 0.
        first_epoch: epoch to start from (when resuming). Default 0.
        smallest_batch: an epoch's last, partial batch is dropped if it holds
            fewer images: the number of replicas, so that none is handed an
            empty batch (which oneDNN's convolutions reject), or `batch_size`
            for static shapes, as TPUs need. Default 1: every image is used.
            The images dropped are the last of the epoch's own order, so a
            different few each epoch.
        input_context: a `tf.distribute.InputContext`, or None for the
            global stream. Default None.
        ram_budget: bytes tf.data's autotuned buffers (prefetch, parallel
            reads) may hold. Default None: tf.data's own, half the machine's.
    """
    if isinstance(images, tfds_records.TfdsRecords):
        return _record_stream(images, batch_size, epochs, noise_stddev, seed, first_epoch,
                              input_context, ram_budget)
    count = len(images)
    used = min(count, steps_per_epoch(count, batch_size, smallest_batch) * batch_size)
    starts, sizes = _pieces(used, batch_size, input_context)
    # All pieces alike (always so on TPUs): a static batch dimension.
    static_size = int(sizes[0]) if len(set(sizes.tolist())) == 1 else None
    load = _loader(images)
    stream_key = tf.constant([seed, _TRAIN_STREAM], tf.int64)

    def one_epoch(epoch):
        key = tf.random.experimental.stateless_fold_in(stream_key, epoch)
        # A full uniform shuffle: a permutation drawn from (seed, epoch) alone.
        order = tf.random.experimental.stateless_shuffle(
            tf.range(count, dtype=tf.int64), seed=key)

        def piece(start, size):
            positions = tf.ensure_shape(tf.range(start, start + size), [static_size])
            clean = to_float(load(tf.gather(order, positions)))
            if not noise_stddev:
                return clean, clean
            # The piece's rows of its global batch's noise.
            batch, row = start // batch_size, start % batch_size
            rows = tf.minimum(tf.constant(batch_size, tf.int64), used - batch * batch_size)
            seed = tf.random.experimental.stateless_fold_in(key, batch)
            return add_noise(clean, noise_stddev, seed, row, rows), clean

        return tf.data.Dataset.from_tensor_slices((starts, sizes)).map(
            piece, num_parallel_calls=tf.data.AUTOTUNE)

    dataset = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
    return _finish(dataset, ram_budget)


def record_steps(count, batch_size, pipelines=1):
    """Batches in one epoch of `count` records read by `pipelines` input
    pipelines (see `_record_stream`): every batch full, the pipelines' equal
    shares."""
    return (count // pipelines) // (batch_size // pipelines)


def _record_stream(records, batch_size, epochs, noise_stddev, seed, first_epoch,
                   input_context, ram_budget):
    """`train_dataset` of `TfdsRecords`, read in the order they allow.

    Each input pipeline reads its own share of the split (`TfdsRecords.share`)
    and yields whole batches of `batch_size / replicas` images, one per replica
    in turn, `record_steps` per epoch; the remainder of a share is left out.
    An epoch's order (the files', then each block of records permuted) and
    noise come from (seed, epoch, pipeline) alone (see `keras_ae.tfds_records`).
    """
    replicas, pipelines, pipeline = _layout(input_context)
    per_replica = batch_size // replicas
    share = records.share(pipelines, pipeline)
    batches = record_steps(len(records), batch_size, pipelines) * (replicas // pipelines)
    # Encoded records shuffled together: half of the budget, the rest decoded batches.
    block = records.shuffle_block(ram_budget and ram_budget // 2)
    decode = records.decoder()
    stream_key = tf.constant([seed, _TRAIN_STREAM], tf.int64)

    def one_epoch(epoch):
        key = tf.random.experimental.stateless_fold_in(
            tf.random.experimental.stateless_fold_in(stream_key, epoch), pipeline)
        files_key, blocks_key, noise_key = (
            tf.random.experimental.stateless_fold_in(key, i) for i in range(3))
        order = tf.random.experimental.stateless_shuffle(
            tf.range(len(share), dtype=tf.int64), seed=files_key)

        def shuffled(index, records):
            # (tf.data's shuffle cannot take this seed while Keras sets a global one.)
            seed = tf.random.experimental.stateless_fold_in(blocks_key, index)
            return tf.data.Dataset.from_tensor_slices(tf.random.experimental.stateless_shuffle(
                records, seed=seed))

        clean = (tfds_records.reads(share, order)
                 .batch(block).enumerate().flat_map(shuffled)
                 .take(batches * per_replica)
                 .map(decode, num_parallel_calls=tf.data.AUTOTUNE)
                 .batch(per_replica, drop_remainder=True)
                 .map(to_float))
        if not noise_stddev:
            return clean.map(lambda x: (x, x))
        return clean.enumerate().map(lambda i, x: (add_noise(
            x, noise_stddev, tf.random.experimental.stateless_fold_in(noise_key, i)), x))

    dataset = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
    return _finish(dataset, ram_budget)


def _layout(input_context):
    """`(replicas, input pipelines, this pipeline's index)`."""
    if input_context is None:
        return 1, 1, 0
    return (input_context.num_replicas_in_sync, input_context.num_input_pipelines,
            input_context.input_pipeline_id)


def _pieces(used, batch_size, input_context):
    """`(starts, sizes)` (int64 lists) of the batches one pipeline yields per
    epoch, as positions in the epoch's order (see `train_dataset`)."""
    replicas, pipelines, pipeline = _layout(input_context)
    per_pipeline = replicas // pipelines
    mine = range(pipeline * per_pipeline, (pipeline + 1) * per_pipeline)
    starts, sizes = [], []
    for batch_start in range(0, used, batch_size):
        size = min(batch_size, used - batch_start)
        start = batch_start
        for replica in range(replicas):
            piece = size // replicas + (replica < size % replicas)
            if replica in mine:
                starts.append(start)
                sizes.append(piece)
            start += piece
    return np.array(starts, np.int64), np.array(sizes, np.int64)


def _loader(images):
    """int64 indices `[n]` → the images there, `[n, h, w, c]` as stored."""
    if isinstance(images, image_files.ImageFiles):  # read from the files
        return images.loader()
    pixels = tf.constant(images)  # held in memory once, gathered batch by batch
    return lambda indices: tf.gather(pixels, indices)


def eval_dataset(images, *, batch_size, noise_stddev=0.0, seed=0):
    """One pass over `images` in order, as `(input, clean)` batches."""
    batches = (
        tf.data.Dataset.from_tensor_slices(images)
        .batch(batch_size)
        .map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    )
    key = tf.constant([seed, _EVAL_STREAM], tf.int64)
    return _finish(_with_targets(batches, noise_stddev, key))


def _with_targets(batches, noise_stddev, key):
    """Pairs each batch with its target: `(noisy, clean)` or `(x, x)`."""
    if not noise_stddev:
        return batches.map(lambda x: (x, x))

    def noisy_pair(index, clean):
        batch_key = tf.random.experimental.stateless_fold_in(key, index)
        return add_noise(clean, noise_stddev, batch_key), clean

    return batches.enumerate().map(noisy_pair, num_parallel_calls=tf.data.AUTOTUNE)


def _finish(dataset, ram_budget=None):
    options = tf.data.Options()
    if ram_budget:  # tf.data's autotuned buffers stay within it
        options.autotune.ram_budget = int(ram_budget)
    # In-memory sources have no files to shard: multi-worker shards elements.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
