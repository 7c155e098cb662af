"""The command-line tools: flags → config → a `keras_ae` library call.

    train.py / keras-ae-train       keras_ae.commands.train
    python -m export / keras-ae-export        keras_ae.commands.export
    python -m export.client / keras-ae-client keras_ae.commands.client

Each module defines its flags when imported and is meant to be run, not
imported by library code; each has `run()`, the console script's entry point.

Importing this package sets TensorFlow's environment for the process, before
TensorFlow loads (a variable already set wins): its C++ log quiet, and its
oneDNN kernels on. TensorFlow turns those on by itself only on CPUs with
AVX-512 VNNI, BF16 or AMX (Intel's since Cascade Lake); on an AMD EPYC with
AVX2 they train `draem` 1.8 times as fast (BUILD.md, "oneDNN on every CPU").
The benchmarks and the tests import it first, so that they run as the
commands do.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def fail(program, status, message):
    """Ends the command: `PROGRAM: error: MESSAGE` on stderr, exit `status`."""
    print(f"{program}: error: {message}", file=sys.stderr)
    sys.exit(status)
