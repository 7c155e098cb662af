"""A run's `model_dir`: the name of every file a run writes, reading a finished
run back, and claiming the directory: one training process at a time, one
configuration.

    with model_dir.lock(path):                  # a second process fails at once
        model_dir.check(path, config, overwrite)  # same run resumes; another refuses
        ...train...

The lock is an `flock` on `path/.lock`: the kernel releases it when its process
ends, however it ends, so a killed run never blocks the next one.

Example:

    with lock("runs/conv"):
        check("runs/conv", config, overwrite=False)
"""

import contextlib
import fcntl
import glob
import json
import os
import shutil
import socket

from keras_ae import config as config_lib

# The files of a run: training writes them, export reads them, `clear` deletes them.
LOCK_FILE = ".lock"
CONFIG_FILE = "config.json"  # the RunConfig, every default written in
MODEL_FILE = "model.keras"  # saved after every epoch
METRICS_FILE = "metrics.json"  # written when the run is complete
BACKUP_DIR = "backup"  # weights, optimizer and epoch while training
LOG_DIR = "logs"  # TensorBoard
ANOMALY_FILE = "anomaly.json"  # a detector's calibrated threshold
FIGURE_FILE = "reconstructions.png"  # every run's; the others are a variant's or a detector's
DENOISING_FIGURE_FILE = "denoising.png"
SAMPLES_FIGURE_FILE, MANIFOLD_FIGURE_FILE, SCATTER_FIGURE_FILE = (
    "samples.png", "latent_manifold.png", "latent_scatter.png")  # vae
SCORES_FIGURE_FILE, ROC_FIGURE_FILE, HIGHEST_SCORES_FIGURE_FILE = (
    "anomaly_scores.png", "roc.png", "highest_scores.png")  # with --normal_classes
MAPS_FIGURE_FILE = "anomaly_maps.png"  # with --normal_classes and test masks
# What a run writes, deleted by `check(..., overwrite=True)`; nothing else in
# the directory is touched. (Figures: every .png.)
RUN_FILES = (CONFIG_FILE, MODEL_FILE, METRICS_FILE, BACKUP_DIR, LOG_DIR, "*.png",
             ANOMALY_FILE)
# Settings that may change between a run and its resumption: where it and its
# decoded images live, not what it computes.
_NOT_COMPARED = {"train.model_dir", "data.cache_dir"}
# Settings a run written before they existed lacks, and the value that does
# what it did then: given that value, such a run resumes.
_BEFORE = {"data.grain_at_place": False,  # 467a001; before, the grain about a random grey
           "data.paste_at_place": 0.0,  # 39fc3bd; before, no paste at its place's grey
           "data.cells": False}  # the cells fill (BUILD.md, "Cells"); before, five fills


class RunDirError(config_lib.ConfigError):
    """`model_dir` is busy or holds another run; the message says what to do."""

    def __init__(self, message):
        super().__init__("model_dir", message)


@contextlib.contextmanager
def lock(path):
    """Holds `path`'s lock while the block runs; RunDirError if another process has it."""
    os.makedirs(path, exist_ok=True)
    lock_path = os.path.join(path, LOCK_FILE)
    with open(lock_path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise RunDirError(
                f"{path} is in use by {holder} (lock {lock_path}); wait for it to "
                "finish, or pass another --model_dir"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()  # the lock itself goes with the file descriptor


def differences(old, new):
    """`["section.field: old → new", ...]` between two RunConfigs' JSON dicts;
    a setting `old` lacks is `_BEFORE`'s value, else "absent"."""
    changed = []
    for section in sorted(set(old) | set(new)):
        before, after = old.get(section, {}), new.get(section, {})
        for field in sorted(set(before) | set(after)):
            key = f"{section}.{field}"
            was = before[field] if field in before else _BEFORE.get(key, _ABSENT)
            if key not in _NOT_COMPARED and was != after.get(field):
                changed.append(f"{key}: {was!r} → {after.get(field)!r}")
    return changed


class _Absent:
    def __repr__(self):
        return "absent"


_ABSENT = _Absent()


def check(path, config, overwrite=False):
    """Checks that `config` may train in `path`, clearing it first if `overwrite`.

    A directory without `config.json` is new. One with the same configuration
    resumes from its backup; if that run already finished (`metrics.json`),
    training it again needs `overwrite`, as does a different configuration,
    which is refused with the differing settings listed.

    Raises:
        RunDirError: `path` holds a finished or a different run.
    """
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.exists(config_path):
        return
    if overwrite:
        clear(path)
        return
    with open(config_path) as f:
        old = json.load(f)
    changed = differences(old, json.loads(config.to_json()))  # as stored: tuples are lists
    if changed:
        older = (" (an absent setting: an older keras-ae wrote that run, and only it can "
                 "resume it)" if any(": absent →" in c for c in changed) else "")
        raise RunDirError(
            f"{path} holds a run with another configuration ({'; '.join(changed)}){older}; "
            "pass another --model_dir, the same settings to resume it, or --overwrite "
            "to delete it and start afresh"
        )
    if os.path.exists(os.path.join(path, METRICS_FILE)):
        raise RunDirError(
            f"{path} holds a finished run of this configuration (see its {METRICS_FILE}); "
            "pass another --model_dir, or --overwrite to train it again"
        )


def clear(path):
    """Deletes the files of a run from `path` (`RUN_FILES`), nothing else."""
    for pattern in RUN_FILES:
        for name in glob.glob(os.path.join(glob.escape(path), pattern)):
            if os.path.isdir(name):
                shutil.rmtree(name)
            else:
                os.remove(name)


def read_run(path):
    """`(RunConfig, path of the model file, detector dict or None)` of the
    trained run in `path`; RunDirError if it holds none."""
    config_path, model_path = (os.path.join(path, name) for name in (CONFIG_FILE, MODEL_FILE))
    missing = [p for p in (config_path, model_path) if not os.path.isfile(p)]
    if missing:
        raise RunDirError(f"{path} holds no trained run (missing {', '.join(missing)}); "
                          "pass the --model_dir a train.py run wrote")
    with open(config_path) as f:
        config = config_lib.RunConfig.from_json(f.read())
    detector = None
    if os.path.isfile(os.path.join(path, ANOMALY_FILE)):
        with open(os.path.join(path, ANOMALY_FILE)) as f:
            detector = json.load(f)
    return config, model_path, detector
