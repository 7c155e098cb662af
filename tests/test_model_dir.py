"""One run per model_dir: the lock, the configuration check, --overwrite, and
stopping on divergence without losing the last good epoch."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_ae
from keras_ae import config as config_lib
from keras_ae import data
from keras_ae import model_dir
from keras_ae import training
from keras_ae.training import callbacks
from tests.test_train import ROOT, run_train


def tiny_config(directory, tiny_mnist_dir, **train):
    return config_lib.RunConfig(
        data=config_lib.DataConfig(dataset="mnist", data_dir=tiny_mnist_dir, download=False,
                                   batch_size=64),
        model=config_lib.ModelConfig(variant="linear"),
        train=config_lib.TrainConfig(model_dir=str(directory), **{"epochs": 2, **train}),
    )


def train_here(config, **kwargs):
    return training.train(config, tf.distribute.get_strategy(), verbose=0, **kwargs)


def snapshot(directory):
    """Every file under `directory` with its bytes."""
    return {
        os.path.relpath(os.path.join(root, name), directory): open(os.path.join(root, name), "rb").read()
        for root, _, names in os.walk(directory) for name in names
    }


def test_another_configuration_is_refused_with_the_differences_listed(tiny_mnist_dir, tmp_path):
    run = tmp_path / "run"
    train_here(tiny_config(run, tiny_mnist_dir))
    before = snapshot(run)
    with pytest.raises(model_dir.RunDirError) as error:
        train_here(tiny_config(run, tiny_mnist_dir, epochs=3, learning_rate=0.01))
    assert error.value.field == "model_dir"
    message = error.value.message
    assert message.startswith(f"{run} holds a run with another configuration")
    assert "train.epochs: 2 → 3" in message and "train.learning_rate: 0.001 → 0.01" in message
    assert "--overwrite" in message
    assert snapshot(run) == before, "a refused run changed the directory"


def test_where_a_run_and_its_decoded_images_live_may_change_on_resume():
    old = {"train": {"model_dir": "a", "epochs": 2}, "data": {"cache_dir": None}}
    new = {"train": {"model_dir": "b", "epochs": 2}, "data": {"cache_dir": "/scratch"}}
    assert model_dir.differences(old, new) == []
    assert model_dir.differences(old, {**new, "train": {"model_dir": "b", "epochs": 3}}) == [
        "train.epochs: 2 → 3"]


def test_a_setting_older_runs_lack_is_what_they_did_or_else_refused_as_absent(
        tiny_mnist_dir, tmp_path):
    old, new = {"data": {"rectangles": 0.0}}, {"data": {"rectangles": 0.0, "grain_at_place": True}}
    assert model_dir.differences(old, new) == ["data.grain_at_place: False → True"]
    assert model_dir.differences(old, {"data": {"rectangles": 0.0, "grain_at_place": False,
                                                "paste_at_place": 0.0,
                                                "cells": False}}) == []

    config = tiny_config(tmp_path, tiny_mnist_dir)
    written = json.loads(config.to_json())
    del written["train"]["epochs"]
    (tmp_path / "config.json").write_text(json.dumps(written))
    with pytest.raises(model_dir.RunDirError) as error:
        model_dir.check(str(tmp_path), config)
    assert "train.epochs: absent → 2" in error.value.message
    assert "an older keras-ae wrote that run" in error.value.message


def test_a_finished_run_is_not_retrained_without_overwrite(tiny_mnist_dir, tmp_path):
    run = tmp_path / "run"
    config = tiny_config(run, tiny_mnist_dir)
    first = train_here(config)
    with pytest.raises(model_dir.RunDirError, match="holds a finished run of this configuration"):
        train_here(config)

    (run / "samples.png").write_bytes(b"a figure of the old run")
    (run / "notes.txt").write_text("the user's own file")
    other = tiny_config(run, tiny_mnist_dir, epochs=1)
    again = train_here(other, overwrite=True)
    assert again["epochs_trained"] == 1 and first["epochs_trained"] == 2
    assert json.load(open(run / "config.json"))["train"]["epochs"] == 1
    assert not (run / "samples.png").exists(), "a figure of the old run survived"
    assert (run / "notes.txt").read_text() == "the user's own file"


@pytest.mark.slow
def test_a_second_process_on_the_same_model_dir_refuses_at_once(tiny_mnist_dir, tmp_path):
    run = tmp_path / "run"
    flags = [f"--data_dir={tiny_mnist_dir}", f"--model_dir={run}", "--epochs=3"]
    first = subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), *flags],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (run / "config.json").exists():  # written under the lock
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.02)
        first.send_signal(signal.SIGSTOP)  # holds the lock for as long as the second runs
        try:
            second = run_train(*flags)
        finally:
            first.send_signal(signal.SIGCONT)
        _, stderr = first.communicate(timeout=300)
    finally:
        first.kill()
    assert second.returncode == 2
    assert f"{run} is in use by process {first.pid} on" in second.stderr
    assert first.returncode == 0, stderr[-3000:]
    assert json.load(open(run / "metrics.json"))["epochs_trained"] == 3


@pytest.mark.slow
def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path):
    holder = (
        "import os, signal\n"
        "from keras_ae import model_dir\n"
        f"with model_dir.lock({str(tmp_path)!r}):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", holder], cwd=ROOT, timeout=120)
    assert result.returncode == -signal.SIGKILL
    assert "process" in (tmp_path / model_dir.LOCK_FILE).read_text()  # it held the lock
    with model_dir.lock(str(tmp_path)):
        with pytest.raises(model_dir.RunDirError, match="is in use by process"):
            with model_dir.lock(str(tmp_path)):
                pass


class _Poison(keras.callbacks.Callback):
    """Makes the weights NaN before the first execution of `epoch` after its
    first step: divergence on cue."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.current = epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.current == self.epoch and batch >= 1:
            self.model.set_weights([np.full_like(w, np.nan) for w in self.model.get_weights()])
            self.current = None


# 256 images at batch 64: 4 steps an epoch. With 2 steps per execution the
# guard sees the loss of steps 2 and 4 only: the poisoned execution ends at 4.
@pytest.mark.parametrize("steps_per_execution, step", [(1, 2), (2, 4)])
def test_divergence_stops_at_once_and_keeps_the_last_good_epoch(
        steps_per_execution, step, tiny_mnist_dir, tmp_path):
    run = tmp_path / "run"
    config = tiny_config(run, tiny_mnist_dir, epochs=4, steps_per_execution=steps_per_execution)
    with pytest.raises(training.TrainingDiverged) as error:
        train_here(config, callbacks=[_Poison(epoch=2)])
    message = str(error.value)
    assert f"the loss became nan at epoch 3, step {step}" in message
    assert "--learning_rate, now 0.001; try 0.0001" in message
    assert "hold epoch 2, the last good one" in message
    model = keras.saving.load_model(run / "model.keras")
    assert all(np.isfinite(w).all() for w in model.get_weights())
    # The backup holds the same two finished epochs, and resumes after them.
    assert json.load(open(run / "backup" / "training_metadata.json"))["epoch"] == 2
    backup = keras.models.clone_model(model)
    backup.load_weights(run / "backup" / "latest.weights.h5")
    for a, b in zip(backup.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not (run / "metrics.json").exists()


def test_a_backup_of_other_layers_is_refused_with_what_to_do(tmp_path):
    def built(latent_dim):  # as another version of the same variant might build it
        model = keras_ae.build("conv", (8, 8, 1), latent_dim=latent_dim)
        model.compile(optimizer="adam", loss="mse")
        return model

    backup = callbacks.Backup(str(tmp_path / "backup"))
    backup.set_model(built(4))
    backup.on_epoch_end(0)
    assert backup.restore(built(4), tf.distribute.get_strategy()) == 1
    with pytest.raises(model_dir.RunDirError, match="another version.*delete the backup folder"):
        backup.restore(built(8), tf.distribute.get_strategy())


@pytest.mark.slow
def test_a_learning_rate_that_blows_up_fails_clearly(tiny_mnist_dir, tmp_path):
    run = tmp_path / "run"
    result = run_train("--variant=conv", f"--data_dir={tiny_mnist_dir}", f"--model_dir={run}",
                       "--epochs=2", "--learning_rate=1e6", "--latent_dim=4")
    assert result.returncode == 1
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("train.py:")]
    assert "training diverged: the loss became nan at epoch 1" in error
    assert "try 100000" in error and "nothing was saved" in error
    assert not (run / "metrics.json").exists() and not (run / "model.keras").exists()


def test_corrupt_data_fails_before_model_dir_is_created(tiny_mnist_dir, tmp_path):
    copy = tmp_path / "data"
    copy.mkdir()
    for name in os.listdir(tiny_mnist_dir):
        content = open(os.path.join(tiny_mnist_dir, name), "rb").read()
        (copy / name).write_bytes(content[: len(content) // 2] if name.startswith("t10k-im") else content)
    run = tmp_path / "run"
    with pytest.raises(data.DataError) as error:
        train_here(tiny_config(run, str(copy)))
    assert str(error.value).startswith(
        f"{copy / 't10k-images-idx3-ubyte.gz'}: not a readable gzip file")
    assert not run.exists()
