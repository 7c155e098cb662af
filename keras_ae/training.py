"""Training one autoencoder under a tf.distribute strategy, then evaluating it.

`train(config, strategy)` writes to `config.train.model_dir`:

    config.json           the RunConfig, to reproduce the run
    model.keras           the model, saved after every epoch
    backup/               BackupAndRestore state: a killed run resumes here
    logs/                 TensorBoard logs
    metrics.json          test_mse, train_seconds, train_images_per_second, the
                          variant's own figures, PSNR with noisy test input
    reconstructions.png   first ten test images over their reconstructions
    denoising.png         noisy test input, reconstruction, clean target
    ...                   the variant's own figures (vae: samples.png, ...)
"""

import dataclasses
import json
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
from keras_ae import image_files
from keras_ae import keras_fixes
from keras_ae import model_dir as model_dir_lib
from keras_ae import models
from keras_ae import plots
from keras_ae import recipes
from keras_ae import tfds_records

CONFIG_FILE = model_dir_lib.CONFIG_FILE
MODEL_FILE = model_dir_lib.MODEL_FILE
METRICS_FILE = model_dir_lib.METRICS_FILE
FIGURE_FILE = "reconstructions.png"
DENOISING_FIGURE_FILE = "denoising.png"
BACKUP_DIR = model_dir_lib.BACKUP_DIR
LOG_DIR = model_dir_lib.LOG_DIR


class TrainingDiverged(Exception):
    """The loss or the weights became NaN or infinite; nothing of it was saved."""


def load_data(config):
    """The `ImageData` a `RunConfig` trains on (raises DataError)."""
    return config.data.load()


def train(config, strategy, data=None, verbose=1, callbacks=(), overwrite=False):
    """Trains the configured autoencoder, evaluates it, and writes the run.

    The config's defaults are resolved first (`keras_ae.config.resolve`), and
    everything that can be checked (batch divisibility, the data) is checked
    before anything is written to `model_dir`.

    Args:
        config: a `RunConfig`.
        strategy: a `tf.distribute.Strategy`, e.g. from
            `keras_ae.distribute.get_strategy`.
        data: an `ImageData` to use instead of loading `config.data.dataset`.
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
        TrainingDiverged: the loss became NaN or infinite; `model_dir` keeps
            the last good epoch.

    Example:

        config = RunConfig(DataConfig("fashion_mnist"), ModelConfig("conv"),
                           TrainConfig(model_dir="/tmp/conv", epochs=2))
        metrics = train(config, keras_ae.distribute.get_strategy("mirrored"))
    """
    config = config_lib.resolve(config)  # config.json says what ran
    _check_jit_compile(config, strategy)
    _reset_peak_memory()
    batch_size = config.data.batch_size
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise config_lib.ConfigError(
            "batch_size",
            f"global batch size {batch_size} does not split evenly across the "
            f"{replicas} replicas of strategy {config.train.strategy!r}; "
            f"use a multiple of {replicas}",
        )
    if data is None:
        data = load_data(config)
    if config.data.normal_classes:
        data = _normal_only(data, config)
    config = config_lib.with_image_shape(config, data)
    logging.info("data: %s, %d training and %d test images of %s", data.source,
                 len(data.train_images), len(data.test_images), data.train_images.shape[1:])
    if data.ignored:
        logging.info("data: %d file(s) that are not images ignored", data.ignored)
    while True:
        try:
            return _train_in_model_dir(config, strategy, data, verbose, callbacks, overwrite)
        except _FILE_ERRORS as error:
            if not _streamed(data):
                raise
            data = _without_unreadable(data, config, error)  # or a DataError naming them
            overwrite = False  # resume from the last good epoch


def _train_in_model_dir(config, strategy, data, verbose, callbacks, overwrite):
    """`train` after loading: into `model_dir`, or a worker's own directory."""
    config = _with_steps_per_execution(config, strategy, _steps_per_epoch(config, strategy, data))
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
        chief_backup = os.path.join(config.train.model_dir, BACKUP_DIR)
        if os.path.isdir(chief_backup) and not overwrite:  # the chief deletes it
            shutil.copytree(chief_backup, os.path.join(own_dir, BACKUP_DIR))
        return _train(config, strategy, data, own_dir, verbose, callbacks)
    finally:
        shutil.rmtree(own_dir, ignore_errors=True)


def _normal_only(data, config):
    """`data` for anomaly detection (`keras_ae.anomaly.normal_split`), or a
    ConfigError naming what is wrong."""
    options = config.data
    if isinstance(data.train_images, tfds_records.TfdsRecords):
        raise config_lib.ConfigError(
            "normal_classes", "needs the training labels, which a stream of TensorFlow "
            "Datasets' record files does not read; pass --input=memory (or a larger "
            "--memory_limit_mib)")
    try:
        ids = anomaly.normal_ids(data, options.normal_classes, options.dataset)
    except ValueError as e:
        raise config_lib.ConfigError("normal_classes", str(e)) from e
    try:
        return anomaly.normal_split(data, ids, options.validation_fraction,
                                    options.anomaly_fpr, options.seed)
    except anomaly.CalibrationError as e:
        raise config_lib.ConfigError("validation_fraction", str(e)) from e


# What reading a file that is gone, damaged or of another size raises.
_FILE_ERRORS = (tf.errors.NotFoundError, tf.errors.InvalidArgumentError, tf.errors.DataLossError)


def _streamed(data):
    return not isinstance(data.train_images, np.ndarray)


def _without_unreadable(data, config, error):
    """After a streamed run failed: `data` without its unreadable training
    files (`skip_bad_images`), or a DataError naming them; re-raises the
    failure if every file reads."""
    streamed = data.train_images
    if isinstance(streamed, tfds_records.TfdsRecords):  # no file to leave out
        raise data_lib.DataError(
            f"reading {streamed.name!r} {streamed.split} from TensorFlow Datasets' record "
            f"files failed while training: {image_files.error_reason(error)}\n"
            f"{config.train.model_dir} keeps the last good epoch: restore the file(s) "
            "(or prepare the dataset again) and rerun the same command to resume") from error
    logging.warning("training failed while streaming; checking every training file")
    bad = image_files.unreadable(streamed)
    if not bad:
        raise error  # not the files' fault
    listed = "\n  ".join(f"{path} ({reason})" for path, reason in bad[:5])
    if not config.data.skip_bad_images:
        raise data_lib.DataError(
            f"{len(bad)} training file(s) could not be read while training:\n  {listed}\n"
            f"{config.train.model_dir} keeps the last good epoch: replace or remove the "
            "file(s) and rerun the same command to resume, or pass --skip_bad_images to "
            "leave such files out")
    for path, _ in bad:
        logging.warning("skipped, not a readable image: %s", path)
    gone = {path for path, _ in bad}
    kept = [i for i, path in enumerate(streamed.paths) if path not in gone]
    return dataclasses.replace(
        data, train_images=streamed[kept], train_labels=data.train_labels[kept],
        skipped=data.skipped + tuple(sorted(gone)))


def _train(config, strategy, data, model_dir, verbose, extra_callbacks):
    """`train`, writing everything to `model_dir`: data → model → fit →
    evaluate → write."""
    os.makedirs(model_dir, exist_ok=True)
    with files.atomic_path(os.path.join(model_dir, CONFIG_FILE)) as tmp:
        with open(tmp, "w") as f:
            f.write(config.to_json() + "\n")
    keras.utils.set_random_seed(config.data.seed)  # weight initialization
    if config.train.deterministic:
        tf.config.experimental.enable_op_determinism()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        keras_fixes.fix_multi_worker_logs()

    smallest_batch = _smallest_batch(config, strategy)
    steps = _steps_per_epoch(config, strategy, data)
    model = build_model(config, strategy, data.train_images.shape[1:], steps)
    backup = _Backup(os.path.join(model_dir, BACKUP_DIR))
    first_epoch = backup.restore(model, strategy)
    if first_epoch:
        logging.info("resuming from the backup at epoch %d", first_epoch)
    def dataset(input_context=None):
        return data_lib.train_dataset(
            data.train_images,
            batch_size=config.data.batch_size,
            epochs=config.train.epochs,
            noise_stddev=config.data.noise_stddev,
            seed=config.data.seed,
            first_epoch=first_epoch,
            smallest_batch=smallest_batch,
            input_context=input_context,
            # A stream's buffers are all it holds of the data: bounded.
            ram_budget=config.data.memory_limit() // 2 if _streamed(data) else None,
        )

    # A stream is built by each worker for its own replicas, reading only
    # their images; an in-memory one is split by Keras.
    dataset = (strategy.distribute_datasets_from_function(dataset) if _streamed(data)
               else dataset())
    callbacks = [
        _StopOnDivergence(config.train.learning_rate, os.path.join(model_dir, MODEL_FILE)),
        backup,  # after the divergence check, like every save
        _SaveModel(os.path.join(model_dir, MODEL_FILE)),
        keras.callbacks.TensorBoard(os.path.join(model_dir, LOG_DIR)),
        *extra_callbacks,
    ]
    start = time.perf_counter()
    history = model.fit(
        dataset,
        epochs=config.train.epochs,
        initial_epoch=first_epoch,
        steps_per_epoch=steps,
        callbacks=callbacks,
        shuffle=False,  # the stream shuffles each epoch itself
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - start
    shutil.rmtree(backup.directory, ignore_errors=True)  # the run is complete

    images_per_epoch = min(len(data.train_images), steps * config.data.batch_size)
    metrics = {
        **_training_metrics(config, strategy, data, model, history, first_epoch),
        # Wall time of fit(), tracing included.
        "train_seconds": train_seconds,
        "train_images_per_second": len(history.epoch) * images_per_epoch / train_seconds,
        **evaluate(model, data, config, model_dir),
        "peak_memory_mib": _peak_memory_mib(),
    }
    files.write_json(os.path.join(model_dir, METRICS_FILE), metrics)
    return metrics


def _reset_peak_memory():
    """Starts the process's peak resident memory afresh (Linux; else nothing),
    so that `_peak_memory_mib` measures the run, not the imports before it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_memory_mib():
    """Peak resident memory (MiB) since `_reset_peak_memory` (Linux; else None)."""
    try:
        with open("/proc/self/status") as f:
            return int(f.read().split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError, ValueError):
        return None


def _smallest_batch(config, strategy):
    # TPUs compile for static shapes: every batch full. Elsewhere a last batch
    # is kept if it gives every replica an image.
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return config.data.batch_size
    return strategy.num_replicas_in_sync


def _steps_per_epoch(config, strategy, data):
    if isinstance(data.train_images, tfds_records.TfdsRecords):
        return data_lib.record_steps(len(data.train_images), config.data.batch_size,
                                     distribute.input_pipelines(strategy))
    return data_lib.steps_per_epoch(
        len(data.train_images), config.data.batch_size, _smallest_batch(config, strategy))


# Automatic steps per execution: at most this many. Each call into the graph
# costs about a millisecond of host work (callbacks, the logged loss's sync),
# more than a small model's step on a CPU; at 100 steps that is ~1% of a step.
AUTO_STEPS_PER_EXECUTION = 100


def auto_steps_per_execution(steps_per_epoch):
    """The largest divisor of `steps_per_epoch` up to AUTO_STEPS_PER_EXECUTION.

    A divisor, because Keras runs whole executions: one that crossed an epoch's
    end would take the next epoch's batches from the stream.
    """
    return max(d for d in range(1, min(steps_per_epoch, AUTO_STEPS_PER_EXECUTION) + 1)
               if steps_per_epoch % d == 0)


def _check_jit_compile(config, strategy):
    if (config.train.jit_compile and config.model.upsampling == "nearest"
            and config.model.architecture != "dense"  # dense decoders do not resize
            and not tf.config.list_physical_devices("GPU")
            and not isinstance(strategy, tf.distribute.TPUStrategy)):
        raise config_lib.ConfigError(
            "jit_compile",
            "XLA on CPUs has no kernel for the gradient of nearest-neighbour resizing "
            "(ResizeNearestNeighborGrad), which --upsampling=nearest trains through; use "
            "--upsampling=transpose with --jit_compile, or leave XLA off",
        )


def _with_steps_per_execution(config, strategy, steps_per_epoch):
    """`config` with `steps_per_execution` chosen (None: automatic) and checked.

    Under MultiWorkerMirroredStrategy one: Keras 3.15's multi-step loop fails
    there ("You must feed a value for placeholder tensor ... while/cond" in
    multi_step_on_iterator).
    """
    chosen = config.train.steps_per_execution
    multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    if chosen is None:
        chosen = 1 if multi_worker else auto_steps_per_execution(steps_per_epoch)
    elif multi_worker and chosen > 1:
        raise config_lib.ConfigError(
            "steps_per_execution",
            "must be 1 under multi_worker_mirrored: Keras 3.15's loop over several steps "
            "fails there; leave it unset",
        )
    elif steps_per_epoch % chosen:
        divisors = [d for d in range(1, steps_per_epoch + 1) if steps_per_epoch % d == 0]
        raise config_lib.ConfigError(
            "steps_per_execution",
            f"{chosen} does not divide the {steps_per_epoch} steps of an epoch (an "
            f"execution would run into the next epoch); use one of "
            f"{', '.join(map(str, divisors[:12]))}{', ...' if len(divisors) > 12 else ''}, "
            "or leave it unset to have it chosen",
        )
    return dataclasses.replace(
        config, train=dataclasses.replace(config.train, steps_per_execution=chosen))


def _training_metrics(config, strategy, data, model, history, first_epoch):
    """What ran, and the loss of every epoch this process trained."""
    losses = [float(loss) for loss in history.history.get("loss", [])]
    return {
        "variant": config.model.variant,
        "dataset": config.data.dataset,
        "data_source": data.source,
        "input": "stream" if _streamed(data) else "memory",
        "image_shape": list(data.train_images.shape[1:]),
        "train_images": len(data.train_images),
        "test_images": len(data.test_images),
        "skipped_images": len(data.skipped),  # unreadable files left out
        "strategy": config.train.strategy,
        "steps_per_execution": config.train.steps_per_execution,
        "jit_compile": bool(model.jit_compile),  # what Keras used
        "replicas": strategy.num_replicas_in_sync,
        "parameters": model.count_params(),
        "dtype_policy": model.dtype_policy.name,
        "resumed_at_epoch": first_epoch,
        "epochs_trained": len(history.epoch),  # by this process, after resuming
        "final_train_loss": losses[-1] if losses else None,
        "train_loss_by_epoch": losses,
    }


def build_model(config, strategy, input_shape, steps_per_epoch):
    """The run's model, built and compiled under `strategy` with the run's
    optimizer: Adam at `learning_rate`, constant or decayed to 0 over the run."""
    learning_rate = config.train.learning_rate
    if config.train.learning_rate_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=steps_per_epoch * config.train.epochs
        )
    options = config.model.options()
    if "seed" in models.option_names(config.model.variant):
        options["seed"] = config.data.seed  # the model's own random draws
    policy = distribute.mixed_precision_policy(strategy) if config.train.mixed_precision else None
    with strategy.scope(), models.dtype_policy(policy):
        model = models.build(config.model.variant, input_shape, **options)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            steps_per_execution=config.train.steps_per_execution or 1,
            # False leaves Keras' own choice: XLA on a lone GPU, off on CPUs
            # and under tf.distribute.
            jit_compile=True if config.train.jit_compile else "auto",
        )
    return model


def evaluate(model, data, config, figure_dir):
    """Test metrics of a trained model, and its figures written to `figure_dir`.

    Returns `test_mse` (per pixel, clean test input → reconstruction), the
    recipe's own metrics (`keras_ae.recipes`), an anomaly detector's
    (`keras_ae.anomaly.evaluate`, with `normal_classes`), and with test noise
    (`config.data.eval_noise_stddev` > 0) the mean PSNR (dB) of the noisy test
    input and of its reconstruction against the clean images, the noise drawn
    from the run's seed (the same for every model evaluated with that seed).
    """
    batch_size, seed = config.data.batch_size, config.data.seed
    recipe = recipes.RECIPES[config.model.variant]
    clean = data_lib.to_float(data.test_images).numpy()
    reconstructions = distribute.predict(model, clean, batch_size)
    plots.save_image_rows(
        os.path.join(figure_dir, FIGURE_FILE),
        [clean, reconstructions], ["test images", "reconstructions"],
    )
    metrics = {
        "test_mse": float(np.mean(np.square(reconstructions - clean))),
        **recipe.test_metrics(model, clean, batch_size, seed),
    }
    noise_stddev = config.data.eval_noise_stddev
    if noise_stddev:
        noisy = np.concatenate([
            x.numpy() for x, _ in data_lib.eval_dataset(
                data.test_images, batch_size=batch_size, noise_stddev=noise_stddev, seed=seed,
            )
        ])
        denoised = distribute.predict(model, noisy, batch_size)
        metrics["test_psnr_noisy"] = psnr(clean, noisy)
        metrics["test_psnr_denoised"] = psnr(clean, denoised)
        plots.save_image_rows(
            os.path.join(figure_dir, DENOISING_FIGURE_FILE),
            [noisy, denoised, clean], ["noisy input", "reconstruction", "clean target"],
        )
    recipe.save_figures(model, figure_dir, clean, data.test_labels, seed)
    if config.data.normal_classes:
        metrics.update(anomaly.evaluate(model, data, config, figure_dir, clean, reconstructions))
    return metrics


def psnr(reference, images):
    """Mean over images of the peak signal-to-noise ratio in dB (peak 1)."""
    axes = tuple(range(1, reference.ndim))
    mse = np.mean(np.square(images - reference), axis=axes)
    return float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-12))))


class _Backup(keras.callbacks.Callback):
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
        model.load_weights(os.path.join(self.directory, self.WEIGHTS_FILE))
        with open(epoch_file) as f:
            return int(json.load(f)["epoch"])

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        with files.atomic_path(os.path.join(self.directory, self.WEIGHTS_FILE)) as tmp:
            self.model.save_weights(tmp)
        files.write_json(os.path.join(self.directory, self.EPOCH_FILE), {"epoch": epoch + 1})


class _StopOnDivergence(keras.callbacks.Callback):
    """Stops training at the first non-finite loss, or non-finite weights at the
    end of an epoch, by raising TrainingDiverged.

    Raising (unlike Keras' TerminateOnNaN, which lets the epoch end) skips the
    callbacks after it, so the NaN weights are never saved, backed up or
    exported: `model.keras` and the backup keep the last good epoch.
    """

    def __init__(self, learning_rate, model_file):
        super().__init__()
        self.learning_rate, self.model_file = learning_rate, model_file
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not np.isfinite(loss):
            self._stop(f"the loss became {loss} at epoch {self.epoch + 1}, step {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        if not all(np.isfinite(w).all() for w in self.model.get_weights()):
            self._stop(f"weights became NaN or infinite in epoch {epoch + 1}")

    def _stop(self, what):
        kept = (
            f"{self.model_file} and the backup hold epoch {self.epoch}, the last good one"
            if self.epoch else "no epoch had finished, so nothing was saved"
        )
        raise TrainingDiverged(
            f"training diverged: {what}. Lower the learning rate (--learning_rate, "
            f"now {self.learning_rate:g}; try {self.learning_rate / 10:g}); {kept}"
        )


class _SaveModel(keras.callbacks.Callback):
    """Saves the whole model after every epoch, atomically."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        with files.atomic_path(self.path) as tmp:
            self.model.save(tmp)
