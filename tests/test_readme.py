"""README.md's commands and CI agree."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _readme_commands():
    readme = open(os.path.join(ROOT, "README.md")).read()
    return re.findall(r"```bash\n(.+?)\n```", readme)


def test_readme_opens_with_two_commands_and_ci_runs_the_second():
    setup_and_train, setup_and_test = _readme_commands()[:2]
    assert "train.py --variant=conv --strategy=mirrored" in setup_and_train
    assert "dataset-fashion-mnist" in setup_and_train
    assert '".[test]"' in setup_and_test and "pytest tests" in setup_and_test
    ci = open(os.path.join(ROOT, ".ci", "run")).read().splitlines()
    assert setup_and_test in ci, ".ci/run must run README's test command verbatim"
