"""The one-class protocol on Fashion-MNIST: AUROC per normal class.

    python bench/anomaly.py [--variants=restoration,linear,conv] [--epochs=N] [--classes=0,...,9]

For each variant and each class c: train.py's library trains on the training
images of class c alone (`--normal_classes=c`, 10% of them held out to
calibrate the threshold), each variant at its recipe's defaults (epochs
included, unless --epochs is given: `train.py --normal_classes=c
--variant=V`), then scores all 10,000 test images, class c normal and the
other nine anomalous; exports the run (`python -m export`'s library) and
scores them again with the SavedModel (--noserved skips it). Prints a JSON
list of runs (AUROC, average precision, the rates at the calibrated
threshold, train seconds, the served AUROC and FPR) and each
variant's mean AUROC. Writes the runs, the command and the machine to --out:
README's table (`bench/report.py`) shows the detector's runs from
bench/anomaly.json (`python bench/anomaly.py`) beside the other variants' from
bench/anomaly-baselines.json (`python bench/anomaly.py
--variants=linear,conv,denoising,vae --epochs=5 --out=bench/anomaly-baselines.json`).
"""

import json
import os
import statistics
import tempfile
import time

from keras_ae import commands  # noqa: E402,F401  first: TensorFlow's environment, as train.py's

from absl import app
from absl import flags

import numpy as np
import tensorflow as tf

from keras_ae import anomaly
from keras_ae import config as config_lib
from keras_ae import data
from keras_ae import distribute
from keras_ae import export
from keras_ae import training
import environment  # bench/environment.py, beside this file

_VARIANTS = flags.DEFINE_list("variants", ["restoration"], "Variants to run.")
_CLASSES = flags.DEFINE_list("classes", [str(c) for c in range(10)], "Normal classes.")
_EPOCHS = flags.DEFINE_integer("epochs", None, "Epochs of each run. Default: the recipe's.")
_RUNS_DIR = flags.DEFINE_string("runs_dir", os.path.join(tempfile.gettempdir(), "anomaly-bench"),
                                "Model directories of the runs.")
_OUT = flags.DEFINE_string("out", "bench/anomaly.json", "Where to write the runs.")
_SERVED = flags.DEFINE_bool("served", True, "Export each run and score the test images "
                            "again with its SavedModel (served AUROC and FPR).")


def run(variant, normal_class, fashion):
    config = config_lib.RunConfig(
        config_lib.DataConfig("fashion_mnist", download=False),
        config_lib.ModelConfig(variant),
        config_lib.TrainConfig(os.path.join(_RUNS_DIR.value, f"{variant}-{normal_class}"),
                               epochs=_EPOCHS.value),
        config_lib.AnomalyConfig(normal_classes=(normal_class,)),
    )
    start = time.perf_counter()
    metrics = training.train(config, distribute.get_strategy("default"), fashion, verbose=0,
                             overwrite=True)
    keys = ("test_auroc", "test_average_precision", "anomaly_threshold",
            "test_fpr_at_threshold", "test_tpr_at_threshold", "test_f1_at_threshold",
            "train_seconds", "epochs_trained")
    result = {"variant": variant, "normal_class": int(normal_class),
              "seconds": time.perf_counter() - start, **{k: metrics[k] for k in keys}}
    if _SERVED.value:
        result.update(served(config.train.model_dir, fashion, int(normal_class),
                             metrics["test_fpr_at_threshold"]))
    return result


def served(model_dir, fashion, normal_class, fpr):
    """The run's SavedModel (`python -m export`'s library) on all test images:
    the AUROC of its `anomaly_score`, the false-positive rate of its
    `is_anomaly` on the normal ones, and how far that may stray from the
    calibrated rate: 3 standard deviations of a threshold calibrated on the
    validation images, as seen on this many normal test images."""
    with tempfile.TemporaryDirectory() as base:
        report = export.export_run(model_dir, config_lib.ExportConfig(
            base, formats=("saved_model",)), fashion)
        serve = tf.saved_model.load(report["path"]).signatures["serving_default"]
        outputs = [serve(images=tf.constant(chunk))
                   for chunk in fashion.test_images.float_chunks(1000)]
    scores = np.concatenate([o["anomaly_score"].numpy() for o in outputs])
    flagged = np.concatenate([o["is_anomaly"].numpy() for o in outputs])
    normal = fashion.test_labels == normal_class
    calibrated = report["anomaly"]
    rate, count = calibrated["fpr"], calibrated["validation_images"]
    tolerance = 3 * np.sqrt(rate * (1 - rate) * (1 / count + 1 / normal.sum()))
    return {"served_auroc": anomaly.auroc(scores, ~normal),
            "served_fpr": float(flagged[normal].mean()), "fpr_tolerance": float(tolerance),
            "served_fpr_within_tolerance": bool(abs(flagged[normal].mean() - rate) <= tolerance)}


def main(argv):
    del argv  # environment.command() records the flags
    fashion = data.load("fashion_mnist", download=False)
    results = {"command": environment.command(),
               "machine": environment.machine(), "epochs": _EPOCHS.value, "runs": []}
    for variant in _VARIANTS.value:
        for normal_class in _CLASSES.value:
            results["runs"].append(run(variant, normal_class, fashion))
            print(json.dumps(results["runs"][-1]), flush=True)
            with open(_OUT.value, "w") as f:
                json.dump(results, f, indent=1)
    for variant in _VARIANTS.value:
        runs = [r for r in results["runs"] if r["variant"] == variant]
        print(f"{variant}: mean AUROC {100 * statistics.mean(r['test_auroc'] for r in runs):.1f}, "
              f"lowest {100 * min(r['test_auroc'] for r in runs):.1f}, training "
              f"{max(r['train_seconds'] for r in runs):.0f} s per class at most")


if __name__ == "__main__":
    app.run(main)
