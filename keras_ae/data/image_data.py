"""The one interface for a split's images, its in-memory kind, and `ImageData`.

However the images of a split are held (an array in memory, a folder's files,
a TensorFlow Datasets split's records), the rest of keras-ae sees an `Images`:
a count and a shape, a subset, a seeded sample, an in-memory copy, the images
in order chunk by chunk (evaluation, figures, calibration), and the training
stream an input pipeline reads. Each kind is defined in a module of its own
and implements these; nothing outside that module asks which kind it holds.
Adding a source is adding one module.

The in-memory kind, `ImageArray`, is a numpy array (a view, never a copy) with
these methods, so that code and notebooks that hold it use it as an array.
"""

import dataclasses
import math
import re

from absl import logging
import numpy as np
import tensorflow as tf

from keras_ae.data import pipeline


# What `Images.float_chunks` holds at a time: evaluation's working set.
CHUNK_BYTES = 16 * 2**20
# The float images of one batch evaluation runs a model on, at most (one image
# at least; `Images.count_within`): a 1024x1024 RGB image's outputs one at a time.
BATCH_BYTES = 8 * 2**20


class DataError(Exception):
    """A dataset could not be found or read; the message says where and why."""


class Images:
    """The images of one split, uint8 `[count, height, width, channels]` when
    read (an in-memory split may hold float32 in [0, 1]).

    Every kind has `len()`, `shape`, `dtype` and leading slices (`[:n]`, the
    first n images, of the same kind), and the methods below.
    """

    # Whether the images are read from storage as they are needed.
    streamed = False
    # What to do when some cannot be read while training (see `unreadable`).
    repair = ""

    def subset(self, indices):
        """The images at `indices` (int array, in that order), of the same kind."""
        raise NotImplementedError

    def in_memory(self):
        """All the images, read: a numpy array (only where they fit)."""
        raise NotImplementedError

    def chunks(self, size):
        """The images in order, as numpy arrays of `size` (the last smaller):
        what evaluation and figures read, never more than a chunk at a time."""
        raise NotImplementedError

    def count_within(self, count, budget=BATCH_BYTES):
        """`count`, or fewer if that many of these images would pass
        `budget` bytes as float32 (one at least): by default the batches
        evaluation runs a model on."""
        return max(1, min(count, budget // (4 * math.prod(self.shape[1:]))))

    def float_chunks(self, batch_size, budget=None):
        """`chunks` as float32 in [0, 1], each of whole batches of `batch_size`
        (the last aside) and within `budget` bytes (default CHUNK_BYTES; a
        batch at least)."""
        image_bytes = 4 * math.prod(self.shape[1:])
        size = max(1, (budget or CHUNK_BYTES) // (image_bytes * batch_size)) * batch_size
        for chunk in self.chunks(size):
            yield pipeline.to_float(chunk).numpy()

    def sample(self, count, seed):
        """A seeded random sample of `count` images, in their order: an array."""
        rng = np.random.default_rng(seed)
        return self.subset(np.sort(rng.choice(len(self), count, replace=False))).in_memory()

    def loader(self):
        """A function: int64 indices `[n]` → the images there `[n, h, w, c]`,
        inside a tf.data pipeline (the kinds that can be read at random)."""
        raise NotImplementedError

    def steps_per_epoch(self, batch_size, smallest_batch=1, pipelines=1):
        """Batches in one epoch of `train_stream` (see `pipeline.steps_per_epoch`)."""
        return pipeline.steps_per_epoch(len(self), batch_size, smallest_batch)

    def train_stream(self, **options):
        """The training stream (`keras_ae.data.train_dataset`, whose arguments
        `options` are): epochs of `(input, clean)` batches."""
        return pipeline.indexed_stream(self.loader(), len(self), **options)

    def unreadable(self, error):
        """After `error` while streaming: `[(index, name, reason)]` of the images
        that cannot be read, none if it was not their fault."""
        return []


class ImageArray(np.ndarray, Images):
    """Images held in memory: an array, and an `Images`."""

    def subset(self, indices):
        return self[np.asarray(indices, np.int64)]

    def in_memory(self):
        return self.view(np.ndarray)

    def chunks(self, size):
        for start in range(0, len(self), size):
            yield self[start:start + size].view(np.ndarray)

    def loader(self):
        pixels = tf.constant(self.view(np.ndarray))  # held once, gathered batch by batch
        return lambda indices: tf.gather(pixels, indices)


def streams(config, count, shape, memory_limit, source):
    """Whether a split of `count` training images of `shape` is read from
    `source` (its files, its records) as training goes rather than decoded
    into memory: with `config.input` "stream", or "auto" when they would
    decode to more than `memory_limit` bytes. Every source decides here."""
    decoded = count * math.prod(shape)
    if config.input == "memory" or (config.input == "auto" and decoded <= memory_limit):
        return False
    logging.info("data: streaming %d training images from %s (%s MiB decoded, %s)", count,
                 source, f"{decoded / 2**20:,.0f}",
                 "--input=stream" if config.input == "stream" else
                 f"over the memory limit of {memory_limit / 2**20:,.0f} MiB")
    return True


def as_images(images):
    """`images` as an `Images`: an array (or anything numpy reads) viewed as an
    `ImageArray`; an `Images` of another kind as it is."""
    if images is None or isinstance(images, Images):
        return images
    return np.asarray(images).view(ImageArray)


def error_reason(error):
    """A TensorFlow OpError's message, without its op and function names."""
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", error.message)
    return message.split(" [Op:")[0].strip()


@dataclasses.dataclass(frozen=True)
class ImageData:
    """Both splits of a dataset: images NHWC (uint8 0-255, or float32 0-1) as
    `Images`, arrays when in memory (arrays given are viewed as such).

    A stream of TensorFlow Datasets' records does not read training labels:
    `train_labels` is then empty.
    """

    train_images: Images
    train_labels: np.ndarray
    test_images: Images
    test_labels: np.ndarray
    source: str  # where it was read from, for logs
    class_names: tuple = ()  # label i's name, where the source names them
    skipped: tuple = ()  # unreadable files left out (--skip_bad_images)
    ignored: int = 0  # files in an image folder that are not images
    # The images a detector's threshold is calibrated on: held out of the
    # normal training images (`keras_ae.anomaly.normal_split`), or a folder's own
    # (`validation_dir`), labelled as the training images (-1: no class of theirs).
    validation_images: Images | None = None
    validation_labels: np.ndarray | None = None
    validation_dir: str | None = None
    test_masks: object = None  # a folder's `masks.Masks` of its test images, or None

    def __post_init__(self):
        for field in ("train_images", "test_images", "validation_images"):
            object.__setattr__(self, field, as_images(getattr(self, field)))

    @property
    def streamed(self):
        """Whether the training images are read from storage as training goes."""
        return self.train_images.streamed

    def image_shape(self):
        """`(height, width, channels)` of the training images."""
        return tuple(self.train_images.shape[1:])
