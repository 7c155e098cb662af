"""Exporting a trained run: the TF Serving layout, the report, the commands, the client.

The per-variant checks (signatures in a fresh process, LiteRT against Keras)
are in the battery, tests/test_case.py; here a real train.py run is exported.
"""

import base64
import dataclasses
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile

import keras
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from keras_ae import config as config_lib
from keras_ae import data
from keras_ae import distribute
from keras_ae import export
from keras_ae import training
from keras_ae.export import checks
from keras_ae.export import tflite
from keras_ae.export import versions
from tests.test_case import saved_model_cli
from tests.test_train import ROOT, run_train

QUANTIZED = ("float16", "dynamic", "int8")


def run_module(module, *args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )


@pytest.fixture(scope="module")
def trained_run(tiny_mnist_dir, tmp_path_factory):
    """A conv model trained as train.py trains it, on the tiny dataset: its model_dir."""
    model_dir = str(tmp_path_factory.mktemp("runs") / "tiny-conv")
    config = config_lib.RunConfig(
        data=config_lib.DataConfig(dataset="mnist", data_dir=tiny_mnist_dir, download=False,
                                   batch_size=32),
        model=config_lib.ModelConfig(variant="conv", latent_dim=4),
        train=config_lib.TrainConfig(model_dir=model_dir, epochs=3, learning_rate=3e-3),
    )
    training.train(config, distribute.get_strategy("default"), verbose=0)
    return model_dir


@pytest.fixture(scope="module")
def exported_by_command(trained_run, tmp_path_factory):
    """`python -m export` of the trained run, every format and flavour: the
    export base and the process's result."""
    base = tmp_path_factory.mktemp("exports")
    return base, run_module("export", f"--model_dir={trained_run}", f"--export_base={base}")


@pytest.mark.slow
def test_export_command_publishes_a_checked_tf_serving_version(trained_run, exported_by_command):
    base, result = exported_by_command
    assert result.returncode == 0, result.stderr[-3000:]
    version = base / "tiny-conv" / "1"  # model name: the run's folder
    assert os.listdir(base / "tiny-conv") == ["1"], "staging folder left behind"
    assert str(version) in result.stdout

    # What TF Serving reads, as its own tool lists it.
    listing, _ = saved_model_cli(str(version))
    images, latent = ("DT_FLOAT", "-1, 28, 28, 1"), ("DT_FLOAT", "-1, 4")
    assert listing["serving_default"] == {
        "inputs": {"images": images},
        "outputs": {"reconstruction": images, "reconstruction_error": ("DT_FLOAT", "-1")},
    }
    assert listing["encode"] == {"inputs": {"images": images}, "outputs": {"latent": latent}}
    assert listing["decode"] == {"inputs": {"latent": latent}, "outputs": {"images": images}}
    assert listing["serving_bytes"] == {
        "inputs": {"image_bytes": ("DT_STRING", "-1")},
        "outputs": listing["serving_default"]["outputs"],
    }

    report = json.loads((version / export.REPORT_FILE).read_text())
    tflite_files = sorted(
        f"tflite/{endpoint}_{flavour}.tflite"
        for endpoint in ("reconstruct", "encode", "decode")
        for flavour in ("float32", *QUANTIZED)
    )
    assert sorted(report["files"]) == ["saved_model", *tflite_files]
    assert sorted(os.listdir(version / "tflite")) == [f[len("tflite/"):] for f in tflite_files]
    for name, entry in report["files"].items():
        if name == "saved_model":
            assert set(entry["signatures"]) == {
                "serving_default", "encode", "decode", "serving_bytes"}
        else:
            assert entry["size_bytes"] == (version / name).stat().st_size
        if name == "saved_model" or entry["quantize"] == "float32":
            assert max(entry["max_scaled_diff"].values()) <= export.FLOAT_TOLERANCE, name
        else:
            assert entry["size_vs_float32"] < 0.6, name
    int8 = report["files"]["tflite/reconstruct_int8.tflite"]
    assert int8["inputs"]["images"]["dtype"] == "int8"
    assert int8["inputs"]["images"]["shape"] == [1, 28, 28, 1]
    assert int8["inputs"]["images"]["shape_signature"] == [-1, 28, 28, 1]
    # The same model on the same test images as train.py's own evaluation.
    metrics = json.loads(open(os.path.join(trained_run, "metrics.json")).read())
    np.testing.assert_allclose(report["keras_test_mse"], metrics["test_mse"], rtol=1e-5)
    float32 = report["files"]["tflite/reconstruct_float32.tflite"]
    np.testing.assert_allclose(float32["test_mse"], metrics["test_mse"], rtol=1e-4)


@pytest.mark.slow
def test_versions_count_up_and_an_existing_one_needs_overwrite(trained_run, tmp_path):
    base = str(tmp_path / "exports")
    only_saved_model = config_lib.ExportConfig(base, model_name="m", formats="saved_model")
    only_tflite = config_lib.ExportConfig(base, model_name="m", formats="tflite",
                                          quantize="float32")
    assert export.export_run(trained_run, only_saved_model)["path"] == f"{base}/m/1"
    assert export.export_run(trained_run, only_tflite)["path"] == f"{base}/m/2"
    assert not os.path.exists(f"{base}/m/1/tflite")
    assert sorted(os.listdir(f"{base}/m/2")) == [export.REPORT_FILE, "tflite"]

    marker = f"{base}/m/1/marker"
    open(marker, "w").close()
    version_1 = config_lib.ExportConfig(base, model_name="m", version=1, formats="saved_model")
    with pytest.raises(export.ExportError, match="version 1 already exists.*--overwrite"):
        export.export_run(trained_run, version_1)
    assert os.path.exists(marker), "refused, yet touched version 1"

    export.export_run(trained_run, dataclasses.replace(only_tflite, version=1, overwrite=True))
    assert sorted(os.listdir(f"{base}/m/1")) == [export.REPORT_FILE, "tflite"]
    assert sorted(os.listdir(f"{base}/m")) == ["1", "2"]


@pytest.mark.slow
def test_an_export_that_fails_its_checks_publishes_nothing(trained_run, tmp_path, monkeypatch):
    monkeypatch.setattr(checks, "FLOAT_TOLERANCE", -1.0)  # no export can pass
    config = config_lib.ExportConfig(str(tmp_path), model_name="m", formats="saved_model")
    with pytest.raises(export.ExportError, match="differs from the Keras model"):
        export.export_run(trained_run, config)
    assert os.listdir(tmp_path / "m") == []


def test_the_summary_counts_decisions_apart_from_the_values():
    """A flipped decision (a difference of 1) is not the file's largest
    difference: the values' is, and the flips are counted; too many leave a
    quantized file out."""
    def entry(flipped):  # the share of images decided otherwise
        return {"size_bytes": 1000,
                "max_abs_diff": {"serving_default/anomaly_map": 3e-4,
                                 "serving_default/is_anomaly": float(flipped > 0)},
                "mse_vs_keras": {"serving_default/anomaly_map": 1e-9,
                                 "serving_default/is_anomaly": flipped}}
    report = {"variant": "draem", "model_dir": "run", "path": "exports/run/1",
              "keras_test_mse": 0.01, "eval_examples": 24,
              "files": {"saved_model": entry(0.0), "tflite/r.tflite": entry(1 / 24)}}
    first, saved, tflite_file = export.summarize(report).splitlines()
    assert saved == "  saved_model: 1,000 bytes, max |diff| vs Keras 0.0003"
    assert tflite_file == ("  tflite/r.tflite: 1,000 bytes, max |diff| vs Keras 0.0003, is_anomaly "
                           "other than Keras' on 1 of 24 images")
    # A quantized file that decides otherwise too often is left out, and said so.
    assert checks.decided_otherwise(entry(1 / 24), "dynamic", 24) is None
    assert checks.decided_otherwise(entry(3 / 24), "float32", 24) is None  # held to tolerance
    assert checks.decided_otherwise({"mse_vs_keras": {"encode/latent": 0.5}}, "int8", 24) is None
    why = checks.decided_otherwise(entry(3 / 24), "int8", 24)
    assert why == ("int8 quantization: is_anomaly other than the Keras model's on 3 of 24 "
                   "test images, more than 10%")
    report["tflite_left_out"] = {"tflite/r_int8.tflite": why}
    assert export.summarize(report).splitlines()[-1] == f"  tflite/r_int8.tflite: left out, {why}"


def test_publish_replaces_a_version_only_when_complete(tmp_path):
    path = str(tmp_path / "m" / "3")
    staging = versions.staging_dir(path)
    assert os.path.dirname(staging) == os.path.dirname(path)
    assert not os.path.basename(staging).isdigit()  # TF Serving ignores it
    open(os.path.join(staging, "new"), "w").close()
    os.makedirs(path)
    open(os.path.join(path, "old"), "w").close()
    with pytest.raises(versions.VersionError, match="appeared while exporting"):
        versions.publish(staging, path)
    assert os.listdir(path) == ["old"]
    versions.publish(staging, path, overwrite=True)
    assert os.listdir(path) == ["new"]
    assert os.listdir(os.path.dirname(path)) == ["3"]


@pytest.mark.parametrize(
    "options, field, message",
    [
        ({"formats": "onnx"}, "formats", "unknown value 'onnx'; valid values: saved_model, tflite"),
        ({"quantize": "int4"}, "quantize", "unknown value 'int4'; valid values: float32"),
        ({"version": 0}, "version", "must be a positive integer"),
        ({"model_name": "a/b"}, "model_name", "'a/b' must be a plain folder name"),
    ],
)
def test_bad_export_options_name_the_flag(options, field, message):
    with pytest.raises(config_lib.ConfigError) as error:
        config_lib.ExportConfig("exports", **options)
    assert error.value.field == field and message in error.value.message, error.value


@pytest.mark.slow
def test_bad_flags_fail_in_one_line_and_write_nothing(trained_run, tmp_path):
    base = tmp_path / "exports"
    result = run_module("export", f"--model_dir={trained_run}", f"--export_base={base}",
                        "--formats=onnx")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("export: error:")]
    assert errors == ["export: error: --formats: unknown value 'onnx'; valid values: "
                      "saved_model, tflite"], result.stderr[-2000:]
    assert not base.exists()


@pytest.mark.slow
def test_no_trained_run_or_a_file_as_base_fail_clearly(trained_run, tmp_path):
    result = run_module("export", f"--model_dir={tmp_path}", f"--export_base={tmp_path / 'x'}")
    assert result.returncode == 1
    assert f"{tmp_path} holds no trained run" in result.stderr
    assert not (tmp_path / "x").exists()
    base = tmp_path / "file"
    base.write_text("not a directory")
    with pytest.raises(export.ExportError, match="is a file; pass a directory"):
        export.export_run(trained_run, config_lib.ExportConfig(str(base)))
    assert base.read_text() == "not a directory"


@pytest.mark.slow
def test_train_py_refuses_a_bad_export_base_before_training(tiny_mnist_dir, tmp_path):
    base = tmp_path / "file"
    base.write_text("")
    model_dir = tmp_path / "run"
    result = run_train(f"--data_dir={tiny_mnist_dir}", f"--model_dir={model_dir}",
                       f"--export_base={base}")
    assert result.returncode == 2 and "is a file" in result.stderr
    assert not model_dir.exists()


class _StandInServer(http.server.BaseHTTPRequestHandler):
    """TF Serving's REST :predict, row format, over a SavedModel (no TF Serving
    binary installs here): `instances` in, `predictions` out."""

    signatures = None

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        signature = self.signatures[body.get("signature_name", "serving_default")]
        specs = signature.structured_input_signature[1]
        # An instance names its inputs, or is the value of the only one; binary
        # values come as {"b64": ...}.
        rows = [
            instance if isinstance(instance, dict) and "b64" not in instance
            else {next(iter(specs)): instance}
            for instance in body["instances"]
        ]
        inputs = {
            name: tf.constant(
                [base64.b64decode(row[name]["b64"]) if isinstance(row[name], dict)
                 else row[name] for row in rows], spec.dtype)
            for name, spec in specs.items()
        }
        outputs = {k: v.numpy().tolist() for k, v in signature(**inputs).items()}
        predictions = [
            {k: outputs[k][i] for k in outputs} for i in range(len(body["instances"]))
        ]
        answer = json.dumps({"predictions": predictions}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.mark.slow
def test_client_builds_the_request_and_reads_the_answer(trained_run, tiny_mnist_dir, tmp_path):
    export.export_run(trained_run, config_lib.ExportConfig(
        str(tmp_path), model_name="tiny", formats="saved_model"))
    pixels = data.load("mnist", data_dir=tiny_mnist_dir, download=False).test_images[0]
    image_file = str(tmp_path / "image.png")
    Image.fromarray(pixels[..., 0]).save(image_file)
    other_size = str(tmp_path / "large.jpg")  # RGB, 45x60: resized by the model
    Image.fromarray(np.zeros((45, 60, 3), np.uint8)).save(other_size)

    result = run_module("export.client", image_file, "--request_only")
    assert result.returncode == 0, result.stderr[-2000:]
    request = json.loads(result.stdout)
    assert request["signature_name"] == "serving_bytes"
    with open(image_file, "rb") as f:
        assert base64.b64decode(request["instances"][0]["b64"]) == f.read()

    _StandInServer.signatures = tf.saved_model.load(str(tmp_path / "tiny" / "1")).signatures
    server = http.server.HTTPServer(("127.0.0.1", 0), _StandInServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run_module(
            "export.client", image_file, other_size,
            f"--server=http://127.0.0.1:{server.server_port}",
            "--model_name=tiny", f"--reconstruction={tmp_path / 'out.png'}",
        )
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr[-2000:]
    model = keras.saving.load_model(os.path.join(trained_run, "model.keras"))
    x = pixels[None] / 255.0
    reconstruction = model.predict(x, verbose=0)
    error = float(np.mean((reconstruction - x) ** 2))
    printed, printed_other = result.stdout.strip().splitlines()
    assert printed.startswith(f"{image_file}: reconstruction_error ")
    assert abs(float(printed.split()[-1]) - error) <= 6e-7, (printed, error)
    black = model.predict(np.zeros((1, 28, 28, 1)), verbose=0)  # the JPEG, resized
    assert printed_other.startswith(f"{other_size}: reconstruction_error ")
    assert abs(float(printed_other.split()[-1]) - np.mean(black**2)) <= 1e-6
    written = np.asarray(Image.open(tmp_path / "out.png"), np.float32)
    np.testing.assert_allclose(written, 255 * reconstruction[0, ..., 0], atol=0.51)


def test_the_client_starts_without_tensorflow():
    code = "import sys, export.client; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.slow
def test_client_says_when_the_server_is_down(tmp_path):
    image_file = str(tmp_path / "image.png")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image_file)
    result = run_module("export.client", image_file, "--server=http://127.0.0.1:9",
                        "--model_name=m", "--timeout=5")
    assert result.returncode == 1
    assert "cannot reach http://127.0.0.1:9/v1/models/m:predict" in result.stderr


@pytest.mark.slow
def test_an_export_killed_part_way_publishes_no_version(trained_run, tmp_path):
    base = tmp_path / "exports"
    process = subprocess.Popen(
        [sys.executable, "-m", "export", f"--model_dir={trained_run}", f"--export_base={base}",
         "--model_name=m"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:  # kill it once the SavedModel is written, while it converts to TFLite
        deadline = time.monotonic() + 300
        while not list(base.glob("m/.staging-*/tflite")):
            assert process.poll() is None, "the export ended before it could be killed"
            assert time.monotonic() < deadline, "no TFLite conversion within 300 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert [p.name for p in (base / "m").iterdir() if p.name.isdigit()] == []

    # The next export cleans up the abandoned staging folder.
    config = config_lib.ExportConfig(str(base), model_name="m", formats="tflite",
                                     quantize="float32")
    assert export.export_run(trained_run, config)["path"] == str(base / "m" / "1")
    assert os.listdir(base / "m") == ["1"]


def test_versions_put_back_a_version_an_overwrite_moved_aside(tmp_path):
    # A killed `--overwrite` between its two renames: version 2 moved aside.
    os.makedirs(tmp_path / "m" / ".staging-2-host-1-x.replaced")
    aside = tmp_path / "m" / f".staging-2-{socket.gethostname()}-{2**22 + 1}-{'0' * 32}.replaced"
    os.makedirs(aside)
    (aside / "saved_model.pb").write_text("old")
    versions.remove_abandoned(str(tmp_path / "m"))
    assert (tmp_path / "m" / "2" / "saved_model.pb").read_text() == "old"
    # Names that are not this module's own are left alone.
    assert (tmp_path / "m" / ".staging-2-host-1-x.replaced").exists()


def test_a_model_with_nan_weights_is_not_exported(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    model = keras.saving.load_model(run / "model.keras")
    weights = model.get_weights()
    weights[0][...] = np.nan
    model.set_weights(weights)
    model.save(run / "model.keras")
    with pytest.raises(export.ExportError, match="NaN or infinite weights.*--learning_rate"):
        export.export_run(str(run), config_lib.ExportConfig(str(tmp_path / "exports")))
    assert not (tmp_path / "exports").exists()


def test_a_model_whose_weights_another_version_shaped_is_not_exported(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    # As a version whose layers differ: the file's config builds a wider code than its weights.
    with zipfile.ZipFile(trained_run + "/model.keras") as old, \
            zipfile.ZipFile(run / "model.keras", "w") as new:
        for name in old.namelist():
            content = old.read(name)
            if name == "config.json":
                assert b'"latent_dim": 4' in content
                content = content.replace(b'"latent_dim": 4', b'"latent_dim": 8')
            new.writestr(name, content)
    with pytest.raises(export.ExportError, match="another version.*or train it again"):
        export.export_run(str(run), config_lib.ExportConfig(str(tmp_path / "exports")))
    assert not (tmp_path / "exports").exists()


# --- Bad requests: a clear error, and the model goes on serving ---------------


@pytest.fixture(scope="module")
def exported(exported_by_command):
    """The published version's path."""
    base, result = exported_by_command
    assert result.returncode == 0, result.stderr[-3000:]
    return str(base / "tiny-conv" / "1")


@pytest.mark.slow
@pytest.mark.parametrize(
    "request_, message",
    [
        ({"images": np.zeros((1, 27, 28, 1), np.float32)},
         r"Shape of tensor images \[1,27,28,1\] is not compatible with expected shape \[\?,28,28,1\]"),
        ({"images": np.zeros((28, 28, 1), np.float32)},
         r"Shape of tensor images \[28,28,1\] is not compatible"),
        ({"images": np.zeros((1, 28, 28, 1), np.float64)}, "expected to be a float tensor but is a double"),
        ({"images": np.zeros((1, 28, 28, 1), np.uint8)}, "expected to be a float tensor but is a uint8"),
        ({"pixels": np.zeros((1, 28, 28, 1), np.float32)}, "missing a required argument: 'images'"),
    ],
)
def test_saved_model_refuses_a_bad_request_and_keeps_serving(exported, request_, message):
    serve = tf.saved_model.load(exported).signatures["serving_default"]
    with pytest.raises((tf.errors.InvalidArgumentError, TypeError), match=message):
        serve(**{k: tf.constant(v) for k, v in request_.items()})
    good = np.random.default_rng(0).random((3, 28, 28, 1)).astype(np.float32)
    outputs = serve(images=tf.constant(good))
    np.testing.assert_allclose(
        outputs["reconstruction_error"].numpy(),
        np.mean((outputs["reconstruction"].numpy() - good) ** 2, axis=(1, 2, 3)), rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("flavour", ["float32", "int8"])
@pytest.mark.parametrize(
    "request_, message",
    [
        ({"images": np.zeros((1, 27, 28, 1), np.float32)},
         r"input 'images' has shape \[1, 27, 28, 1\]; this signature takes \[batch, 28, 28, 1\]"),
        ({"images": np.zeros((28, 28, 1), np.float32)}, r"has shape \[28, 28, 1\]"),
        ({"images": np.zeros((1, 28, 28, 1), np.uint8)},
         "has dtype uint8; pass floats .*divide uint8 pixels by 255"),
        ({"latent": np.zeros((1, 4), np.float32)},
         r"inputs \['latent'\] given; this signature takes \['images'\]"),
    ],
)
def test_tflite_refuses_a_bad_request_and_keeps_serving(exported, flavour, request_, message):
    path = os.path.join(exported, "tflite", f"reconstruct_{flavour}.tflite")
    good = np.random.default_rng(0).random((3, 28, 28, 1)).astype(np.float32)
    expected = tflite.run(path, "serving_default", {"images": good})
    runner = tflite.signature_runner(path, "serving_default")
    with pytest.raises(ValueError, match=message):
        tflite.check_inputs(runner, request_)
    with pytest.raises(Exception):  # LiteRT's own answer, less clear
        runner(**request_)
    # The same interpreter, after the bad request, still answers correctly.
    details = runner.get_input_details()["images"]
    answer = runner(images=tflite.quantize(good, details))["reconstruction"]
    answer = tflite.dequantize(answer, runner.get_output_details()["reconstruction"])
    np.testing.assert_allclose(answer, expected["reconstruction"], atol=1e-6)
