"""train.py end to end, as a user runs it: a real process, real files."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_ae import config as config_lib
from keras_ae import data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_train(*flags, timeout=600):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "train.py"), *flags],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )


def test_trains_and_writes_the_whole_run(tiny_mnist_dir, tmp_path):
    model_dir = str(tmp_path / "run")
    result = run_train(
        "--variant=conv", "--strategy=mirrored", "--cpu_devices=2",
        f"--data_dir={tiny_mnist_dir}", "--epochs=6", "--batch_size=16",
        "--learning_rate=3e-3", "--latent_dim=8", f"--model_dir={model_dir}",
        "--steps_per_execution=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.stdout.strip().splitlines()[-1]
    for name in ("model.keras", "metrics.json", "reconstructions.png"):
        assert os.path.join(model_dir, name) in summary
    assert os.listdir(os.path.join(model_dir, "logs", "train"))  # TensorBoard events

    config = config_lib.RunConfig.from_json(open(os.path.join(model_dir, "config.json")).read())
    assert config.model.variant == "conv" and config.train.epochs == 6
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert metrics["replicas"] == 2 and metrics["epochs_trained"] == 6
    losses = metrics["train_loss_by_epoch"]
    assert len(losses) == 6 and losses[-1] == metrics["final_train_loss"] < losses[0]
    assert metrics["train_seconds"] > 0
    assert np.isclose(metrics["train_images_per_second"],
                      6 * 256 / metrics["train_seconds"])
    # test_mse agrees with an independent evaluation of the saved checkpoint.
    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    test = data.load("mnist", data_dir=tiny_mnist_dir, download=False).test_images / 255.0
    recomputed = np.mean((model.predict(test, verbose=0) - test) ** 2)
    np.testing.assert_allclose(metrics["test_mse"], recomputed, rtol=1e-5)
    assert metrics["test_mse"] < np.mean((test - test.mean(axis=0)) ** 2), (
        "worse than predicting the mean image"
    )
    # No temporary files left behind by the atomic writes.
    assert not [f for f in os.listdir(model_dir) if ".tmp" in f]


@pytest.mark.parametrize(
    "flags, flag, valid",
    [
        (["--variant=deep"], "--variant", "linear, conv, denoising, vae, sparse, contractive"),
        (["--strategy=fast"], "--strategy", "default, one_device, mirrored"),
        (["--dataset=imagenet"], "--dataset", "mnist, fashion_mnist, kmnist, cifar10"),
        (["--epochs=0"], "--epochs", "positive integer"),
        (["--batch_size=-4"], "--batch_size", "positive integer"),
        (["--latent_dim=0"], "--latent_dim", "positive integer"),
        (["--noise_stddev=-0.1"], "--noise_stddev", ">= 0"),
        (["--learning_rate=0"], "--learning_rate", "> 0"),
        (["--upsampling=bilinear", "--variant=conv"], "--upsampling", "nearest, transpose"),
        (["--upsampling=nearest"], "--upsampling", "does not apply to variant 'linear'"),
        (["--strategy=mirrored", "--cpu_devices=2", "--batch_size=5"],
         "--batch_size", "use a multiple of 2"),
        (["--strategy=tpu"], "--tpu", "no TPU found on this machine"),
        (["--export_base=never-written", "--quantize=int4"], "--quantize", "float32, float16"),
        (["--learning_rate_schedule=step"], "--learning_rate_schedule", "constant, cosine"),
    ],
)
def test_bad_flags_fail_in_one_line_and_write_nothing(tiny_mnist_dir, tmp_path, flags, flag, valid):
    model_dir = tmp_path / "run"
    result = run_train(*flags, f"--data_dir={tiny_mnist_dir}", f"--model_dir={model_dir}")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("train.py:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert flag in errors[0] and valid in errors[0], errors[0]
    assert not model_dir.exists()


def test_missing_data_fails_clearly_and_writes_nothing(tmp_path):
    model_dir = tmp_path / "run"
    result = run_train(
        "--dataset=kmnist", "--nodownload", f"--data_dir={tmp_path / 'empty'}",
        f"--model_dir={model_dir}",
    )
    assert result.returncode == 2
    assert "no local copy" in result.stderr and str(tmp_path / "empty") in result.stderr
    assert not model_dir.exists()


@pytest.mark.slow
def test_conv_on_fashion_mnist_beats_the_optimal_linear_code_and_exports(tmp_path):
    """The README's main job, shortened to one epoch: conv on real Fashion-MNIST,
    then export.

    PCA with 32 components is the best any linear 32-dim code can do; computed
    here from the data, not typed in.
    """
    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        pytest.fail("needs Debian's dataset-fashion-mnist: apt-get install dataset-fashion-mnist")
    model_dir = str(tmp_path / "conv")
    result = run_train(
        "--variant=conv", "--strategy=mirrored", "--dataset=fashion_mnist",
        "--epochs=1", f"--model_dir={model_dir}", f"--export_base={tmp_path / 'exports'}",
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))

    # Its exports, checked on all 10,000 test images: float files within
    # tolerance or nothing is published; full int8 small and nearly as good.
    report = json.load(open(tmp_path / "exports" / "conv" / "1" / "export_report.json"))
    assert report["eval_examples"] == 10000
    int8 = report["files"]["tflite/reconstruct_int8.tflite"]
    assert int8["size_vs_float32"] <= 0.30, int8["size_vs_float32"]
    assert int8["test_mse_increase"] <= 0.10, int8["test_mse_increase"]

    fashion = data.load("fashion_mnist", download=False)
    train = fashion.train_images.reshape(60000, -1) / 255.0
    test = fashion.test_images.reshape(10000, -1) / 255.0
    mean = train.mean(axis=0)
    components = np.linalg.svd(train - mean, full_matrices=False)[2][:32]
    projected = (test - mean) @ components.T @ components + mean
    pca_mse = np.mean((projected - test) ** 2)
    assert metrics["test_mse"] < pca_mse, (metrics["test_mse"], pca_mse)


# What each variant adds to metrics.json and to the run's figures.
VARIANT_OUTPUTS = {
    "linear": ([], []),
    "conv": ([], []),
    "denoising": (["test_psnr_noisy", "test_psnr_denoised"], ["denoising.png"]),
    "vae": (["test_neg_elbo", "test_reconstruction_nll", "test_kl"],
            ["samples.png", "latent_manifold.png", "latent_scatter.png"]),
    "sparse": (["mean_code_activation", "fraction_code_near_zero"], []),
    "contractive": (["mean_jacobian_frobenius"], []),
}


@pytest.mark.parametrize("strategy", ["default", "one_device", "mirrored",
                                      "multi_worker_mirrored"])
@pytest.mark.parametrize("variant", list(VARIANT_OUTPUTS))
def test_every_variant_trains_under_every_strategy_that_runs_here(
        variant, strategy, tiny_mnist_dir, tmp_path):
    model_dir = tmp_path / "run"
    # Every variant exports to both formats, once (the strategy doesn't matter).
    export_flags = [f"--export_base={tmp_path / 'exports'}"] if strategy == "default" else []
    result = run_train(
        f"--variant={variant}", f"--strategy={strategy}", "--cpu_devices=2",
        f"--data_dir={tiny_mnist_dir}", "--train_examples=64", "--epochs=1",
        "--batch_size=32", "--latent_dim=2", f"--model_dir={model_dir}", *export_flags,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.load(open(model_dir / "metrics.json"))
    assert metrics["replicas"] == (2 if strategy == "mirrored" else 1)
    keys, figures = VARIANT_OUTPUTS[variant]
    for key in ["test_mse", *keys]:
        assert np.isfinite(metrics[key]), key
    for figure in ["reconstructions.png", *figures]:
        assert (model_dir / figure).stat().st_size > 0, figure
    if export_flags:
        version = tmp_path / "exports" / "run" / "1"
        assert f"to {version}; Keras test MSE" in result.stdout
        report = json.load(open(version / "export_report.json"))
        assert report["variant"] == variant
        # saved_model plus 3 endpoints x 4 flavours, each checked when written.
        assert len(report["files"]) == 13 and (version / "saved_model.pb").exists()


def test_mixed_precision_and_deterministic_runs(tiny_mnist_dir, tmp_path):
    model_dir = tmp_path / "run"
    result = run_train(
        "--variant=vae", "--mixed_precision", "--deterministic", f"--data_dir={tiny_mnist_dir}",
        "--epochs=2", "--batch_size=32", "--latent_dim=2", f"--model_dir={model_dir}",
        f"--export_base={tmp_path / 'exports'}", "--formats=saved_model",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.load(open(model_dir / "metrics.json"))
    assert metrics["dtype_policy"] == "mixed_bfloat16"  # no GPU here
    assert np.isfinite(metrics["test_mse"]) and np.isfinite(metrics["test_neg_elbo"])
    # Variables stay float32: the float32 export of the checkpoint is published.
    assert (tmp_path / "exports" / "run" / "1" / "saved_model.pb").exists()


def test_cosine_schedule_decays_the_learning_rate_to_zero(tiny_mnist_dir, tmp_path):
    model_dir = tmp_path / "run"
    result = run_train(
        "--variant=linear", "--learning_rate_schedule=cosine", "--learning_rate=0.01",
        f"--data_dir={tiny_mnist_dir}", "--epochs=3", "--batch_size=64",
        f"--model_dir={model_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    optimizer = keras.saving.load_model(model_dir / "model.keras").optimizer
    assert int(optimizer.iterations) == 3 * 256 // 64
    assert float(optimizer.learning_rate) < 1e-6  # 0.01 at the start
