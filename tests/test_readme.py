"""README.md's commands and CI agree."""

import os
import re

import pytest

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


@pytest.mark.slow  # a fresh process that starts TensorFlow
def test_readmes_way_to_load_a_runs_model_works_in_a_fresh_process(tmp_path):
    """README's `python -c` that loads `model.keras`, run as it stands on a
    saved model in a new process: the variants' classes must be registered."""
    import subprocess
    import sys

    import numpy as np

    from keras_ae import models

    readme = open(os.path.join(ROOT, "README.md")).read()
    command = re.search(r'^python -c "(import keras_ae.*model\.keras.*)"$', readme, re.M).group(1)
    model = models.build("conv", (8, 8, 1), latent_dim=2, filters=(4,))
    path = tmp_path / "runs" / "conv-fashion_mnist" / "model.keras"
    path.parent.mkdir(parents=True)
    model.save(path)
    check = "; print(float(model.predict(__import__('numpy').ones((1, 8, 8, 1)), verbose=0).sum()))"
    ran = subprocess.run([sys.executable, "-c", command + check], cwd=tmp_path,
                         capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr[-2000:]
    expected = model.predict(np.ones((1, 8, 8, 1)), verbose=0).sum()
    assert abs(float(ran.stdout.strip().splitlines()[-1]) - expected) < 1e-5
