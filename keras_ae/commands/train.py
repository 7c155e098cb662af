"""Trains an autoencoder: flags → config → strategy → keras_ae.training.train.

    python train.py --variant=conv --strategy=mirrored --dataset=fashion_mnist

With --export_base it then exports the trained model as `python -m export`
does (keras_ae.export.export_run).

Bad flags give a one-line error naming the flag, exit status 2, and nothing
written to --model_dir.
"""

import dataclasses
import os
import sys

from absl import app
from absl import flags

from keras_ae import anomaly
from keras_ae import choices
from keras_ae import commands
from keras_ae import config as config_lib
from keras_ae import data as data_lib
from keras_ae import distribute
from keras_ae import export
from keras_ae import training

FLAGS = flags.FLAGS

Data, Model, Train = config_lib.DataConfig, config_lib.ModelConfig, config_lib.TrainConfig
Anomaly = config_lib.AnomalyConfig
# Options a variant's recipe (keras_ae/recipes.py) or model constructor
# (keras_ae/models/) sets when the flag is not given; config.json records them.
RECIPE = " (default: the variant's recipe, keras_ae/recipes.py)"
MODEL = " (default: the model's, keras_ae/models/VARIANT.py)"

flags.DEFINE_string(
    "variant", Model.variant, f"Autoencoder variant: {', '.join(choices.VARIANT_OPTIONS)}. "
    f"Default: {choices.DEFAULT_VARIANT}, or with --normal_classes {choices.DETECTOR_VARIANT} "
    "(the anomaly detector).",
)
flags.DEFINE_string(
    "strategy", Train.strategy, f"tf.distribute strategy: {', '.join(choices.STRATEGIES)}."
)
flags.DEFINE_string("tpu", None, "TPU name or grpc:// address for --strategy=tpu.")
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", 1,
    "Split the CPU into this many logical devices, so that --strategy=mirrored "
    "runs several replicas without GPUs (for testing distributed code).",
)
flags.DEFINE_string(
    "dataset", Data.dataset,
    f"Dataset: {', '.join(choices.BUILT_IN_DATASETS)} (local files first); folder (image files "
    "under --data_dir); or any TensorFlow Datasets image dataset, e.g. svhn_cropped.",
)
flags.DEFINE_string(
    "data_dir", None,
    "--dataset=folder: the folder of images (PNG, JPEG, BMP, GIF, found recursively; "
    "top-level subfolders are labels). Otherwise searched first for a local copy "
    "(IDX .gz files, NAME.npz), and TensorFlow Datasets' data directory.",
)
flags.DEFINE_list(
    "image_size", None,
    "HEIGHT,WIDTH every image is resized to (bilinear). Default: the data's own size.",
)
flags.DEFINE_integer("channels", None, "1 (grey) or 3 (RGB). Default: the data's own.")
flags.DEFINE_bool(
    "crop_to_aspect_ratio", Data.crop_to_aspect_ratio,
    "Resize the largest centred crop of --image_size's aspect ratio: no distortion.",
)
flags.DEFINE_string(
    "test_dir", None,
    "--dataset=folder: the test images' folder. Default: --test_fraction of --data_dir.",
)
flags.DEFINE_string(
    "test_mask_dir", None,
    "--dataset=folder: ground-truth masks of the test images, <defect>/<name>_mask.png as in "
    "MVTec AD; a detector then reports pixel AUROC and PRO. Default: ground_truth/ beside "
    "--test_dir, if there.",
)
flags.DEFINE_float(
    "test_fraction", Data.test_fraction,
    "--dataset=folder without --test_dir: the share of images held out for testing, "
    "chosen by a hash of each file's path (adding files moves none between splits).",
)
flags.DEFINE_bool(
    "skip_bad_images", Data.skip_bad_images,
    "--dataset=folder: leave out files that do not decode (counted in metrics.json, "
    "named in the log) instead of failing.",
)
flags.DEFINE_enum(
    "input", Data.input, choices.INPUTS,
    "memory: decode the training images into memory. stream (a folder, or a TFDS dataset "
    "other than the four built-in ones): read them from their files batch by batch, each "
    "worker only its share. auto: stream those whose decoded training images exceed "
    "--memory_limit_mib.",
)
flags.DEFINE_string(
    "cache_dir", None,
    "--dataset=folder, streamed: decode and shape each training image once into this "
    "folder and read it from there every epoch (for formats slow to decode).",
)
flags.DEFINE_integer(
    "memory_limit_mib", None,
    "Decoded size (MiB) above which --input=auto streams, and within which a streamed "
    "run's test images are kept. Default: a quarter of this machine's memory.",
)
flags.DEFINE_list(
    "normal_classes", None,
    "Anomaly detection: train on these classes only (label ids, e.g. 0,3, or a folder's "
    "class names); calibrate a threshold on held-out normal images; test on every class.",
)
flags.DEFINE_float(
    "validation_fraction", Anomaly.validation_fraction,
    "With --normal_classes: the share of normal training images held out to calibrate on.",
)
flags.DEFINE_float(
    "anomaly_fpr", Anomaly.anomaly_fpr,
    "With --normal_classes: the false-positive rate on normal images the threshold is "
    "set to.",
)
flags.DEFINE_enum(
    "anomaly_score", Anomaly.anomaly_score, choices.ANOMALY_SCORES,
    "With --normal_classes: mse (each image's mean squared error) or top_k (the mean of "
    "its worst 10% of squared pixel errors, for small defects)" + RECIPE + ".",
)
flags.DEFINE_float(
    "anomaly_map_sigma", Anomaly.anomaly_map_sigma,
    "With --normal_classes: the Gaussian (sigma in pixels) that smooths the served "
    "anomaly_map; 0 leaves it unsmoothed. Default: the recipe's share of the image's "
    "shorter side (1/16; the restoration detector's 0).",
)
flags.DEFINE_string(
    "image_key", None, "TensorFlow Datasets: the image feature, where there are several."
)
flags.DEFINE_string(
    "train_split", Data.train_split, "TensorFlow Datasets: training split, e.g. train[:90%]."
)
flags.DEFINE_string("test_split", Data.test_split, "TensorFlow Datasets: test split.")
flags.DEFINE_bool(
    "download", Data.download, "Let TensorFlow Datasets download when no local copy exists."
)
flags.DEFINE_integer("train_examples", None, "Use only the first N training examples.")
flags.DEFINE_integer("epochs", Train.epochs, "Passes over the training data." + RECIPE)
flags.DEFINE_integer(
    "batch_size", Data.batch_size, "Global batch size, split across all replicas."
)
flags.DEFINE_float("learning_rate", None, "Adam learning rate" + RECIPE + ".")
flags.DEFINE_string(
    "learning_rate_schedule", None,
    "constant; cosine: from --learning_rate down to 0 at the last step; warmup_cosine: up "
    "from 0 over the first epoch, then cosine" + RECIPE + ".",
)
# The model options, each None unless given: then the model's default.
for define, name, help_ in [
    (flags.DEFINE_integer, "latent_dim", "Size of the code"),
    (flags.DEFINE_string, "architecture", "denoising, vae, sparse, contractive: conv or dense"),
    (flags.DEFINE_list, "filters", "Conv networks: channels of each stride-2 level, e.g. 32,64"),
    (flags.DEFINE_list, "decoder_filters", "restoration: the decoder's channels per level"),
    (flags.DEFINE_string, "upsampling", "Conv decoders: nearest or transpose"),
    (flags.DEFINE_float, "beta", "vae: weight of the KL term"),
    (flags.DEFINE_string, "reconstruction", "vae: likelihood, bernoulli or gaussian"),
    (flags.DEFINE_string, "sparsity", "sparse: penalty, l1 (ReLU code) or kl (sigmoid code)"),
    (flags.DEFINE_float, "sparsity_weight", "sparse: weight of the penalty, by penalty"),
    (flags.DEFINE_float, "sparsity_target", "sparse: target mean activation rho for kl"),
    (flags.DEFINE_float, "contractive_weight", "contractive: lambda of ||J||_F^2"),
    (flags.DEFINE_string, "jacobian", "contractive: exact or estimate (Hutchinson)"),
    (flags.DEFINE_integer, "jacobian_samples", "contractive: samples per image for estimate"),
    (flags.DEFINE_float, "view_weight", "restoration: weight of the view head's cross-entropy"),
]:
    define(name, None, help_ + MODEL + ".")
flags.DEFINE_float(
    "noise_stddev", None, "Stddev of Gaussian noise added to inputs on the fly" + RECIPE + "."
)
flags.DEFINE_float(
    "eval_noise_stddev", None,
    "Noise of the test inputs for the PSNR metrics and denoising.png "
    "(default: --noise_stddev; 0 skips them).",
)
flags.DEFINE_integer(
    "seed", Data.seed,
    "Seed of weights, shuffling, noise and the model's own random draws.",
)
flags.DEFINE_string(
    "model_dir", None, "Output directory. Default: runs/VARIANT-DATASET."
)
flags.DEFINE_integer(
    "steps_per_execution", None,
    "Training steps per call into the graph; must divide an epoch's steps. Default: the "
    "largest divisor of an epoch's steps up to 100 (recorded in metrics.json).",
)
flags.DEFINE_bool(
    "jit_compile", Train.jit_compile,
    "Compile the training step with XLA (Keras leaves it off on CPUs and under "
    "tf.distribute; see BUILD.md).",
)
flags.DEFINE_bool(
    "deterministic", Train.deterministic,
    "Turn on TensorFlow's op determinism: a run, and a resumed run, repeat exactly.",
)
flags.DEFINE_bool(
    "mixed_precision", Train.mixed_precision,
    "Compute in 16 bits (float16 on GPUs, bfloat16 on TPUs and CPUs); variables, "
    "code and output stay float32.",
)
flags.DEFINE_bool(
    "overwrite", False,
    "Delete the run in --model_dir (config, checkpoint, backup, metrics, logs, figures) "
    "and train afresh, when it is finished or has another configuration.",
)
flags.DEFINE_string(
    "export_base", None,
    "After training, export to EXPORT_BASE/MODEL_DIR_NAME/<next version>/ "
    "(see python -m export).",
)
flags.DEFINE_list(
    "formats", list(config_lib.ExportConfig.formats),
    "With --export_base: any of saved_model, tflite.",
)
flags.DEFINE_list(
    "quantize", list(config_lib.ExportConfig.quantize),
    "With --export_base: TFLite flavours, any of float32, float16, dynamic, int8.",
)


def _config_from_flags(config_class, **values):
    """`config_class` with each field from the flag of the same name, or `values`."""
    fields = dataclasses.fields(config_class)
    return config_class(**{
        f.name: values[f.name] if f.name in values else FLAGS[f.name].value for f in fields
    })


def _integers(name):
    """A list flag's values as integers; None when not given."""
    values = FLAGS[name].value
    try:
        return None if values is None else tuple(int(value) for value in values)
    except ValueError:
        raise config_lib.ConfigError(
            name, f"must be integers, e.g. 64,48; got {','.join(values)}"
        ) from None


def make_config():
    """The RunConfig the flags describe; raises ConfigError on a bad value."""
    config = config_lib.RunConfig(
        data=_config_from_flags(config_lib.DataConfig, image_size=_integers("image_size")),
        model=_config_from_flags(config_lib.ModelConfig, filters=_integers("filters"),
                                 decoder_filters=_integers("decoder_filters")),
        train=_config_from_flags(config_lib.TrainConfig, model_dir=FLAGS.model_dir or "runs"),
        anomaly=_config_from_flags(config_lib.AnomalyConfig),
    )
    if FLAGS.model_dir:
        return config
    default_dir = os.path.join("runs", f"{config.model.variant}-{config.data.dataset}")
    return dataclasses.replace(config, train=dataclasses.replace(config.train,
                                                                 model_dir=default_dir))


def make_configs():
    """The run's config, and the export's (None without --export_base), from the
    flags; raises ConfigError naming the flag at fault."""
    config = make_config()
    if _CPU_DEVICES.value < 1:
        raise config_lib.ConfigError("cpu_devices", "must be a positive integer")
    export_config = None
    if FLAGS.export_base:
        export_config = config_lib.ExportConfig(
            export_base=FLAGS.export_base, formats=FLAGS.formats,
            quantize=FLAGS.quantize, seed=config.data.seed,
        )
    return config, export_config


def make_strategy(config):
    """The run's strategy; a TPU that cannot be reached is a ConfigError."""
    try:
        return distribute.get_strategy(config.train.strategy, tpu=config.train.tpu)
    except ValueError as e:  # e.g. no TPU at --tpu
        field = "tpu" if config.train.strategy == "tpu" else "strategy"
        raise config_lib.ConfigError(field, str(e)) from e


def main(argv):
    if len(argv) > 1:
        sys.exit(f"train.py: unexpected arguments {argv[1:]}; flags look like --name=value")
    try:
        config, export_config = make_configs()
        if _CPU_DEVICES.value > 1:
            distribute.split_cpu(_CPU_DEVICES.value)
        strategy = make_strategy(config)
        if export_config:
            export.target_dir(config.train.model_dir, export_config)  # fail before training
        data = training.load_data(config)
        metrics = training.train(config, strategy, data, overwrite=FLAGS.overwrite)
    except distribute.LOST_WORKER_ERRORS as e:
        if config.train.strategy != "multi_worker_mirrored":
            raise
        commands.fail(
            "train.py", 1,
            f"lost a worker ({type(e).__name__}: {e.message.splitlines()[0]}); restart "
            "every worker with the same command: training resumes from the last backup "
            f"in {config.train.model_dir}",
        )
    except (training.TrainingDiverged, anomaly.CalibrationError) as e:
        commands.fail("train.py", 1, e)
    except config_lib.ConfigError as e:
        commands.fail("train.py", 2, f"--{e.field}: {e.message}")
    except (data_lib.DataError, export.ExportError) as e:
        commands.fail("train.py", 2, e)

    if not distribute.is_chief(strategy):
        print(f"{metrics['variant']}: this worker is done; the chief wrote the run")
        return
    print(summary(metrics, config.train.model_dir))
    if export_config:
        _export(config.train.model_dir, export_config, data)


def summary(metrics, model_dir):
    """The run's one-line summary: what trained, how well, how fast, where to;
    for a detector, how well it tells the test images apart and by what."""
    detector = ""
    if "anomaly_threshold" in metrics:
        area = metrics.get("test_auroc")
        rates = [f"{name.upper()} {metrics[f'test_{name}_at_threshold']:.1%}"
                 for name in ("fpr", "tpr") if metrics.get(f"test_{name}_at_threshold") is not None]
        detector = (f"; detector: test AUROC {'undefined' if area is None else f'{area:.4f}'}, "
                    f"threshold {metrics['anomaly_threshold']:.4g}"
                    + (f" (test {', '.join(rates)})" if rates else ""))
        if "test_pixel_auroc" in metrics:
            detector += "; " + ", ".join(
                f"{name} {'undefined' if metrics[key] is None else f'{metrics[key]:.4f}'}"
                for name, key in (("pixel AUROC", "test_pixel_auroc"), ("PRO", "test_pro")))
    return (
        f"{metrics['variant']} on {metrics['dataset']}: test_mse {metrics['test_mse']:.5f} "
        f"after {metrics['epochs_trained']} epoch(s) in {metrics['train_seconds']:.1f} s "
        f"({metrics['train_images_per_second']:,.0f} images/s, "
        f"{metrics['replicas']} replica(s)){detector}; "
        f"checkpoint {os.path.join(model_dir, training.MODEL_FILE)}, "
        f"metrics {os.path.join(model_dir, training.METRICS_FILE)}, "
        f"figure {os.path.join(model_dir, training.FIGURE_FILE)}"
    )


def _export(model_dir, export_config, data):
    """Exports the trained run as `python -m export` would, and prints its report."""
    try:
        report = export.export_run(model_dir, export_config, data)
    except export.ExportError as e:
        commands.fail(
            "train.py", 1,
            f"export failed: {e}\nThe trained model is saved; export it again with: "
            f"python -m export --model_dir={model_dir} "
            f"--export_base={export_config.export_base}",
        )
    print(export.summarize(report))


def run():
    """The console script's entry point."""
    app.run(main)
