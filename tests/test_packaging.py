"""What `pip install` puts on a machine: the package keras_ae alone, and its commands."""

import os
import subprocess
import sys
import zipfile

import pytest

from tests.test_train import ROOT

pytestmark = pytest.mark.slow


def test_the_wheel_holds_only_keras_ae_and_names_the_commands(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), ROOT],
        check=True, capture_output=True, timeout=600,
    )
    (wheel,) = tmp_path.glob("keras_ae-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == {"keras_ae"}
    assert "keras_ae/commands/train.py" in names and "keras_ae/variants/vae/recipe.py" in names
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    for line in ("keras-ae-train = keras_ae.commands.train:run",
                 "keras-ae-export = keras_ae.commands.export:run",
                 "keras-ae-client = keras_ae.commands.client:run"):
        assert line in scripts, scripts


@pytest.mark.parametrize(
    "command, flags, message",
    [
        ("keras-ae-train", ["--variant=deep"], "train.py: error: --variant: unknown value 'deep'"),
        ("keras-ae-export", ["--model_dir=.", "--export_base=x", "--formats=onnx"],
         "export: error: --formats: unknown value 'onnx'"),
        ("keras-ae-client", [], "export.client: error: name at least one image file"),
    ],
)
def test_the_installed_commands_run(command, flags, message, tmp_path):
    path = os.path.join(os.path.dirname(sys.executable), command)
    assert os.path.exists(path), f"{command} is not installed next to {sys.executable}"
    result = subprocess.run([path, *flags], capture_output=True, text=True, cwd=tmp_path,
                            timeout=300)
    assert result.returncode in (1, 2) and message in result.stderr, result.stderr[-2000:]
    assert os.listdir(tmp_path) == []
