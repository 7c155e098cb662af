"""What each part of the restoration detector's score adds: bench/anomaly.py's runs rescored.

    python bench/anomaly_views.py [--runs_dir=/tmp/anomaly-bench] [--classes=0,...,9]

Reads the model and `anomaly.json` of each class's `restoration` run that
`python bench/anomaly.py` left in --runs_dir, scores all 10,000 Fashion-MNIST
test images in every view, and gives the AUROC of the whole score beside
that of its parts, each view divided by its constant as the detector does:

    restore      the four restoration errors alone (ARNet's score)
    recognise    the view head's four negative log-likelihoods alone
    upright      the restoration error of the image as it is: what a plain
                 autoencoder with this network, trained to restore, scores

Writes them with the command and the machine to --out.
"""

import json
import os
import tempfile

from keras_ae import commands  # noqa: E402,F401  first: TensorFlow's environment, as train.py's

from absl import app
from absl import flags
import numpy as np

from keras_ae import anomaly
from keras_ae import data
from keras_ae import model_dir
from keras_ae import models
import environment  # bench/environment.py, beside this file

_RUNS_DIR = flags.DEFINE_string("runs_dir", os.path.join(tempfile.gettempdir(), "anomaly-bench"),
                                "bench/anomaly.py's --runs_dir.")
_CLASSES = flags.DEFINE_list("classes", [str(c) for c in range(10)], "Normal classes.")
_OUT = flags.DEFINE_string("out", "bench/anomaly-views.json", "Where to write the results.")

PARTS = {"all": slice(0, 8), "restore": slice(0, 4), "recognise": slice(4, 8),
         "upright": slice(0, 1)}


def rescore(run_dir, fashion):
    config, model_file, detector = model_dir.read_run(run_dir)
    model = models.load(model_file)
    views = anomaly.views_of(model, fashion.test_images, detector["score"], 256)
    constants = np.asarray(detector["view_constants"], np.float32)
    anomalous = ~np.isin(fashion.test_labels, [int(c) for c in detector["normal_classes"]])
    return {part: anomaly.auroc(anomaly.combine(views[:, s], constants[s]).numpy(), anomalous)
            for part, s in PARTS.items()}


def main(argv):
    del argv  # environment.command() records the flags
    fashion = data.load("fashion_mnist", download=False)
    results = {"command": environment.command(), "machine": environment.machine(), "runs": []}
    for normal_class in _CLASSES.value:
        areas = rescore(os.path.join(_RUNS_DIR.value, f"restoration-{normal_class}"), fashion)
        results["runs"].append({"normal_class": int(normal_class), **areas})
        print(json.dumps(results["runs"][-1]), flush=True)
    with open(_OUT.value, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    app.run(main)
