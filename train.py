"""Trains an autoencoder: flags → config → strategy → keras_ae.training.train.

    python train.py --variant=conv --strategy=mirrored --dataset=fashion_mnist

Bad flags give a one-line error naming the flag, exit status 2, and nothing
written to --model_dir.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TF's INFO/WARNING spam

from absl import app
from absl import flags

import keras_ae
from keras_ae import config as config_lib
from keras_ae import data as data_lib
from keras_ae import distribute
from keras_ae import training

_VARIANT = flags.DEFINE_string(
    "variant", "linear", f"Autoencoder variant: {', '.join(keras_ae.VARIANTS)}."
)
_STRATEGY = flags.DEFINE_string(
    "strategy", "default", f"tf.distribute strategy: {', '.join(distribute.STRATEGIES)}."
)
_TPU = flags.DEFINE_string("tpu", None, "TPU name or grpc:// address for --strategy=tpu.")
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", 1,
    "Split the CPU into this many logical devices, so that --strategy=mirrored "
    "runs several replicas without GPUs (for testing distributed code).",
)
_DATASET = flags.DEFINE_string(
    "dataset", "mnist", f"Dataset: {', '.join(data_lib.DATASETS)}."
)
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None,
    "Directory searched first for a local copy (IDX .gz files, NAME.npz); "
    "also TensorFlow Datasets' data directory.",
)
_DOWNLOAD = flags.DEFINE_bool(
    "download", True, "Let TensorFlow Datasets download when no local copy exists."
)
_TRAIN_EXAMPLES = flags.DEFINE_integer(
    "train_examples", None, "Use only the first N training examples."
)
_EPOCHS = flags.DEFINE_integer("epochs", 10, "Passes over the training data.")
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", 128, "Global batch size, split across all replicas."
)
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
_LATENT_DIM = flags.DEFINE_integer("latent_dim", 32, "Size of the code.")
_ARCHITECTURE = flags.DEFINE_string(
    "architecture", None, "denoising, vae, sparse, contractive: conv (default) or dense."
)
_UPSAMPLING = flags.DEFINE_string(
    "upsampling", None, "Conv decoders: nearest (default) or transpose."
)
_BETA = flags.DEFINE_float("beta", None, "vae: weight of the KL term (default 1).")
_RECONSTRUCTION = flags.DEFINE_string(
    "reconstruction", None, "vae: likelihood, bernoulli (default) or gaussian."
)
_SPARSITY = flags.DEFINE_string(
    "sparsity", None, "sparse: penalty, l1 (default; ReLU code) or kl (sigmoid code)."
)
_SPARSITY_WEIGHT = flags.DEFINE_float(
    "sparsity_weight", None, "sparse: weight of the penalty (default 1e-4 for l1, 1e-3 for kl)."
)
_SPARSITY_TARGET = flags.DEFINE_float(
    "sparsity_target", None, "sparse: target mean activation rho for kl (default 0.05)."
)
_CONTRACTIVE_WEIGHT = flags.DEFINE_float(
    "contractive_weight", None, "contractive: lambda of ||J||_F^2 (default 0.1)."
)
_JACOBIAN = flags.DEFINE_string(
    "jacobian", None, "contractive: exact (default) or estimate (Hutchinson)."
)
_JACOBIAN_SAMPLES = flags.DEFINE_integer(
    "jacobian_samples", None, "contractive: samples per image for estimate (default 1)."
)
_NOISE_STDDEV = flags.DEFINE_float(
    "noise_stddev", None,
    "Stddev of Gaussian noise added to inputs on the fly (default: 0.5 for "
    "denoising, else 0).",
)
_EVAL_NOISE_STDDEV = flags.DEFINE_float(
    "eval_noise_stddev", None,
    "Noise of the test inputs for the PSNR metrics and denoising.png "
    "(default: --noise_stddev; 0 skips them).",
)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of weights, shuffling and noise.")
_MODEL_DIR = flags.DEFINE_string(
    "model_dir", None, "Output directory. Default: runs/VARIANT-DATASET."
)
_STEPS_PER_EXECUTION = flags.DEFINE_integer(
    "steps_per_execution", 1, "Training steps per call into the graph."
)


def make_config():
    """The RunConfig the flags describe; raises ConfigError on a bad value."""
    return config_lib.RunConfig(
        data=config_lib.DataConfig(
            dataset=_DATASET.value,
            data_dir=_DATA_DIR.value,
            train_examples=_TRAIN_EXAMPLES.value,
            batch_size=_BATCH_SIZE.value,
            noise_stddev=_NOISE_STDDEV.value,
            eval_noise_stddev=_EVAL_NOISE_STDDEV.value,
            seed=_SEED.value,
            download=_DOWNLOAD.value,
        ),
        model=config_lib.ModelConfig(
            variant=_VARIANT.value,
            latent_dim=_LATENT_DIM.value,
            architecture=_ARCHITECTURE.value,
            upsampling=_UPSAMPLING.value,
            beta=_BETA.value,
            reconstruction=_RECONSTRUCTION.value,
            sparsity=_SPARSITY.value,
            sparsity_weight=_SPARSITY_WEIGHT.value,
            sparsity_target=_SPARSITY_TARGET.value,
            contractive_weight=_CONTRACTIVE_WEIGHT.value,
            jacobian=_JACOBIAN.value,
            jacobian_samples=_JACOBIAN_SAMPLES.value,
        ),
        train=config_lib.TrainConfig(
            model_dir=_MODEL_DIR.value
            or os.path.join("runs", f"{_VARIANT.value}-{_DATASET.value}"),
            strategy=_STRATEGY.value,
            tpu=_TPU.value,
            epochs=_EPOCHS.value,
            learning_rate=_LEARNING_RATE.value,
            steps_per_execution=_STEPS_PER_EXECUTION.value,
        ),
    )


def main(argv):
    if len(argv) > 1:
        sys.exit(f"train.py: unexpected arguments {argv[1:]}; flags look like --name=value")
    try:
        config = make_config()
        if _CPU_DEVICES.value < 1:
            raise config_lib.ConfigError("cpu_devices", "must be a positive integer")
        if _CPU_DEVICES.value > 1:
            distribute.split_cpu(_CPU_DEVICES.value)
        try:
            strategy = distribute.get_strategy(config.train.strategy, tpu=config.train.tpu)
        except ValueError as e:  # e.g. no TPU at --tpu
            raise config_lib.ConfigError(config.train.strategy == "tpu" and "tpu" or "strategy", str(e)) from e
        metrics = training.train(config, strategy)
    except config_lib.ConfigError as e:
        print(f"train.py: error: --{e.field}: {e.message}", file=sys.stderr)
        sys.exit(2)
    except data_lib.DataError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        sys.exit(2)

    model_dir = config.train.model_dir
    print(
        f"{metrics['variant']} on {metrics['dataset']}: test_mse {metrics['test_mse']:.5f} "
        f"after {metrics['epochs_trained']} epoch(s) in {metrics['train_seconds']:.1f} s "
        f"({metrics['train_images_per_second']:,.0f} images/s, "
        f"{metrics['replicas']} replica(s)); "
        f"checkpoint {os.path.join(model_dir, training.MODEL_FILE)}, "
        f"metrics {os.path.join(model_dir, training.METRICS_FILE)}, "
        f"figure {os.path.join(model_dir, training.FIGURE_FILE)}"
    )


if __name__ == "__main__":
    app.run(main)
