"""The run's own Keras callbacks: backup, divergence guard, model save."""

import json
import os

import keras
import numpy as np

from keras_ae import files
from keras_ae import model_dir as model_dir_lib
from keras_ae import models


class TrainingDiverged(Exception):
    """The loss or the weights became NaN or infinite; nothing of it was saved."""


class TrainingCollapsed(TrainingDiverged):
    """The model returns nearly the same output for every image."""


# Output spread below this share of the input's counts as collapsed. Across
# Fashion-MNIST images a freshly initialised conv model's output varies
# 0.002-0.003 as much as its input (a tiny one of tests/test_restoration.py
# 0.0006 on noise), 0.65-0.77 after one epoch; a collapsed one (dead ReLUs,
# a constant output) 0.0.
COLLAPSED_SPREAD = 1e-4
# Steps a run takes before the guard judges its outputs. Until batch
# normalization's moving statistics have caught up with weights that move fast,
# a model's inference outputs can be nearly constant while it learns: the
# draem detector's were 1e-6 of its input's spread after 21 to 35 steps on
# 1024x1024 crops (bench/large.py), 0.13 after 42 and 0.8 after 84.
COLLAPSE_JUDGED_AFTER = 100


def spread_ratio(images, outputs):
    """How much `outputs` vary across images, as a share of how much the
    `images` do: mean over pixels of the std over images, divided."""
    spread = np.mean(np.std(images, axis=0))
    return float(np.mean(np.std(outputs, axis=0)) / spread) if spread else 1.0


class Backup(keras.callbacks.Callback):
    """Backs up weights and optimizer state after every epoch, so that a killed
    run resumes where it left off: `restore` before `fit`, which then starts
    at the epoch `restore` returns (`initial_epoch`).

    Each file is written under a temporary name and renamed: the weights, then
    the epoch they belong to, so a kill can only fall between the two renames
    (a few microseconds) to leave new weights beside the previous epoch number.
    Keras' own BackupAndRestore writes in place, and a kill during its write
    leaves a backup that cannot be read.
    """

    WEIGHTS_FILE = "latest.weights.h5"
    EPOCH_FILE = "training_metadata.json"

    def __init__(self, directory):
        super().__init__()
        self.directory = directory

    def restore(self, model, strategy):
        """Loads the backup into `model`; the number of epochs it holds (0
        without a backup)."""
        epoch_file = os.path.join(self.directory, self.EPOCH_FILE)
        if not os.path.exists(epoch_file):
            return 0
        with strategy.scope():  # optimizer variables to load into
            model.optimizer.build(model.trainable_variables)
        try:
            model.load_weights(os.path.join(self.directory, self.WEIGHTS_FILE))
        except ValueError as e:
            if not models.weights_misfit(e):
                raise
            raise model_dir_lib.RunDirError(
                f"the backup in {self.directory} does not fit the layers this keras-ae builds "
                "for the run, so another version, whose layers differ, wrote it. Resume with "
                "that version, or delete the backup folder to train afresh") from e
        with open(epoch_file) as f:
            return int(json.load(f)["epoch"])

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        with files.atomic_path(os.path.join(self.directory, self.WEIGHTS_FILE)) as tmp:
            self.model.save_weights(tmp)
        files.write_json(os.path.join(self.directory, self.EPOCH_FILE), {"epoch": epoch + 1})


class StopOnDivergence(keras.callbacks.Callback):
    """Stops training at the first non-finite loss, or non-finite weights at the
    end of an epoch, by raising TrainingDiverged.

    Raising (unlike Keras' TerminateOnNaN, which lets the epoch end) skips the
    callbacks after it, so the NaN weights are never saved, backed up or
    exported: `model.keras` and the backup keep the last good epoch.

    With `sample` images (float, numpy) it also stops, raising
    TrainingCollapsed, after an epoch at whose end (COLLAPSE_JUDGED_AFTER
    steps into the run at least) the model's outputs for them vary less than
    COLLAPSED_SPREAD as much as they do: a model that
    returns one image for every input has stopped learning, and would
    otherwise be saved and even serve as a detector (scoring distance from
    that image).
    """

    def __init__(self, learning_rate, model_file, sample=None):
        super().__init__()
        self.learning_rate, self.model_file = learning_rate, model_file
        self.sample = sample
        self.epoch = self.steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        loss = float((logs or {}).get("loss", 0.0))
        if not np.isfinite(loss):
            self._stop(f"the loss became {loss} at epoch {self.epoch + 1}, step {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        if not all(np.isfinite(w).all() for w in self.model.get_weights()):
            self._stop(f"weights became NaN or infinite in epoch {epoch + 1}")
        if self.sample is not None and self.steps >= COLLAPSE_JUDGED_AFTER:
            outputs = np.asarray(self.model(self.sample, training=False))
            ratio = spread_ratio(self.sample, outputs)
            if ratio < COLLAPSED_SPREAD:
                self._stop(f"after epoch {epoch + 1} the model returns nearly the same image for "
                           f"every input (across {len(self.sample)} training images its output "
                           f"varies {ratio:.1e} as much as they do)", TrainingCollapsed, "collapsed")

    def _stop(self, what, error=TrainingDiverged, happened="diverged"):
        kept = (
            f"{self.model_file} and the backup hold epoch {self.epoch}, the last good one"
            if self.epoch else "no epoch had finished, so nothing was saved"
        )
        raise error(
            f"training {happened}: {what}. Lower the learning rate (--learning_rate, "
            f"now {self.learning_rate:g}; try {self.learning_rate / 10:g}); {kept}"
        )


class SaveModel(keras.callbacks.Callback):
    """Saves the whole model after every epoch, atomically."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        with files.atomic_path(self.path) as tmp:
            self.model.save(tmp)
