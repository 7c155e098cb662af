"""One training run, step by step: data → model → callbacks → fit → evaluate → write.

`train` checks everything that can be checked before it writes, then claims
`model_dir` (`keras_ae.model_dir`) and calls the steps below in order; each is
a short function of its own, so a reader can follow a run top-down and a
notebook can call any one of them.
"""

import dataclasses
import os
import shutil
import tempfile
import time

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from keras_ae import anomaly
from keras_ae import config as config_lib
from keras_ae import data as data_lib
from keras_ae import distribute
from keras_ae import files
from keras_ae import keras_fixes
from keras_ae import model_dir as model_dir_lib
from keras_ae import variants
from keras_ae.training import callbacks as callbacks_lib
from keras_ae.training import evaluation
from keras_ae.training import memory
from keras_ae.training import model as model_lib
from keras_ae.training import defaults
from keras_ae.training import steps as steps_lib

# What reading a file that is gone, damaged or of another size raises.
_FILE_ERRORS = (tf.errors.NotFoundError, tf.errors.InvalidArgumentError, tf.errors.DataLossError)


def load_data(config):
    """The `ImageData` a `RunConfig` trains on (raises DataError). A folder's
    validation images are read for a detector only, which calibrates on them."""
    data = config.data
    if data.dataset == "folder" and not config.anomaly.normal_classes:
        data = dataclasses.replace(data, validation_dir="")  # nothing calibrates on it
    return data_lib.load(data)


def train(config, strategy, data=None, verbose=1, callbacks=(), overwrite=False):
    """Trains the configured autoencoder, evaluates it, and writes the run.

    The config's defaults are resolved first (`keras_ae.training.resolve`),
    and everything that can be checked (batch divisibility, the data) is
    checked before anything is written to `model_dir`.

    Args:
        config: a `RunConfig`.
        strategy: a `tf.distribute.Strategy`, e.g. from
            `keras_ae.distribute.get_strategy`.
        data: an `ImageData` to use instead of loading `config.data`.
        verbose: `fit()` verbosity: 1 progress bar, 2 a line per epoch, 0 none.
        callbacks: more Keras callbacks for `fit()` (after the run's own).
        overwrite: delete a run of another configuration, or a finished one,
            from `model_dir` and train afresh; without it such a run is refused.

    Returns:
        The metrics dict also written to `metrics.json`.

    Raises:
        ConfigError: the global batch does not split evenly across replicas.
        RunDirError (a ConfigError): `model_dir` is in use by another process,
            or holds another or a finished run (see `keras_ae.model_dir`).
        DataError: the dataset cannot be found or read, or a streamed file
            could not be read while training (`model_dir` keeps the last
            good epoch).
        TrainingDiverged: the loss became NaN or infinite, or (TrainingCollapsed)
            the model returns nearly the same image for every input;
            `model_dir` keeps the last good epoch.

    Example:

        config = RunConfig(DataConfig("fashion_mnist"), ModelConfig("conv"),
                           TrainConfig(model_dir="/tmp/conv", epochs=2))
        metrics = train(config, keras_ae.distribute.get_strategy("mirrored"))
    """
    config = defaults.resolve(config)  # config.json says what ran
    steps_lib.check_jit_compile(config, strategy)
    _check_batch_size(config, strategy)
    memory.reset_peak()
    data = _normal_only(data or load_data(config), config)
    config = defaults.with_data(config, data)
    memory.check_fits(config, strategy, data.image_shape())
    logging.info("data: %s, %d training and %d test images of %s", data.source,
                 len(data.train_images), len(data.test_images), data.image_shape())
    if data.ignored:
        logging.info("data: %d file(s) that are not images ignored", data.ignored)
    while True:
        try:
            return _train_in_model_dir(config, strategy, data, verbose, callbacks, overwrite)
        except _FILE_ERRORS as error:
            data = _without_unreadable(data, config, error)  # or a DataError naming them
            overwrite = False  # resume from the last good epoch


def _check_batch_size(config, strategy):
    batch_size, replicas = config.data.batch_size, strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise config_lib.ConfigError(
            "batch_size", f"global batch size {batch_size} does not split evenly across the "
            f"{replicas} replicas of strategy {config.train.strategy!r}; use a multiple of "
            f"{replicas}")


def _normal_only(data, config):
    """`data` for anomaly detection (`keras_ae.anomaly.normal_split`) with
    `normal_classes`, else `data`; a ConfigError naming what is wrong."""
    options = config.anomaly
    if not options.normal_classes:
        return data
    if len(data.train_labels) != len(data.train_images):
        raise config_lib.ConfigError(
            "normal_classes", "needs the training labels, which a stream of TensorFlow "
            "Datasets' record files does not read; pass --input=memory (or a larger "
            "--memory_limit_mib)")
    try:
        ids = anomaly.normal_ids(data, options.normal_classes, config.data.dataset)
    except ValueError as e:
        raise config_lib.ConfigError("normal_classes", str(e)) from e
    try:
        return anomaly.normal_split(data, ids, options.validation_fraction,
                                    options.anomaly_fpr, config.data.seed)
    except anomaly.CalibrationError as e:
        field = "validation_dir" if data.validation_dir else "validation_fraction"
        raise config_lib.ConfigError(field, str(e)) from e


def _without_unreadable(data, config, error):
    """After training failed on `error`: `data` without its unreadable training
    images (`skip_bad_images`), or a DataError naming them; re-raises `error`
    if every image reads."""
    images = data.train_images
    if images.streamed:
        logging.warning("training failed while streaming; checking every training image")
    bad = images.unreadable(error)
    if not bad:
        raise error  # not the images' fault
    listed = "\n  ".join(f"{name} ({reason})" for _, name, reason in bad[:5])
    if not config.data.skip_bad_images:
        raise data_lib.DataError(
            f"{len(bad)} training file(s) could not be read while training:\n  {listed}\n"
            f"{config.train.model_dir} keeps the last good epoch: {images.repair}") from error
    for _, name, _ in bad:
        logging.warning("skipped, not a readable image: %s", name)
    kept = np.ones(len(images), bool)
    kept[[index for index, _, _ in bad]] = False
    return dataclasses.replace(
        data, train_images=images.subset(np.flatnonzero(kept)), train_labels=data.train_labels[kept],
        skipped=data.skipped + tuple(sorted(name for _, name, _ in bad)))


def _train_in_model_dir(config, strategy, data, verbose, callbacks, overwrite):
    """`train` after loading: into `model_dir`, or a worker's own directory."""
    config = steps_lib.with_steps_per_execution(
        config, strategy, steps_lib.steps_per_epoch(config, strategy, data))
    if distribute.is_chief(strategy):
        with model_dir_lib.lock(config.train.model_dir):
            model_dir_lib.check(config.train.model_dir, config, overwrite)
            return _train(config, strategy, data, config.train.model_dir, verbose, callbacks)
    # The other workers of a multi-worker run take part in every step, save and
    # prediction (they are collective) but write into a directory of their own,
    # deleted at the end, as the Keras multi-worker guide does. They resume from
    # the chief's backup, which they must be able to read (shared storage), and
    # refuse what the chief refuses, so that no worker waits for a chief that left.
    if not overwrite:
        model_dir_lib.check(config.train.model_dir, config)
    own_dir = tempfile.mkdtemp(prefix="keras_ae-worker-")
    try:
        chief_backup = os.path.join(config.train.model_dir, model_dir_lib.BACKUP_DIR)
        if os.path.isdir(chief_backup) and not overwrite:  # the chief deletes it
            shutil.copytree(chief_backup, os.path.join(own_dir, model_dir_lib.BACKUP_DIR))
        return _train(config, strategy, data, own_dir, verbose, callbacks)
    finally:
        shutil.rmtree(own_dir, ignore_errors=True)


def _train(config, strategy, data, model_dir, verbose, extra_callbacks):
    """`train`, writing everything to `model_dir`: data → model → fit →
    evaluate → write."""
    _start(config, strategy, model_dir)
    steps = steps_lib.steps_per_epoch(config, strategy, data)
    model = model_lib.build_model(config, strategy, data.image_shape(), steps)
    backup = callbacks_lib.Backup(os.path.join(model_dir, model_dir_lib.BACKUP_DIR))
    first_epoch = backup.restore(model, strategy)
    if first_epoch:
        logging.info("resuming from the backup at epoch %d", first_epoch)
    start = time.perf_counter()
    history = model.fit(
        training_stream(config, strategy, data, first_epoch, model.training_crop),
        epochs=config.train.epochs,
        initial_epoch=first_epoch,
        steps_per_epoch=steps,
        # Only a detector's: on incompressible data (noise) the best a plain
        # autoencoder can do is output the mean image, which is no failure.
        callbacks=[*run_callbacks(config, model_dir, backup, config.anomaly.normal_classes
                                  and _collapse_sample(data, model.training_crop)),
                   *extra_callbacks],
        shuffle=False,  # the stream shuffles each epoch itself
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - start
    shutil.rmtree(backup.directory, ignore_errors=True)  # the run is complete
    images_per_epoch = min(len(data.train_images), steps * config.data.batch_size)
    # The peak until now, then evaluation's own: what grows with the test split.
    peak_before = memory.peak_mib()
    memory.reset_peak()
    metrics = {
        **evaluation.training_metrics(config, strategy, data, model, history, first_epoch),
        # Wall time of fit(), tracing included.
        "train_seconds": train_seconds,
        "train_images_per_second": len(history.epoch) * images_per_epoch / train_seconds,
        **evaluation.evaluate(model, data, config, model_dir),
        "evaluation_peak_memory_mib": memory.peak_mib(),
    }
    metrics["peak_memory_mib"] = peak_before and max(peak_before,
                                                     metrics["evaluation_peak_memory_mib"])
    files.write_json(os.path.join(model_dir, model_dir_lib.METRICS_FILE), metrics)
    return metrics


def _collapse_sample(data, crop=None, count=256):
    """Float training images (top-left `crop`s of) the collapse guard watches."""
    images = data.train_images[:count].in_memory()
    return data_lib.to_float(images[:, :crop[0], :crop[1]] if crop else images).numpy()


def _start(config, strategy, model_dir):
    """Writes `config.json` and seeds and sets up the process for the run."""
    os.makedirs(model_dir, exist_ok=True)
    with files.atomic_path(os.path.join(model_dir, model_dir_lib.CONFIG_FILE)) as tmp:
        with open(tmp, "w") as f:
            f.write(config.to_json() + "\n")
    keras.utils.set_random_seed(config.data.seed)  # weight initialization
    if config.train.deterministic:
        tf.config.experimental.enable_op_determinism()
    if distribute.is_multi_worker(strategy):
        keras_fixes.fix_multi_worker_logs()


def training_stream(config, strategy, data, first_epoch, crop=None):
    """The run's training stream from `first_epoch` on, under `strategy`,
    of random crops of `crop` `(height, width)` if given.

    A stream of files is built by each worker for its own replicas, reading
    only their images, its buffers within half the memory limit; an in-memory
    one is split by Keras.
    """
    recipe = variants.recipe(config.model.variant)

    def dataset(input_context=None):
        return data_lib.train_dataset(
            data.train_images,
            batch_size=config.data.batch_size,
            epochs=config.train.epochs,
            noise_stddev=config.data.noise_stddev, masking=config.data.masking_noise,
            anomalies=data_lib.simulation(config.data) if recipe.simulated_anomalies else None,
            crop=crop,
            seed=config.data.seed,
            first_epoch=first_epoch,
            smallest_batch=steps_lib.smallest_batch(config, strategy),
            input_context=input_context,
            ram_budget=data_lib.memory_limit_bytes(config.data) // 2 if data.streamed else None,
        )

    return strategy.distribute_datasets_from_function(dataset) if data.streamed else dataset()


def run_callbacks(config, model_dir, backup, sample=None):
    """The run's own callbacks, in order: divergence (and with `sample`
    images, collapse) guard, backup, save, logs."""
    model_file = os.path.join(model_dir, model_dir_lib.MODEL_FILE)
    return [
        callbacks_lib.StopOnDivergence(config.train.learning_rate, model_file, sample),
        backup,  # after the divergence check, like every save
        callbacks_lib.SaveModel(model_file),
        keras.callbacks.TensorBoard(os.path.join(model_dir, model_dir_lib.LOG_DIR)),
    ]

