"""The one-class protocol on Fashion-MNIST: AUROC per normal class.

    python bench/anomaly.py [--variants=restoration,linear,conv] [--epochs=N] [--classes=0,...,9]

For each variant and each class c: train.py's library trains on the training
images of class c alone (`--normal_classes=c`, 10% of them held out to
calibrate the threshold), each variant at its recipe's defaults (epochs
included, unless --epochs is given: `train.py --normal_classes=c
--variant=V`), then scores all 10,000 test images, class c normal and the
other nine anomalous. Prints a JSON list of runs (AUROC, average
precision, the rates at the calibrated threshold, train seconds) and a
Markdown table of AUROC per class and the mean (`bench/report.py`), beside
published baselines on the same protocol. Writes the runs, the command and the
machine to --out.
"""

import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app
from absl import flags

from keras_ae import config as config_lib
from keras_ae import data
from keras_ae import distribute
from keras_ae import training
import environment  # bench/environment.py, beside this file
import report  # bench/report.py

_VARIANTS = flags.DEFINE_list("variants", ["restoration"], "Variants to run.")
_CLASSES = flags.DEFINE_list("classes", [str(c) for c in range(10)], "Normal classes.")
_EPOCHS = flags.DEFINE_integer("epochs", None, "Epochs of each run. Default: the recipe's.")
_RUNS_DIR = flags.DEFINE_string("runs_dir", os.path.join(tempfile.gettempdir(), "anomaly-bench"),
                                "Model directories of the runs.")
_OUT = flags.DEFINE_string("out", "bench/anomaly.json", "Where to write the runs.")


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
    return {"variant": variant, "normal_class": int(normal_class),
            "seconds": time.perf_counter() - start, **{k: metrics[k] for k in keys}}


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
    print(report.anomaly(results))


if __name__ == "__main__":
    app.run(main)
