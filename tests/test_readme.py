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


def test_every_measured_table_is_rendered_from_its_results_file():
    """README's and BUILD.md's tables are what `bench/report.py` makes of the
    results files (rerun it after a benchmark), and rendering is idempotent."""
    import subprocess
    import sys

    checked = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "report.py"),
                              "--check"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        import report
    finally:
        sys.path.pop(0)
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert "<!-- report:" in readme and report.rendered(readme) == readme
    assert report.rendered(report.rendered(readme)) == readme
