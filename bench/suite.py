"""How long the test suite takes: README's test command, timed, its slowest tests.

    python bench/suite.py [--marks="not slow"]

Runs `python -m pytest tests -n 2 --dist loadfile --durations=15` (README's and
CI's command, without the install) in this checkout, from the current
environment, and writes the counts, the wall time, pytest's own time and the
slowest 15 to --out (bench/suite.json), with the machine and commit.
"""

import json
import os
import re
import subprocess
import sys
import time

from absl import app
from absl import flags

import environment  # bench/environment.py, beside this file

_MARKS = flags.DEFINE_string("marks", None, "A -m expression, e.g. 'not slow'. Default: all.")
_OUT = flags.DEFINE_string("out", os.path.join(os.path.dirname(__file__), "suite.json"),
                           "Results file.")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = ["-m", "pytest", "tests", "-n", "2", "--dist", "loadfile", "--durations=15"]


def main(argv):
    del argv  # environment.command() records the flags
    command = COMMAND + (["-m", _MARKS.value] if _MARKS.value else [])
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True,
                            text=True)
    wall = time.perf_counter() - start
    summary = result.stdout.strip().splitlines()[-1]
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|skipped|error)",
                                                     summary)}
    slowest = [{"seconds": float(seconds), "test": test.strip()} for seconds, test in
               re.findall(r"^([\d.]+)s (?:call|setup|teardown)\s+(.+)$", result.stdout, re.M)]
    results = {
        "command": environment.command(),
        "pytest": "python " + " ".join(command),
        "machine": environment.machine(),
        "returncode": result.returncode,
        "counts": counts,
        "pytest_seconds": float(re.search(r"in ([\d.]+)s", summary).group(1)),
        "wall_seconds": wall,
        "slowest": slowest,
    }
    with open(_OUT.value, "w") as f:
        f.write(json.dumps(results, indent=2) + "\n")
    print(result.stdout)
    sys.exit(result.returncode)


if __name__ == "__main__":
    app.run(main)
