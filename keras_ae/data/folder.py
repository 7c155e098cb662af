"""A folder of image files: its training and test splits, in memory or streamed.

Files are found recursively by extension (`keras_ae.images.EXTENSIONS`, as
`keras.utils.image_dataset_from_directory`); other files are ignored and
counted. An image's label is its top-level subfolder (`class_names`, sorted;
"" for files directly in the folder). The test split is the images under
`test_dir`, or else those of `data_dir` that `in_test_split` picks by their
relative path, so that adding files never moves one between the splits.
A folder of normal images photographed apart from the training images
(`validation_dir`; by default `validation/` beside `data_dir`, as MVTec AD 2
lays out `train/good/` and `validation/good/`) is read as the images a
detector's threshold is calibrated on (`validation_images`).
Folders are walked and read through TensorFlow's file systems for URLs, so
`gs://` works like a local path.
"""

import hashlib
import os

from absl import logging
import numpy as np
import tensorflow as tf

from keras_ae import files
from keras_ae import images
from keras_ae.data import decoding
from keras_ae.data import image_files
from keras_ae.data import masks
from keras_ae.data.image_data import DataError
from keras_ae.data.image_data import ImageData
from keras_ae.data.image_data import error_reason
from keras_ae.data.image_data import streams

VALIDATION_DIR = "validation"


def read(config, memory_limit):
    """The image files of `config` (a `DataConfig`), decoded and shaped.

    A file TensorFlow cannot decode is a DataError naming it, or, with
    `skip_bad_images`, is left out and listed in `skipped`.

    `input="stream"`, or "auto" when the decoded training images would exceed
    `memory_limit` bytes, leaves both splits in their files (`stream`). Else
    "auto" decodes the training images into memory and leaves the test split
    in its files, which evaluation reads once, chunk by chunk, so that a run's
    memory does not grow with its test split; "memory" decodes both. A
    validation folder's images (`_validation`) are held as the test split's.
    """
    splits, fields = _splits(config)
    if config.input != "memory":
        shape = _first_shape(splits[0][0], config)
        if streams(config, len(splits[0][0]), shape, memory_limit, "their files"):
            return stream(splits, shape, config, **fields)
    decoded = splits if config.input == "memory" else splits[:1]
    arrays, skipped = _decoded(decoded, config.image_size, config.channels,
                               config.crop_to_aspect_ratio, config.skip_bad_images)
    shape = arrays[0][0].shape[1:]
    validation, bad = _validation(config, fields["class_names"], shape)
    if config.input == "memory":
        left_out = set(skipped)
        test_paths = [path for path in splits[1][0] if path not in left_out]
        return ImageData(*arrays[0], *arrays[1], skipped=tuple(skipped + bad),
                         test_masks=_masks(config, test_paths, arrays[1][0].shape[1:3]),
                         **validation, **fields)
    test, test_labels, more = _readable(_files(splits[1][0], shape, config), splits[1][1],
                                        config)
    return ImageData(*arrays[0], test, test_labels, skipped=tuple(skipped + bad + more),
                     test_masks=_masks(config, test.paths, test.image_shape[:2]),
                     **validation, **fields)


def _masks(config, test_paths, image_size):
    """The test images' `masks.Masks` (`config.test_mask_dir`, else
    `ground_truth/` beside or inside `test_dir`), or None without a mask folder."""
    mask_dir = _mask_dir(config)
    if not mask_dir:
        return None
    if not config.test_dir:
        raise DataError(f"--test_mask_dir={mask_dir} holds the masks of the test images under "
                        "--test_dir, which is not set; pass it")
    if not tf.io.gfile.isdir(mask_dir):
        raise DataError(f"--test_mask_dir={mask_dir}: no such folder")
    return masks.read(mask_dir, config.test_dir, test_paths, tuple(image_size),
                      config.crop_to_aspect_ratio)


def _mask_dir(config):
    return config.test_mask_dir or masks.default_dir(config.test_dir)


def _validation(config, class_names, shape):
    """`(ImageData fields, skipped paths)`: the images of the folder's own
    validation folder (`config.validation_dir`, else `validation/` beside
    `data_dir`), shaped to `shape`, labelled as the training images (-1: a
    subfolder no training or test image is in); none without such a folder,
    or with `validation_dir=""`."""
    directory = config.validation_dir
    if directory is None:
        directory = default_validation_dir(config.data_dir)
    if not directory:
        return {}, []
    found, _ = _image_files(directory, "--validation_dir")
    names = [_label_name(relative) for _, relative in found]
    labels = np.array([class_names.index(n) if n in class_names else -1 for n in names],
                      np.int64)
    readable, labels, skipped = _readable(_files([path for path, _ in found], shape, config),
                                          labels, config)
    logging.info("data: %d validation images in %s", len(readable), directory)
    return {"validation_images": readable.in_memory() if config.input == "memory" else readable,
            "validation_labels": labels,
            "validation_dir": directory}, skipped


def default_validation_dir(data_dir):
    """`validation/` beside `data_dir` (MVTec AD 2's layout) if it exists, else None."""
    if not data_dir:
        return None
    candidate = files.beside(data_dir, VALIDATION_DIR)
    return candidate if tf.io.gfile.isdir(candidate) else None


def _splits(config):
    """`([(paths, labels)] of the training and test splits, ImageData fields)`."""
    data_dir, test_dir = config.data_dir, config.test_dir
    if not data_dir:
        raise DataError("dataset 'folder' reads the images under --data_dir=DIR; set it")
    train_files, ignored = _image_files(data_dir)
    if test_dir:
        test_files, more = _image_files(test_dir, "--test_dir", exclude=_mask_dir(config))
        ignored += more
    else:
        chosen = [in_test_split(relative, config.test_fraction) for _, relative in train_files]
        test_files = [f for f, test in zip(train_files, chosen) if test]
        train_files = [f for f, test in zip(train_files, chosen) if not test]
        for split, split_files in (("test", test_files), ("training", train_files)):
            if not split_files:
                raise DataError(
                    f"{data_dir}: test_fraction={config.test_fraction} leaves the {split} "
                    f"split of its {len(chosen)} images empty; change --test_fraction, or "
                    "put test images in a folder of their own and pass --test_dir"
                )
    class_names = sorted({_label_name(relative) for _, relative in train_files + test_files})
    splits = [([path for path, _ in split_files],
               np.array([class_names.index(_label_name(relative))
                         for _, relative in split_files], np.int64))
              for split_files in (train_files, test_files)]
    where = data_dir + (f" and {test_dir}" if test_dir else "")
    return splits, {"class_names": tuple(class_names), "ignored": ignored,
                    "source": f"image files in {where}"}


def stream(splits, shape, config, source, **fields):
    """`ImageData` whose splits stay files (`image_files.ImageFiles`, read as
    they are needed), each image shaped to `shape`.

    A bad training file is found when training reads it; the test files are
    checked now, in one parallel pass that keeps nothing of them. With
    `cache_dir` the training images are decoded and shaped once into it and
    read from there (`image_files.cached`; a bad file is found then).
    """
    (train_paths, train_labels), (test_paths, test_labels) = splits
    test, test_labels, skipped = _readable(_files(test_paths, shape, config), test_labels,
                                           config)
    validation, bad = _validation(config, fields["class_names"], shape)
    skipped += bad
    train = _files(train_paths, shape, config)
    if config.cache_dir:
        logging.info("data: decoding the training images into %s (once per file)",
                     config.cache_dir)
        train, failures = image_files.cached(train, config.cache_dir)
        for path, reason in failures:
            _refuse_unless_skipping(path, reason, config.skip_bad_images)
        failed = {path for path, _ in failures}
        train_labels = train_labels[[path not in failed for path in train_paths]]
        skipped += sorted(failed)
    source += " (streamed" + (f", decoded once into {config.cache_dir})"
                              if config.cache_dir else ")")
    return ImageData(train, train_labels, test, test_labels, source=source,
                     skipped=tuple(skipped), test_masks=_masks(config, test.paths, shape[:2]),
                     **validation, **fields)


def _files(paths, shape, config):
    """`paths` as `image_files.ImageFiles` of `shape`, resized if the run asks."""
    return image_files.ImageFiles(tuple(paths), tuple(shape), config.image_size is not None,
                                  config.crop_to_aspect_ratio)


def _readable(files, labels, config):
    """`(files, labels, skipped paths)`: those that read as images of their
    shape; a DataError naming the first that does not, unless skipping."""
    bad = files.unreadable(None)
    for _, path, reason in bad:
        _refuse_unless_skipping(path, reason, config.skip_bad_images)
    kept = np.ones(len(files), bool)
    kept[[i for i, _, _ in bad]] = False
    return files.subset(np.flatnonzero(kept)), labels[kept], [path for _, path, _ in bad]


def _refuse_unless_skipping(path, reason, skip_bad_images):
    """A DataError naming `path` and why it cannot be read, unless skipping
    (then a warning)."""
    if not skip_bad_images:
        raise DataError(f"{path}: not a readable image ({reason}); replace or remove it, "
                        "or pass --skip_bad_images to leave such files out")
    logging.warning("skipped, not a readable image: %s", path)


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
    arrays = decoding.stacked(streams, image_size, channels, crop_to_aspect_ratio)
    skipped = []
    for (paths, _), (pixels, _) in zip(splits, arrays):
        if len(pixels) < len(paths):  # which files, and fail unless skipping
            skipped += _unreadable(paths, skip_bad_images)
    return arrays, skipped


def _first_shape(paths, config):
    """`(height, width, channels)` of a streamed folder: the flags', else the
    first readable file's."""
    image_size, channels = config.image_size, config.channels
    if image_size is None or channels is None:
        first = next((path for path in paths
                      if not _unreadable([path], config.skip_bad_images)), None)
        if first is None:
            raise DataError(f"none of the {len(paths)} training files is a readable image")
        own = images.decode(tf.io.read_file(first)).shape
        logging.info("data: streamed images are shaped like the first, %s (%s); set "
                     "--image_size and --channels to choose", first, own)
        image_size, channels = image_size or tuple(own[:2]), channels or own[2]
    return (*image_size, channels)


def in_test_split(relative_path, test_fraction):
    """Whether an image folder's file at `relative_path` is a test image: a
    hash of the path alone, below `test_fraction` for that share of files."""
    digest = hashlib.sha256(relative_path.replace(os.sep, "/").encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < test_fraction


def _label_name(relative_path):
    parts = relative_path.replace(os.sep, "/").split("/")
    return parts[0] if len(parts) > 1 else ""


def _image_files(directory, flag="--data_dir", exclude=None):
    """`([(path, path relative to directory)], number of other files)`,
    sorted, leaving out the folder `exclude` (a mask folder inside a test
    folder) if it is inside `directory`.

    Local folders are walked by `os.walk`; URLs (`gs://...`) by TensorFlow's
    file systems, which the pipeline reads them through too.
    """
    remote = "://" in directory
    if not (tf.io.gfile.isdir(directory) if remote else os.path.isdir(directory)):
        raise DataError(f"{directory}: no such folder; pass the folder of images as {flag}")
    walk = tf.io.gfile.walk(directory) if remote else os.walk(directory, followlinks=True)
    where = (lambda path: path.rstrip("/") + "/") if remote else (
        lambda path: os.path.realpath(path) + os.sep)
    excluded = exclude and where(exclude)
    found, ignored = [], 0
    for root, name in files.walk_sorted(walk):
        if excluded and where(root).startswith(excluded):
            continue
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
            _refuse_unless_skipping(path, error_reason(e), skip_bad_images)
            bad.append(path)
    return bad
