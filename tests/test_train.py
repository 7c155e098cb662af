"""train.py end to end: the command line in real processes, and every variant
under both kinds of strategy in process, through `keras_ae.training.train` as
train.py calls it."""

import dataclasses
import json
import os
import subprocess
import sys

from absl import flags
import keras
import numpy as np
import pytest

from keras_ae import config as config_lib
from keras_ae import data
from keras_ae import distribute
from keras_ae import export
from keras_ae import models
from keras_ae import variants
from keras_ae import training
from keras_ae.commands import train as train_command

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_train(*flags, timeout=600):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "train.py"), *flags],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )


def tiny_run_config(model_dir, tiny_mnist_dir, variant="linear", batch_size=32,
                    train_examples=None, seed=0, **train):
    """A run on the tiny dataset; `train` sets TrainConfig fields."""
    return config_lib.RunConfig(
        data=config_lib.DataConfig(dataset="mnist", data_dir=tiny_mnist_dir, download=False,
                                   batch_size=batch_size, train_examples=train_examples,
                                   seed=seed),
        model=config_lib.ModelConfig(variant=variant, latent_dim=2 if "latent_dim" in
                                     models.option_names(variant) else None),
        train=config_lib.TrainConfig(model_dir=str(model_dir), **{"epochs": 1, **train}),
    )


def assert_test_mse_recomputes(metrics, model_dir, data_dir):
    """test_mse agrees with an independent evaluation of the saved checkpoint."""
    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    test = data.load("mnist", data_dir=data_dir, download=False).test_images / 255.0
    recomputed = np.mean((model.predict(test, verbose=0) - test) ** 2)
    np.testing.assert_allclose(metrics["test_mse"], recomputed, rtol=1e-5)
    return test


# --- The command line, in real processes ------------------------------------


@pytest.mark.slow
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
    test = assert_test_mse_recomputes(metrics, model_dir, tiny_mnist_dir)
    assert metrics["test_mse"] < np.mean((test - test.mean(axis=0)) ** 2), (
        "worse than predicting the mean image"
    )
    # No temporary files left behind by the atomic writes.
    assert not [f for f in os.listdir(model_dir) if ".tmp" in f]


@pytest.mark.slow
def test_a_bad_flag_fails_in_one_line_exit_2_and_writes_nothing(tiny_mnist_dir, tmp_path):
    model_dir = tmp_path / "run"
    result = run_train("--variant=deep", f"--data_dir={tiny_mnist_dir}",
                       f"--model_dir={model_dir}")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("train.py:")]
    assert errors == [
        "train.py: error: --variant: unknown value 'deep'; valid values: "
        "contractive, conv, denoising, draem, linear, restoration, sparse, vae"
    ], result.stderr[-2000:]
    assert not model_dir.exists()


@pytest.mark.slow
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


@pytest.mark.slow
def test_conv_on_fashion_mnist_beats_the_optimal_linear_code_and_exports(tmp_path):
    """The README's main job (two epochs, in process) on a quarter of the
    training images: conv on real Fashion-MNIST under the mirrored strategy
    (two replicas here), then exported to float32 and full-int8 TFLite. The
    command line (train.py, and with --export_base) is tested above, and the
    SavedModel in every variant's battery.

    PCA with 32 components, fitted on the same images, is the best any linear
    32-dim code can do; computed here from the data, not typed in (measured
    conv 0.0123, PCA 0.0152; 0.0109 with a third of the images).
    """
    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        pytest.fail("needs Debian's dataset-fashion-mnist: apt-get install dataset-fashion-mnist")
    model_dir = str(tmp_path / "conv")
    config = config_lib.RunConfig(
        config_lib.DataConfig(dataset="fashion_mnist", download=False, train_examples=15000),
        config_lib.ModelConfig(variant="conv"),
        config_lib.TrainConfig(model_dir=model_dir, epochs=2),
    )
    metrics = training.train(config, distribute.get_strategy("mirrored"), verbose=0)
    assert metrics["replicas"] == 2

    # Its exports, checked on 1,000 test images: float files within tolerance
    # or nothing is published; full int8 small and nearly as good.
    report = export.export_run(model_dir, config_lib.ExportConfig(
        str(tmp_path / "exports"), formats="tflite", quantize=("float32", "int8"),
        eval_examples=1000))
    assert report["eval_examples"] == 1000
    int8 = report["files"]["tflite/reconstruct_int8.tflite"]
    assert int8["size_vs_float32"] <= 0.30, int8["size_vs_float32"]
    assert int8["test_mse_increase"] <= 0.10, int8["test_mse_increase"]

    fashion = data.load("fashion_mnist", download=False, train_examples=15000)
    train = fashion.train_images.reshape(15000, -1) / 255.0
    test = fashion.test_images.reshape(10000, -1) / 255.0
    mean = train.mean(axis=0)
    components = np.linalg.svd(train - mean, full_matrices=False)[2][:32]
    projected = (test - mean) @ components.T @ components + mean
    pca_mse = np.mean((projected - test) ** 2)
    assert metrics["test_mse"] < pca_mse, (metrics["test_mse"], pca_mse)


# --- Flags → config, in process ---------------------------------------------


@pytest.fixture
def parse():
    """Parses train.py's flags and returns `make_configs()`, as main() does."""
    def parse(*argv):
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["train.py", *argv])
        return train_command.make_configs()

    yield parse
    flags.FLAGS.unparse_flags()


@pytest.mark.parametrize(
    "argv, field, message",
    [
        (["--variant=deep"], "variant", "contractive, conv, denoising, draem, linear, restoration"),
        (["--strategy=fast"], "strategy", "default, one_device, mirrored"),
        (["--dataset=my pictures"], "dataset", "mnist, fashion_mnist, kmnist, cifar10, folder"),
        (["--dataset=folder"], "data_dir", "--data_dir=DIR"),
        (["--image_size=64"], "image_size", "HEIGHT,WIDTH"),
        (["--image_size=64,x"], "image_size", "must be integers"),
        (["--channels=2"], "channels", "1 (grey) or 3 (RGB)"),
        (["--dataset=folder", "--data_dir=d", "--test_fraction=1"], "test_fraction", "(0, 1)"),
        (["--test_dir=d"], "test_dir", "applies to --dataset=folder only"),
        (["--dataset=folder", "--data_dir=d", "--image_key=x"], "image_key",
         "applies to TensorFlow Datasets names"),
        (["--dataset=mnist", "--train_split=train[:10%]"], "train_split",
         "other than mnist"),
        (["--epochs=0"], "epochs", "positive integer"),
        (["--batch_size=-4"], "batch_size", "positive integer"),
        (["--latent_dim=0"], "latent_dim", "positive integer"),
        (["--cpu_devices=0"], "cpu_devices", "positive integer"),
        (["--noise_stddev=-0.1"], "noise_stddev", ">= 0"),
        (["--masking_noise=1"], "masking_noise", "below 1, e.g. 0.25"),
        (["--rectangles=1.5"], "rectangles", "from 0 to 1, e.g. 0.5"),
        (["--paste_at_place=2"], "paste_at_place", "all of the pastes; give a share from 0 to 1"),
        (["--learning_rate=0"], "learning_rate", "> 0"),
        (["--upsampling=bilinear", "--variant=conv"], "upsampling", "nearest, transpose"),
        (["--upsampling=nearest"], "upsampling", "does not apply to variant 'linear'"),
        (["--export_base=never-written", "--quantize=int4"], "quantize", "float32, float16"),
        (["--learning_rate_schedule=step"], "learning_rate_schedule", "constant, cosine, warmup"),
    ],
)
def test_bad_flags_name_the_flag_and_the_valid_values(parse, argv, field, message):
    with pytest.raises(config_lib.ConfigError) as error:
        parse(*argv)
    assert error.value.field == field and message in error.value.message, error.value


def test_flags_make_the_config_and_the_export_config(parse):
    config, export_config = parse("--variant=conv", "--epochs=3", "--seed=7")
    assert (config.model.variant, config.train.epochs, config.data.seed) == ("conv", 3, 7)
    assert config.train.model_dir == os.path.join("runs", "conv-mnist")
    assert export_config is None
    _, export_config = parse("--export_base=out", "--quantize=int8", "--seed=7")
    assert (export_config.export_base, export_config.quantize, export_config.seed) == (
        "out", ("int8",), 7)
    config, _ = parse("--dataset=fashion_mnist", "--normal_classes=1,trouser",
                      "--validation_fraction=0.2", "--anomaly_fpr=0.05", "--anomaly_score=top_k")
    assert (config.anomaly.normal_classes, config.anomaly.validation_fraction,
            config.anomaly.anomaly_fpr, config.anomaly.anomaly_score) == (
                ("1", "trouser"), 0.2, 0.05, "top_k")


def test_the_commands_turn_tensorflows_onednn_kernels_on():
    # conftest imports keras_ae.commands before TensorFlow, as train.py does.
    # TensorFlow alone leaves them off on CPUs without AVX-512 VNNI (an AMD
    # EPYC with AVX2), where this fails if the commands stop turning them on.
    from tensorflow.python.util import _pywrap_util_port

    assert _pywrap_util_port.IsMklEnabled()


def test_an_unreachable_tpu_is_a_tpu_flag_error():
    config = config_lib.RunConfig(
        data=config_lib.DataConfig(), model=config_lib.ModelConfig(),
        train=config_lib.TrainConfig(model_dir="unused", strategy="tpu"),
    )
    with pytest.raises(config_lib.ConfigError, match="no TPU found on this machine") as error:
        train_command.make_strategy(config)
    assert error.value.field == "tpu"


def test_a_batch_that_does_not_split_across_replicas_is_refused_before_writing(
        tiny_mnist_dir, tmp_path):
    config = tiny_run_config(tmp_path / "run", tiny_mnist_dir, batch_size=5, strategy="mirrored")
    with pytest.raises(config_lib.ConfigError, match="use a multiple of 2") as error:
        training.train(config, distribute.get_strategy("mirrored"), verbose=0)
    assert error.value.field == "batch_size"
    assert not (tmp_path / "run").exists()


# --- Every variant under both kinds of strategy, in process -----------------

# What each variant adds to metrics.json and to the run's figures.
VARIANT_OUTPUTS = {
    "linear": ([], []),
    "conv": ([], []),
    "denoising": (["test_psnr_noisy", "test_psnr_denoised"], ["denoising.png"]),
    "vae": (["test_neg_elbo", "test_reconstruction_nll", "test_kl"],
            ["samples.png", "latent_manifold.png", "latent_scatter.png"]),
    "sparse": (["mean_code_activation", "fraction_code_near_zero"], []),
    "contractive": (["mean_jacobian_frobenius"], []),
    "restoration": ([], []),
    "draem": ([], []),
}


def assert_writes_the_variants_outputs(variant, metrics, model_dir):
    keys, figures = VARIANT_OUTPUTS[variant]
    for key in ["test_mse", *keys]:
        assert np.isfinite(metrics[key]), key
    for figure in ["reconstructions.png", *figures]:
        assert os.path.getsize(os.path.join(model_dir, figure)) > 0, figure


@pytest.mark.parametrize("variant", list(VARIANT_OUTPUTS))
def test_config_json_has_every_default_that_ran_written_in(variant, tmp_path):
    config = training.resolve(tiny_run_config(tmp_path, "unused", variant, seed=7))
    recipe = variants.recipe(variant)
    assert config.data.noise_stddev == config.data.eval_noise_stddev == recipe.noise_stddev
    assert config.data.masking_noise == recipe.masking_noise == 0  # conv's is on defects only
    # Written in by the data (`with_data`):
    assert (config.data.rectangles, config.data.grain_at_place, config.data.paste_at_place,
            config.data.cells) == (None, None, None, None)
    if not recipe.simulated_anomalies:
        for field, value in (("rectangles", 0.5), ("grain_at_place", True),
                             ("paste_at_place", 0.5), ("cells", True)):
            asked = tiny_run_config(tmp_path, "unused", variant)
            asked = dataclasses.replace(asked, data=dataclasses.replace(asked.data,
                                                                        **{field: value}))
            with pytest.raises(config_lib.ConfigError, match=f"variant {variant!r} is not") as e:
                training.resolve(asked)
            assert e.value.field == field
    assert config.train.learning_rate == recipe.learning_rate
    assert config.train.learning_rate_schedule == recipe.learning_rate_schedule
    taken = set(models.option_names(variant)) - {"seed"}  # the run's seed
    stored = json.loads(config.to_json())["model"]
    assert {k for k, v in stored.items() if v is not None} == taken | {"variant"}
    # What ran is what the model was built with; its own seed is the run's.
    model = training.build_model(config, distribute.get_strategy("default"), (8, 8, 1), 1)
    expected = config.model.options()
    if "seed" in models.option_names(variant):
        expected["seed"] = 7
    assert model.arguments == expected


def test_given_options_win_over_the_defaults(tmp_path):
    config = config_lib.RunConfig(
        data=config_lib.DataConfig(noise_stddev=0.1),
        model=config_lib.ModelConfig("sparse", sparsity="kl", filters=[8, 16]),
        train=config_lib.TrainConfig(str(tmp_path), learning_rate_schedule="cosine"),
    )
    resolved = training.resolve(config)
    assert (resolved.data.noise_stddev, resolved.data.eval_noise_stddev) == (0.1, 0.1)
    assert resolved.train.learning_rate_schedule == "cosine"
    assert resolved.model.filters == (8, 16)
    assert resolved.model.sparsity_weight == 1e-3  # the KL penalty's default weight
    assert training.resolve(resolved) == resolved


def test_cosine_schedule_decays_the_learning_rate_to_zero(tiny_mnist_dir, tmp_path):
    config = tiny_run_config(tmp_path, tiny_mnist_dir, batch_size=64, epochs=3,
                             learning_rate_schedule="cosine", learning_rate=0.01)
    training.train(config, distribute.get_strategy("default"), verbose=0)
    optimizer = keras.saving.load_model(tmp_path / "model.keras").optimizer
    assert int(optimizer.iterations) == 3 * 256 // 64
    assert float(optimizer.learning_rate) < 1e-6  # 0.01 at the start


def test_warmup_cosine_rises_over_the_first_epoch_then_decays_to_zero(tmp_path):
    config = training.resolve(config_lib.RunConfig(
        config_lib.DataConfig(), config_lib.ModelConfig("linear"),
        config_lib.TrainConfig(str(tmp_path), epochs=3, learning_rate=0.01,
                               learning_rate_schedule="warmup_cosine")))
    model = training.build_model(config, distribute.get_strategy("default"), (4, 4, 1), 10)
    schedule = model.optimizer._learning_rate  # the schedule, called with the step
    rates = [float(schedule(step)) for step in (0, 5, 10, 20, 30)]
    assert rates[0] == 0 and rates[1] == pytest.approx(0.005) and rates[2] == pytest.approx(0.01)
    assert rates[3] == pytest.approx(0.005, rel=1e-3) and rates[4] < 1e-6


# --- Steps per execution and XLA ------------------------------------------------


def test_automatic_steps_per_execution_divide_the_epoch():
    assert training.auto_steps_per_execution(3000) == 100  # the tutorial: 60,000 / 20
    assert training.auto_steps_per_execution(938) == 67  # 60,000 / 64 = 2 * 7 * 67
    assert training.auto_steps_per_execution(97) == 97
    assert training.auto_steps_per_execution(101) == 1  # prime above the cap
    for steps in range(1, 300):
        chosen = training.auto_steps_per_execution(steps)
        assert steps % chosen == 0 and chosen <= training.AUTO_STEPS_PER_EXECUTION


def test_automatic_steps_per_execution_train_exactly_as_one_step_at_a_time(
        tiny_mnist_dir, tmp_path):
    # 256 images at batch 16: 16 steps an epoch, 16 per execution. Were an
    # execution to cross an epoch's end, the next epoch's batches would shift.
    strategy = distribute.get_strategy("default")
    runs = {}
    for name, steps_per_execution in (("auto", None), ("one", 1)):
        config = tiny_run_config(tmp_path / name, tiny_mnist_dir, batch_size=16, epochs=3,
                                 steps_per_execution=steps_per_execution)
        runs[name] = training.train(config, strategy, verbose=0)
        runs[name]["weights"] = keras.saving.load_model(
            tmp_path / name / "model.keras").get_weights()
    assert (runs["auto"]["steps_per_execution"], runs["one"]["steps_per_execution"]) == (16, 1)
    assert json.load(open(tmp_path / "auto" / "config.json"))["train"][
        "steps_per_execution"] == 16
    for auto, one in zip(runs["auto"]["weights"], runs["one"]["weights"]):
        np.testing.assert_allclose(auto, one, rtol=1e-5, atol=1e-6)
    assert runs["auto"]["train_loss_by_epoch"] == pytest.approx(
        runs["one"]["train_loss_by_epoch"], rel=1e-5)

    config = tiny_run_config(tmp_path / "five", tiny_mnist_dir, batch_size=16,
                             steps_per_execution=5)
    with pytest.raises(config_lib.ConfigError, match="5 does not divide the 16 steps of an "
                                                     "epoch.*1, 2, 4, 8, 16"):
        training.train(config, strategy, verbose=0)
    assert not (tmp_path / "five").exists()


def test_jit_compile_trains_with_xla_where_xla_can(tiny_mnist_dir, tmp_path):
    strategy = distribute.get_strategy("default")
    config = tiny_run_config(tmp_path / "nearest", tiny_mnist_dir, variant="conv",
                             jit_compile=True)
    with pytest.raises(config_lib.ConfigError, match="ResizeNearestNeighborGrad.*"
                                                     "--upsampling=transpose"):
        training.train(config, strategy, verbose=0)
    assert not (tmp_path / "nearest").exists()
    config = dataclasses.replace(config, model=dataclasses.replace(
        config.model, upsampling="transpose"), train=dataclasses.replace(
        config.train, model_dir=str(tmp_path / "transpose")))
    metrics = training.train(config, strategy, verbose=0)
    assert metrics["jit_compile"] is True and np.isfinite(metrics["test_mse"])
