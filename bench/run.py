"""Quality, speed and footprint of every variant on Fashion-MNIST, against targets.

    python bench/run.py            # full: about 45 minutes on 2 CPU cores
    python bench/run.py --quick    # under 10 minutes: fewer images and epochs

Reads Fashion-MNIST from the local copy (Debian's dataset-fashion-mnist), trains
every variant at latent size 32 (and the VAE also at 2) with keras_ae.training
in this process, and measures:

- per variant: test MSE (clean test image → reconstruction), the variant's own
  figure, training seconds, training images/s, parameters;
- PCA with 32 components fitted on the training split: the best test MSE any
  linear 32-dimensional code can reach;
- input pipeline overhead: training images/s with the real tf.data stream (with
  and without noise) over images/s fed one in-memory batch, side by side
  (bench/pipeline.py);
- time to quality: seconds of training until the conv model's test MSE first
  drops below 0.0104 (the test set is evaluated every few steps; the clock
  stops while it is);
- per-step speed of every recipe: train.py's default training images/s
  against a minimal hand-written tf.function loop over the same stream, side
  by side (bench/steps.py);
- export footprint of the conv model: SavedModel and TFLite sizes, and batch-1
  latency of the LiteRT interpreter against the SavedModel signature, taking
  turns in this process.

Writes everything, with the machine and versions, to --out (bench/results.json)
and prints a Markdown table with each target and whether it is met.
"""

import json
import os
import shutil
import statistics
import time

from keras_ae import commands  # noqa: E402,F401  first: TensorFlow's environment, as train.py's

from absl import app
from absl import flags
import keras
import numpy as np
import tensorflow as tf

import keras_ae
from keras_ae import config as config_lib
from keras_ae import data as data_lib
from keras_ae import export
from keras_ae import training
from keras_ae.export import tflite
import environment  # bench/environment.py, beside this file
import pipeline  # bench/pipeline.py
import report  # bench/report.py
import steps  # bench/steps.py

_QUICK = flags.DEFINE_bool("quick", False, "A smaller run, under 10 minutes.")
_OUT = flags.DEFINE_string("out", "bench/results.json", "Where to write the results.")
_RUNS_DIR = flags.DEFINE_string("runs_dir", "runs/bench", "Model directories of the runs.")

QUALITY = report.QUALITY
PCA_COMPONENTS = 32

# (name, ModelConfig options, epochs full, epochs quick, the variant's own figures)
RUNS = [
    ("linear", {"variant": "linear"}, 20, 2, []),
    ("conv", {"variant": "conv"}, 9, 2, []),
    ("denoising", {"variant": "denoising"}, 3, 1, ["test_psnr_noisy", "test_psnr_denoised"]),
    ("vae", {"variant": "vae"}, 3, 1, ["test_neg_elbo", "test_reconstruction_nll", "test_kl"]),
    ("vae, latent 2", {"variant": "vae", "latent_dim": 2}, 3, 1,
     ["test_neg_elbo", "test_reconstruction_nll", "test_kl"]),
    ("sparse", {"variant": "sparse"}, 3, 1, ["mean_code_activation", "fraction_code_near_zero"]),
    ("contractive", {"variant": "contractive"}, 1, 1, ["mean_jacobian_frobenius"]),
]


class QualityClock(keras.callbacks.Callback):
    """Evaluates the test MSE every `every` steps, its own time off the clock,
    until it first falls below `threshold`; records the training seconds then."""

    def __init__(self, images, threshold, every):
        super().__init__()
        self.images, self.threshold, self.every = images, threshold, every
        self.seconds = None  # training seconds to reach the threshold
        self.curve = []  # (training seconds, test MSE)

    def on_train_begin(self, logs=None):
        self.evaluating = 0.0
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.seconds is None and (batch + 1) % self.every == 0:
            self._evaluate()

    def on_epoch_end(self, epoch, logs=None):
        if self.seconds is None:
            self._evaluate()

    def _evaluate(self):
        paused = time.perf_counter()
        trained = paused - self.start - self.evaluating
        reconstructions = self.model.predict(self.images, batch_size=500, verbose=0)
        mse = float(np.mean(np.square(reconstructions - self.images)))
        self.curve.append((trained, mse))
        if mse < self.threshold:
            self.seconds = trained
        self.evaluating += time.perf_counter() - paused


def pca_mse(train, test, components):
    """Test MSE of the best rank-`components` linear reconstruction (PCA)."""
    train = train.reshape(len(train), -1) / 255.0
    test = test.reshape(len(test), -1) / 255.0
    mean = train.mean(axis=0)
    basis = np.linalg.svd(train - mean, full_matrices=False)[2][:components]
    projected = (test - mean) @ basis.T @ basis + mean
    return float(np.mean(np.square(projected - test)))


def train_run(name, options, epochs, data, callbacks=()):
    model_dir = os.path.join(_RUNS_DIR.value, name.replace(", ", "-").replace(" ", "_"))
    shutil.rmtree(model_dir, ignore_errors=True)  # never resume an older run
    config = config_lib.RunConfig(
        data=config_lib.DataConfig(dataset="fashion_mnist", download=False),
        model=config_lib.ModelConfig(**options),
        train=config_lib.TrainConfig(model_dir=model_dir, epochs=epochs),
    )
    print(f"training {name}: {epochs} epoch(s)", flush=True)
    metrics = training.train(config, tf.distribute.get_strategy(), data, verbose=0,
                             callbacks=callbacks)
    return model_dir, metrics


def pipeline_overhead(images, quick):
    """Paired images/s ratios: real stream (with/without noise) over in memory."""
    batch_size, steps, rounds = 128, 20, (3 if quick else 15)
    epochs = -(-steps * (rounds + 1) // data_lib.steps_per_epoch(len(images), batch_size))
    feeds = pipeline.make_feeds(images, batch_size, epochs)
    model = keras_ae.build("conv", images.shape[1:])
    model.compile()
    rates = pipeline.measure(model, feeds, steps, batch_size, rounds)
    return {
        "median_images_per_second": {k: statistics.median(v) for k, v in rates.items()},
        "pipeline_over_in_memory": pipeline.paired_ratio(rates, "pipeline", "in_memory"),
        "noisy_over_in_memory": pipeline.paired_ratio(rates, "noisy", "in_memory"),
        "steps_per_trial": steps,
        "rounds": rounds,
    }


def batch1_latency(version_dir, images, calls):
    """Median seconds per single-image call: LiteRT (float32, int8 files) and
    the SavedModel's serving_default, taking turns call by call."""
    saved = tf.saved_model.load(version_dir).signatures["serving_default"]
    runners = {
        f"litert_{q}": tflite.signature_runner(
            os.path.join(version_dir, "tflite", f"reconstruct_{q}.tflite"), "serving_default")
        for q in ("float32", "int8")
    }
    int8_input = runners["litert_int8"].get_input_details()["images"]
    callers = {
        "saved_model": lambda x: saved(images=tf.constant(x)),
        "litert_float32": lambda x: runners["litert_float32"](images=x),
        "litert_int8": lambda x: runners["litert_int8"](images=tflite.quantize(x, int8_input)),
    }
    times = {name: [] for name in callers}
    for i in range(calls + 10):  # the first 10 warm up
        x = images[i % len(images)][None]
        for name, call in callers.items():
            start = time.perf_counter()
            call(x)
            if i >= 10:
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {
        "median_seconds": medians,
        "calls": calls,
        "litert_float32_over_saved_model": medians["litert_float32"] / medians["saved_model"],
    }


def main(argv):
    del argv
    quick = _QUICK.value
    started = time.perf_counter()
    data = data_lib.load(
        "fashion_mnist", train_examples=10000 if quick else None, download=False
    )
    test_images = data.test_images / np.float32(255)
    results = {
        "quick": quick,
        "command": environment.command(),
        "machine": environment.machine(),
        "train_examples": len(data.train_images),
        "pca_32_test_mse": pca_mse(data.train_images, data.test_images, PCA_COMPONENTS),
        "runs": {},
    }
    clock = QualityClock(test_images, QUALITY, every=25 if quick else 50)
    for name, options, full_epochs, quick_epochs, figures in RUNS:
        epochs = quick_epochs if quick else full_epochs
        callbacks = [clock] if name == "conv" else []
        model_dir, metrics = train_run(name, options, epochs, data, callbacks)
        if name == "conv":
            conv_dir = model_dir
            # fit()'s wall time includes the clock's evaluations: take them out.
            metrics["train_seconds"] -= clock.evaluating
            metrics["train_images_per_second"] = (
                epochs * len(data.train_images) / metrics["train_seconds"])
        results["runs"][name] = {**metrics, "epochs": epochs, "figures": figures,
                                 "model_dir": model_dir}
    results["time_to_quality_seconds"] = clock.seconds
    results["conv_quality_curve"] = clock.curve

    print("pipeline overhead", flush=True)
    results["pipeline"] = pipeline_overhead(data.train_images, quick)

    print("per-step speed", flush=True)
    results["steps"] = {
        variant: steps.measure(variant, data, rounds=1 if quick else 3, ways=("default", "loop"))
        for variant in keras_ae.VARIANTS
    }

    print("export", flush=True)
    export_report = export.export_run(conv_dir, config_lib.ExportConfig(
        os.path.join(_RUNS_DIR.value, "exports"), model_name="conv",
        eval_examples=1000 if quick else None,
    ), data)
    export_report["batch1_latency"] = batch1_latency(
        export_report["path"], test_images, 100 if quick else 500)
    results["export"] = export_report
    results["targets"] = [
        {"target": t, "measured": value, "met": bool(met)}
        for t, value, met in report.targets(results)
    ]
    results["bench_seconds"] = time.perf_counter() - started
    os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
    with open(_OUT.value, "w") as f:
        json.dump(results, f, indent=2, default=float)
    name = os.path.basename(_OUT.value)
    print(report.runs(results, name), report.benchmark(results, name), sep="\n\n")
    print(f"\n{'quick' if quick else 'full'} run: {results['bench_seconds'] / 60:.1f} min on "
          f"{results['machine']['cpu_count']} x {results['machine']['cpu']}; "
          f"results in {_OUT.value}")


if __name__ == "__main__":
    app.run(main)
