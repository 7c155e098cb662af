"""Image data sets behind one door, and the tf.data pipeline that feeds them.

`load` reads a data set's two splits as `ImageData`, from the source its
`DataConfig` names, each in a module of its own:

    builtin.py       mnist, fashion_mnist, kmnist, cifar10: a local copy, else TFDS
    folder.py        a folder of image files (in memory, or streamed: image_files.py)
    tfds.py          any TFDS image data set (in memory, or its records: tfds_records.py)

Each split is an `Images` (`image_data.py`): an array in memory, or a stream that
reads its files batch by batch; training, evaluation and export use only that
interface. `train_dataset` is the training stream (`pipeline.py`).

Example:

    data = load(DataConfig("fashion_mnist"))     # or load("fashion_mnist")
    ds = train_dataset(data.train_images, batch_size=128, epochs=5,
                       noise_stddev=0.5, seed=1)
    model.fit(ds, epochs=5,
              steps_per_epoch=steps_per_epoch(len(data.train_images), 128))
"""

import dataclasses
import os

from keras_ae import config as config_lib
from keras_ae.data import anomalies
from keras_ae.data import builtin
from keras_ae.data import folder
from keras_ae.data import tfds
from keras_ae.data.builtin import DATASETS, local_dirs, read_idx
from keras_ae.data.folder import in_test_split
from keras_ae.data.pipeline import add_noise, eval_dataset, eval_noise, steps_per_epoch, to_float
from keras_ae.data.image_data import DataError, ImageData, Images, as_images


def load(config, *, memory_limit=None, **fields):
    """Loads both splits of a data set, as images of one size (uint8; float32
    in [0, 1] from a float `.npz`).

    Args:
        config: a `keras_ae.config.DataConfig`; or a data set's name, with
            DataConfig fields as keywords (`load("mnist", download=False)`).
        memory_limit: bytes above which `input="auto"` streams. Default None:
            `config.memory_limit_mib`'s (see `memory_limit_bytes`).
        **fields: DataConfig fields that replace `config`'s.

    Returns:
        An `ImageData`; with `train_examples`, only the first N training images.

    Raises:
        DataError: not found, or found but unreadable; the message says where
            it looked and how to fix it.
        ConfigError: a DataConfig field is invalid.
    """
    if isinstance(config, str):
        config = config_lib.DataConfig(dataset=config, **fields)
    elif fields:
        config = dataclasses.replace(config, **fields)
    if config.dataset == "folder":
        reader = folder.read
    elif config.dataset in DATASETS:
        reader = builtin.read
    else:
        reader = tfds.read
    data = reader(config, memory_limit or memory_limit_bytes(config))
    count = config.train_examples
    if count is None:
        return data
    if count > len(data.train_images):
        raise DataError(f"train_examples={count} but {config.dataset} has only "
                        f"{len(data.train_images)} training examples")
    return dataclasses.replace(
        data, train_images=data.train_images[:count],
        train_labels=data.train_labels[:count])


def memory_limit_bytes(config):
    """`config.memory_limit_mib` in bytes, or a quarter of this machine's memory."""
    if config.memory_limit_mib is not None:
        return config.memory_limit_mib * 2**20
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4


def train_dataset(images, **options):
    """The training stream: epochs `first_epoch .. epochs-1`, back to back.

    Each epoch visits every image once in a fresh order and yields
    `(noisy, clean)` batches (`(x, x)` without noise or masking) of
    `batch_size` images, the global batch. Use it with
    `fit(..., epochs=epochs, steps_per_epoch=images.steps_per_epoch(batch_size))`.

    With an `input_context` (`strategy.distribute_datasets_from_function`) it
    yields this input pipeline's share instead: every global batch is split
    into one contiguous piece per replica, sizes as even as can be, and the
    pipeline yields the pieces of its own replicas, in replica order, reading
    only their images. Across pipelines the pieces cover each epoch exactly
    once, and the replicas see what they would see of the global stream.
    (Records of a TFDS split are read in the order they allow: see
    `tfds_records.TfdsRecords.train_stream`.)

    Args:
        images: an `Images` (an array NHWC, uint8 or float32 in [0, 1], held
            in memory; or a stream, read as it is needed).
        batch_size: global batch size.
        epochs: index one past the last epoch.
        noise_stddev: Gaussian noise stddev; 0 for none. Default 0.
        masking: the share of each input's squares hidden (set to 0),
            masking noise (`pipeline.add_masking`); 0 for none. Default 0.
        anomalies: paste simulated anomalies into the inputs
            (`keras_ae.data.anomalies`, from other images of the epoch),
            drawn as this `anomalies.Simulation` says (True: its defaults),
            and yield `(inputs, clean images with their masks stacked on the
            channels)`, for detectors that learn to find them. Default None:
            none.
        crop: `(height, width)`: a random crop of this size of each image
            (before anomalies and noise), for networks that train on tiles of
            larger images; None (the default) for whole images.
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
    if options.get("anomalies") is True:
        options["anomalies"] = anomalies.Simulation()
    return as_images(images).train_stream(**options)


def simulation(config):
    """The `anomalies.Simulation` a run of `config` (a `DataConfig`, its
    defaults written in) trains on, and checks its detector with."""
    return anomalies.Simulation(rectangles=config.rectangles or 0.0,
                                grain_at_place=bool(config.grain_at_place),
                                paste_at_place=config.paste_at_place or 0.0,
                                cells=bool(config.cells))


__all__ = [
    "DATASETS", "DataError", "ImageData", "Images", "add_noise", "as_images",
    "eval_dataset", "eval_noise", "in_test_split", "load", "local_dirs", "memory_limit_bytes",
    "read_idx", "simulation", "steps_per_epoch", "to_float", "train_dataset",
]
