"""Does a streamed run's memory grow with its test split? Peak RSS, two splits.

    python bench/memory.py [--images=20000] [--memory_limit_mib=512]

Writes a folder of `--images` generated 128x128 RGB PNG files (once, under
--folder), then runs train.py on it three times, streamed (`--input=stream`),
one epoch of `linear` on the same 2,000 training images, holding out 50%, 10%
and 0.5% of the folder as the test split. Each run is its own process, so each
`peak_memory_mib` (metrics.json: the process's peak resident memory over the
run, evaluation included) is its own. Writes both, with the machine, to --out.
"""

import json
import os
import subprocess
import sys

from keras_ae import commands  # noqa: E402,F401  first: TensorFlow's environment, as train.py's

from absl import app
from absl import flags

import environment  # bench/environment.py, beside this file

_IMAGES = flags.DEFINE_integer("images", 20000, "PNG files in the generated folder.")
_LIMIT = flags.DEFINE_integer("memory_limit_mib", 512, "train.py's --memory_limit_mib.")
_FOLDER = flags.DEFINE_string("folder", "/tmp/keras_ae-bench-memory", "Where to write.")
_OUT = flags.DEFINE_string("out", os.path.join(os.path.dirname(__file__), "memory.json"),
                           "Results file.")
TEST_FRACTIONS = (0.5, 0.1, 0.005)
SIZE = (128, 128)


def run(pictures, test_fraction):
    """train.py streaming `pictures` with `test_fraction` held out: its metrics."""
    model_dir = os.path.join(_FOLDER.value, f"run-{test_fraction}")
    command = [sys.executable, os.path.join(os.path.dirname(__file__), "..", "train.py"),
               "--variant=linear", "--dataset=folder", f"--data_dir={pictures}",
               f"--test_fraction={test_fraction}", "--input=stream", "--train_examples=2000",
               "--epochs=1", "--batch_size=128", f"--memory_limit_mib={_LIMIT.value}",
               f"--model_dir={model_dir}", "--overwrite"]
    subprocess.run(command, check=True)
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    return {key: metrics[key] for key in
            ("test_images", "train_images", "input", "peak_memory_mib", "test_mse")}


def main(argv):
    del argv
    pictures = environment.write_pictures(
        os.path.join(_FOLDER.value, f"pictures-{_IMAGES.value}"), _IMAGES.value, SIZE)
    runs = {str(fraction): run(pictures, fraction) for fraction in TEST_FRACTIONS}
    peaks = [r["peak_memory_mib"] for r in runs.values()]
    results = {
        "command": environment.command(),
        "machine": environment.machine(),
        "images": _IMAGES.value, "image_shape": [*SIZE, 3],
        "decoded_mib": _IMAGES.value * SIZE[0] * SIZE[1] * 3 / 2**20,
        "memory_limit_mib": _LIMIT.value,
        "runs": runs,
        "peak_difference_mib": max(peaks) - min(peaks),
    }
    with open(_OUT.value, "w") as f:
        f.write(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    app.run(main)
