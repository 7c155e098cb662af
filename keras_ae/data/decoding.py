"""Decoded images stacked into arrays, and arrays shaped (`keras_ae.images`)."""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_ae import images
from keras_ae.data.image_data import DataError


def stacked(splits, image_size, channels, crop_to_aspect_ratio):
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


def converted(data, image_size=None, channels=None, crop_to_aspect_ratio=False):
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
