"""One-class data: which labels are normal, and the normal training images
split into training and the validation images the threshold is calibrated on."""

import dataclasses

from absl import logging
import numpy as np

from keras_ae.anomaly.calibration import CalibrationError
from keras_ae.anomaly.calibration import expected_fpr
from keras_ae.anomaly.calibration import needed_images


def normal_ids(data, normal_classes, dataset):
    """The label ids of `normal_classes` (ids, or the names in
    `data.class_names`); ValueError naming the classes there are."""
    names = list(data.class_names)
    count = max(len(names), int(max(data.train_labels.max(), data.test_labels.max())) + 1)
    listed = ", ".join(repr(n) for n in names) if names else f"0 to {count - 1}"
    ids = []
    for wanted in normal_classes:
        wanted = str(wanted)
        if wanted in names:
            ids.append(names.index(wanted))
        elif wanted.isdigit() and int(wanted) < count and not names:
            ids.append(int(wanted))
        else:
            raise ValueError(f"class {wanted!r} is not one of {dataset}'s classes: {listed}")
    return sorted(set(ids))


def normal_split(data, ids, validation_fraction, fpr, seed):
    """`data` for one-class training: training images of the classes `ids`
    only, less a seeded `validation_fraction` of them (`validation_images`,
    of the same kind) to calibrate on, or all of them when `data` has
    validation images of its own (a folder's `validation_dir`: then those of
    the classes `ids`); the test split whole, labels as they are."""
    normal = np.flatnonzero(np.isin(data.train_labels, ids))
    if data.validation_dir is not None:
        return _own_validation(data, ids, normal, fpr)
    rng = np.random.default_rng([seed, 1_000_003])
    count = round(validation_fraction * len(normal))
    if not 0 < count < len(normal):
        raise CalibrationError(
            f"{validation_fraction:g} of the {len(normal)} normal training images is {count} "
            "validation images, which leaves "
            + ("none to calibrate on: raise --validation_fraction, or add normal images"
               if not count else "none to train on: lower --validation_fraction"))
    _warn_if_few(count, f"{validation_fraction:g} of {len(normal)} normal training images", fpr,
                 "hold out more (--validation_fraction) or add normal images")
    held_out = np.zeros(len(normal), bool)
    held_out[rng.choice(len(normal), count, replace=False)] = True
    train, validation = normal[~held_out], normal[held_out]
    images = data.train_images  # streamed, both stay files
    return dataclasses.replace(
        data, train_images=images.subset(train), train_labels=data.train_labels[train],
        validation_images=images.subset(validation))


def _own_validation(data, ids, normal, fpr):
    """`normal_split` with a folder's own validation images."""
    own = np.flatnonzero(np.isin(data.validation_labels, ids))
    if not len(own):
        names = ", ".join(repr(data.class_names[i]) for i in ids)
        raise CalibrationError(
            f"{data.validation_dir} holds no images of the normal classes ({names}): put them "
            f"in subfolders named after them, as under the training folder (e.g. "
            f"{data.validation_dir}/{data.class_names[ids[0]]}/)")
    logging.info("calibrating on the %d normal images in %s", len(own), data.validation_dir)
    _warn_if_few(len(own), data.validation_dir, fpr,
                 f"add normal images to {data.validation_dir}")
    return dataclasses.replace(
        data, train_images=data.train_images.subset(normal), train_labels=data.train_labels[normal],
        validation_images=data.validation_images.subset(own),
        validation_labels=data.validation_labels[own])


def _warn_if_few(count, where, fpr, fix):
    """The run's one warning, before training, that `count` validation images
    are too few for `fpr`: what the threshold will flag, and `fix`."""
    if count < needed_images(fpr):
        logging.warning(
            "%d validation images cannot calibrate a false-positive rate of %g, which needs "
            "%d (%s): the threshold, their highest score, will flag about %.1f%% of normal "
            "images; %s for a tighter one", count, fpr, needed_images(fpr), where,
            100 * expected_fpr(count, fpr), fix)
