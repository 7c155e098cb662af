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
from absl import logging

from keras_ae import anomaly
from keras_ae import commands
from keras_ae import config as config_lib
from keras_ae import data as data_lib
from keras_ae import distribute
from keras_ae import export
from keras_ae import training
from keras_ae.commands import train_flags  # defines the flags

FLAGS = flags.FLAGS


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
        model=_config_from_flags(config_lib.ModelConfig, **{
            name: _integers(name) for name, option in config_lib.MODEL_OPTIONS.items()
            if option.kind == "ints"}),
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
    if train_flags.CPU_DEVICES.value < 1:
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
        if FLAGS.variant is None:
            logging.info("variant: %s, %s; --variant chooses another",
                         *config.default_variant())
        if train_flags.CPU_DEVICES.value > 1:
            distribute.split_cpu(train_flags.CPU_DEVICES.value)
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
        interval = metrics.get("test_auroc_interval")
        detector = (f"; detector: test AUROC {'undefined' if area is None else f'{area:.4f}'}"
                    + (f" (95% interval {interval[0]:.2f}-{interval[1]:.2f})" if interval else "")
                    + f", threshold {metrics['anomaly_threshold']:.4g}"
                    + (f" (test {', '.join(rates)})" if rates else ""))
        if metrics.get("anomaly_expected_fpr"):
            detector += f", expected to flag {metrics['anomaly_expected_fpr']:.1%} of normal images"
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
