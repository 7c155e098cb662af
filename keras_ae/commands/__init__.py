"""The command-line tools: flags → config → a `keras_ae` library call.

    train.py / keras-ae-train       keras_ae.commands.train
    python -m export / keras-ae-export        keras_ae.commands.export
    python -m export.client / keras-ae-client keras_ae.commands.client

Each module defines its flags when imported and is meant to be run, not
imported by library code; each has `run()`, the console script's entry point.
"""

import sys


def fail(program, status, message):
    """Ends the command: `PROGRAM: error: MESSAGE` on stderr, exit `status`."""
    print(f"{program}: error: {message}", file=sys.stderr)
    sys.exit(status)
