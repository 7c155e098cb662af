"""Any TensorFlow Datasets image data set, by name: in memory, or streamed
from its own record files (`keras_ae.data.tfds_records`).

The image feature is found by itself (`image_key` picks one where there are
several), labels come from a `ClassLabel` feature ("label" first) where there
is one, and the splits take TFDS's syntax (e.g. "train[:90%]"). `data_dir` is
TFDS's data directory.
"""


import numpy as np
import tensorflow as tf

from keras_ae import choices
from keras_ae import images
from keras_ae.data import decoding
from keras_ae.data import tfds_records
from keras_ae.data.image_data import DataError
from keras_ae.data.image_data import ImageData
from keras_ae.data.image_data import streams


def read(config, memory_limit):
    """Both splits of the TFDS data set `config.dataset` (a `DataConfig`),
    decoded and shaped.

    `input="stream"`, or "auto" when the decoded training images would exceed
    `memory_limit` bytes, leaves both splits in TFDS's record files
    (`tfds_records.TfdsRecords`; the training labels are not read, and
    `train_labels` is empty). A stream needs the images' size and channels:
    the image feature's, else `image_size` and `channels`.
    """
    builder = _builder(config)
    image_key, label_key = _features(builder, config)
    splits = (config.train_split, config.test_split)
    source = f"TensorFlow Datasets {config.dataset!r} ({', '.join(splits)}), {image_key!r}"
    class_names = tuple(builder.info.features[label_key].names) if label_key else ()
    try:
        if config.download:
            builder.download_and_prepare()
        sizes = [builder.info.splits[split].num_examples for split in splits]
        shape = None if config.input == "memory" else _stream_shape(
            builder, config, image_key, sizes[0], memory_limit)
        if shape is not None:
            return ImageData(*_records(builder, config, image_key, label_key, shape, sizes),
                             source=source + " (streamed)", class_names=class_names)
        streams = [(builder.as_dataset(split=split, shuffle_files=False).map(lambda e: (
            images.drop_alpha(e[image_key]), _label(e, label_key))),
                    [f"{split}[{i}]" for i in range(size)])
                   for split, size in zip(splits, sizes)]
        (train, train_labels), (test, test_labels) = decoding.stacked(
            streams, config.image_size, config.channels, config.crop_to_aspect_ratio)
    except DataError:
        raise
    except Exception as e:
        raise DataError(
            f"dataset {config.dataset!r} from TensorFlow Datasets (data_dir "
            f"{config.data_dir}): {type(e).__name__}: {str(e)[:300]}"
            + ("" if config.download else "; downloading is off")
        ) from e
    return ImageData(train, train_labels, test, test_labels, source=source,
                     class_names=class_names)


def _builder(config):
    import tensorflow_datasets as tfds  # only here: it takes seconds to import

    try:
        return tfds.builder(config.dataset, data_dir=config.data_dir)
    except Exception as e:  # DatasetNotFoundError and kin
        raise DataError(
            f"dataset {config.dataset!r} is not one of {', '.join(choices.BUILT_IN_DATASETS)}, "
            f"nor 'folder', nor a dataset TensorFlow Datasets can find ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:200]}). Use --dataset=folder --data_dir=DIR for a "
            "folder of images"
        ) from e


def _features(builder, config):
    """`(image feature's key, label feature's key or None)`."""
    import tensorflow_datasets as tfds

    name, features = config.dataset, builder.info.features
    kinds = {key: type(feature).__name__ for key, feature in features.items()}
    found = [key for key, feature in features.items() if isinstance(feature, tfds.features.Image)]
    listed = ", ".join(f"{key} ({kind})" for key, kind in kinds.items())
    if config.image_key is None and len(found) != 1:
        raise DataError(
            f"dataset {name!r} has {len(found)} image features among its features: "
            f"{listed}; " + ("name one with --image_key" if found else "it has no images")
        )
    image_key = config.image_key or found[0]
    if image_key not in found:
        raise DataError(f"dataset {name!r}: --image_key={image_key!r} is not an image "
                        f"feature; its features: {listed}")
    labelled = [key for key, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
    return image_key, "label" if "label" in labelled else next(iter(labelled), None)


def _label(example, label_key):
    return tf.constant(0, tf.int64) if label_key is None else example[label_key]


def _stream_shape(builder, config, image_key, count, memory_limit):
    """The `(height, width, channels)` the training split streams at, or None
    to read it into memory (see `read`)."""
    own = builder.info.features[image_key].shape  # (h, w, c), None where it varies
    shape = (*(config.image_size or own[:2]),
             config.channels or {2: 1, 4: 3}.get(own[2], own[2]))
    if None in shape:
        if config.input == "stream":
            raise DataError(
                f"dataset {config.dataset!r}: its {image_key!r} images have no one size "
                f"{own}; a stream needs it: pass --image_size=HEIGHT,WIDTH and --channels")
        return None  # auto: cannot tell the decoded size, so into memory as before
    return shape if streams(config, count, shape, memory_limit, "TFDS's record files") else None


def _records(builder, config, image_key, label_key, shape, sizes):
    """`(train records, no labels, test records, test labels)`: the test labels
    read from the records without decoding their images."""
    splits = []
    for split, count in zip((config.train_split, config.test_split), sizes):
        whole = builder.info.splits[split.split("[")[0]]  # TFDS sizes whole splits only
        splits.append(tfds_records.TfdsRecords(
            config.dataset, config.data_dir, split, image_key, tuple(shape), count,
            record_bytes=whole.num_bytes / max(1, whole.num_examples),
            resize=config.image_size is not None,
            crop_to_aspect_ratio=config.crop_to_aspect_ratio))
    test = splits[1]
    test_labels = (test.labels(label_key) if label_key
                   else np.zeros(len(test), np.int64))
    return splits[0], np.zeros(0, np.int64), test, test_labels
