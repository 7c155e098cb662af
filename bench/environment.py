"""What every results file records: the machine, its CPU, the versions, the commit.

Imported by the bench commands, beside this file; `bench/report.py` renders
these fields under each table it writes.
"""

import importlib.metadata
import os
import platform
import subprocess
import sys

import numpy as np
from PIL import Image


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine():
    """The machine a figure was measured on, and what ran it."""
    import keras
    import tensorflow as tf

    cpu, flags = "", ""
    if os.path.exists("/proc/cpuinfo"):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and not cpu:
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line
    return {
        "cpu": cpu or platform.processor(),
        "avx512": "avx512f" in flags.split(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "ai_edge_litert": importlib.metadata.version("ai-edge-litert"),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "commit": commit(),
    }


def command():
    """The command line this process was started with, as `python bench/NAME.py ...`
    (absl leaves `sys.argv` whole; `main`'s argv has lost the flags)."""
    return " ".join(["python", os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])


def commit():
    """The repository's HEAD commit, with "+changes" if its tree is modified."""
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "keras_ae"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


def write_pictures(directory, count, size, seed=0):
    """`count` smooth RGB pictures of `size` (height, width) as PNG files in
    `directory` (once: a folder that holds `count` files is kept): quick to
    write, small on disk, and as costly to decode as any PNG of that size."""
    import tensorflow as tf

    if len(os.listdir(directory) if os.path.isdir(directory) else []) == count:
        return directory
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    for start in range(0, count, 1000):
        small = rng.integers(0, 256, (min(1000, count - start), 4, 4, 3))
        pictures = tf.image.resize(small.astype(np.float32), size).numpy()
        for i, picture in enumerate(pictures.astype(np.uint8)):
            Image.fromarray(picture).save(os.path.join(directory, f"{start + i:06d}.png"))
    return directory
