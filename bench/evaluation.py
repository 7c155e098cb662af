"""Does a detector's evaluation stream? Peak RSS with 40 and 400 test images,
and its time against the exported serving_default's over the same images.

    python bench/evaluation.py [--size=384] [--counts=40,400]

Writes MVTec AD's layout of --size x --size RGB photographs-to-be (a noisy
grey part; a bright square spot and its mask on half the test images) under
--folder, 64 good training images and each of --counts test images, then runs
train.py on each as a user would (conv, `--normal_classes=good`, one epoch),
each its own process, so each `peak_memory_mib` (and evaluation's own,
`evaluation_peak_memory_mib`) is its own. The SavedModel of
the largest run (serving_default, written by `keras_ae.export.saved_model`)
then scores the same test images in batches of the run's, timed; the results
go to --out with the machine.
"""

import json
import os
import subprocess
import sys
import time

from keras_ae import commands  # noqa: E402,F401  first: TensorFlow's environment, as train.py's

from absl import app
from absl import flags
import numpy as np
from PIL import Image

import environment  # bench/environment.py, beside this file

_SIZE = flags.DEFINE_integer("size", 384, "Image side in pixels.")
_COUNTS = flags.DEFINE_list("counts", ["40", "400"], "Test images of each run.")
_FOLDER = flags.DEFINE_string("folder", "/tmp/keras_ae-bench-evaluation", "Where to write.")
_OUT = flags.DEFINE_string("out", os.path.join(os.path.dirname(__file__), "evaluation.json"),
                           "Results file.")
TRAIN_IMAGES = 64
BATCH_SIZE = 16
RUN_FLAGS = ["--variant=conv", "--normal_classes=good", "--validation_fraction=0.25",
             "--anomaly_fpr=0.1", "--epochs=1", f"--batch_size={BATCH_SIZE}"]


def write_layout(root, size, test_images, seed=0):
    """train/good, test/good, test/spot and ground_truth/spot/<name>_mask.png."""
    if os.path.isdir(root):
        return root
    rng = np.random.default_rng(seed)

    def save(path, pixels):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8)).save(path)

    def part():
        return rng.uniform(80, 140, (size, size, 3))

    for i in range(TRAIN_IMAGES):
        save(f"{root}/train/good/{i:03d}.png", part())
    for i in range(test_images // 2):
        save(f"{root}/test/good/{i:03d}.png", part())
        image, mask = part(), np.zeros((size, size), np.uint8)
        row, column = rng.integers(size // 8, size - size // 8, 2)
        radius = size // 24
        mask[row - radius:row + radius, column - radius:column + radius] = 255
        image[mask > 0] = 250
        save(f"{root}/test/spot/{i:03d}.png", image)
        save(f"{root}/ground_truth/spot/{i:03d}_mask.png", mask)
    return root


def run(root, model_dir):
    """train.py on the layout at `root`: its metrics."""
    command = [sys.executable, os.path.join(os.path.dirname(__file__), "..", "train.py"),
               "--dataset=folder", f"--data_dir={root}/train", f"--test_dir={root}/test",
               *RUN_FLAGS, f"--model_dir={model_dir}", "--overwrite"]
    subprocess.run(command, check=True)
    with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics = json.load(f)
    return {key: metrics[key] for key in
            ("test_images", "peak_memory_mib", "evaluation_peak_memory_mib",
             "evaluation_seconds", "train_seconds",
             "test_auroc", "test_pixel_auroc", "test_pixel_auroc_bound", "test_pro",
             "test_pro_bound")}


def serving_seconds(root, model_dir):
    """Seconds the run's SavedModel serving_default takes over its test images."""
    import tensorflow as tf  # after the runs, which are processes of their own

    from keras_ae import anomaly
    from keras_ae import data
    from keras_ae import model_dir as model_dir_lib
    from keras_ae import models
    from keras_ae.export import saved_model

    run_config, model_file, detector = model_dir_lib.read_run(model_dir)
    path = os.path.join(model_dir, "saved_model")
    saved_model.write(models.load(model_file), path, detector=anomaly.Detector.from_dict(detector))
    serve = tf.saved_model.load(path).signatures["serving_default"]
    images = data.load(run_config.data).test_images
    serve(images=tf.zeros((BATCH_SIZE, *images.shape[1:])))  # not timed: the first call loads
    start = time.perf_counter()
    for chunk in images.float_chunks(BATCH_SIZE):
        for i in range(0, len(chunk), BATCH_SIZE):
            serve(images=chunk[i:i + BATCH_SIZE])["anomaly_map"].numpy()
    return time.perf_counter() - start


def main(argv):
    del argv
    runs = {}
    for count in map(int, _COUNTS.value):
        root = write_layout(os.path.join(_FOLDER.value, f"layout-{_SIZE.value}-{count}"),
                            _SIZE.value, count)
        runs[str(count)] = run(root, os.path.join(_FOLDER.value, f"run-{count}"))
    largest = str(max(map(int, _COUNTS.value)))
    serving = serving_seconds(os.path.join(_FOLDER.value, f"layout-{_SIZE.value}-{largest}"),
                              os.path.join(_FOLDER.value, f"run-{largest}"))
    def spread(key):
        return max(r[key] for r in runs.values()) - min(r[key] for r in runs.values())

    results = {
        "command": environment.command(),
        "machine": environment.machine(),
        "image_shape": [_SIZE.value, _SIZE.value, 3],
        "train_images": TRAIN_IMAGES,
        "run_flags": RUN_FLAGS,
        "runs": runs,
        "peak_difference_mib": spread("peak_memory_mib"),
        "evaluation_peak_difference_mib": spread("evaluation_peak_memory_mib"),
        "serving_default_seconds": serving,
        "evaluation_over_serving": runs[largest]["evaluation_seconds"] / serving,
    }
    with open(_OUT.value, "w") as f:
        f.write(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    app.run(main)
