"""The house's rules, held: config declares, kinds of images stay in their
rooms, functions stay short, and the declared choices match the code."""

import ast
import pathlib
import re
import subprocess
import sys

import pytest

import keras_ae
from keras_ae import models
from keras_ae import variants

PACKAGE = pathlib.Path(keras_ae.__file__).parent
# Each kind of `keras_ae.data.image_data.Images`, and the module that defines it.
KINDS = {"ImageArray": "data/image_data.py", "ndarray": "data/image_data.py",
         "ImageFiles": "data/image_files.py", "TfdsRecords": "data/tfds_records.py"}
MOST_LINES = 50


def test_config_imports_nothing_that_imports_tensorflow():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, keras_ae.config; print(' '.join(sys.modules))"],
        capture_output=True, text=True, check=True).stdout.split()
    ours = sorted(name for name in loaded if name.startswith("keras_ae"))
    declarations = [f"keras_ae.variants.{name}" for name in variants.NAMES]
    configs = [f"keras_ae.config.{name}" for name in
               ("anomaly", "checks", "data", "export", "model", "train")]
    assert ours == sorted(["keras_ae", "keras_ae.choices", "keras_ae.config",
                           *configs, "keras_ae.variants", "keras_ae.variants.options",
                           *declarations])
    assert not [name for name in loaded if name.split(".")[0] in ("tensorflow", "keras", "numpy")]


@pytest.mark.slow  # a fresh process that starts TensorFlow
def test_a_variants_model_module_imports_first():
    """Its model module imports `keras_ae.models`, which lists every
    variant's model class: on first use, or this import was circular."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import keras_ae.variants.draem.model as m, keras_ae.models as k; "
         "print(k.VARIANTS['draem'] is m.MODEL)"], capture_output=True, text=True)
    assert loaded.stdout.split() == ["True"], loaded.stderr[-2000:]


def test_declared_model_options_are_the_constructors():
    for variant, options in variants.OPTIONS.items():
        assert [o.name for o in options] == [o for o in models.option_names(variant)
                                             if o != "seed"]
    assert list(variants.OPTIONS) == list(models.VARIANTS) == list(variants.NAMES)
    assert len(variants.NAMES) == 8


def test_kinds_of_images_are_told_apart_only_where_they_are_defined():
    pattern = re.compile(r"isinstance\([^)]*\b(" + "|".join(KINDS) + r")\b")
    found = [f"{path.relative_to(PACKAGE)}: {match.group(0)}"
             for path in PACKAGE.rglob("*.py")
             for match in pattern.finditer(path.read_text())
             if str(path.relative_to(PACKAGE)) != KINDS[match.group(1)]]
    assert found == []


def code_lines(function, lines):
    """Lines of `function` that hold code: not blank, comment or docstring."""
    docstrings = set()
    for node in ast.walk(function):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    first = min([function.lineno] + [d.lineno for d in function.decorator_list])
    return [number for number in range(first, function.end_lineno + 1)
            if number not in docstrings and lines[number - 1].strip()
            and not lines[number - 1].strip().startswith("#")]


def test_strategies_are_told_apart_only_in_distribute():
    pattern = re.compile(r"isinstance\([^)]*Strategy\b")
    found = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
             if path.name != "distribute.py" and pattern.search(path.read_text())]
    assert found == []


def test_no_module_is_longer_than_three_hundred_lines():
    long = [f"{path.relative_to(PACKAGE)}: {len(path.read_text().splitlines())}"
            for path in PACKAGE.rglob("*.py") if len(path.read_text().splitlines()) > 300]
    assert long == []


def test_no_function_is_longer_than_fifty_lines_of_code():
    long = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                count = len(code_lines(node, text.splitlines()))
                if count > MOST_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}: {count}")
    assert long == []


def test_the_line_count_skips_docstrings_comments_and_blanks():
    source = 'def f():\n    """Doc\n    string."""\n\n    # why\n    x = 1\n    return x\n'
    [function] = ast.parse(source).body
    assert code_lines(function, source.splitlines()) == [1, 6, 7]
