r"""Exports a trained run: flags → ExportConfig → keras_ae.export.export_run.

    python -m export --model_dir=runs/conv-fashion_mnist --export_base=exports \
        --formats=saved_model,tflite --quantize=float32,float16,dynamic,int8

writes `exports/conv-fashion_mnist/<next version>/` (SavedModel, tflite/,
export_report.json) and prints one line per file. A bad flag or unreadable data
gives a one-line error and exit status 2; a run or version that can't be
exported, or an export that fails its checks, exit status 1. Either way no
version is published.
"""

import sys

from absl import app
from absl import flags

from keras_ae import commands
from keras_ae import config as config_lib
from keras_ae import data as data_lib
from keras_ae import export

FLAGS = flags.FLAGS
Export = config_lib.ExportConfig

flags.DEFINE_string("model_dir", None, "The train.py run to export.", required=True)
flags.DEFINE_string(
    "export_base", None,
    "Directory of exported models; TF Serving's base_path is EXPORT_BASE/MODEL_NAME.",
    required=True,
)
flags.DEFINE_string("model_name", None, "Served model name. Default: the model_dir's name.")
flags.DEFINE_integer("version", None, "Version number. Default: one past the highest present.")
flags.DEFINE_list("formats", list(Export.formats), "Any of: saved_model, tflite.")
flags.DEFINE_list(
    "quantize", list(Export.quantize),
    "TFLite flavours, any of: float32, float16, dynamic (int8 weights), int8 (full integer).",
)
flags.DEFINE_bool("overwrite", False, "Replace --version if it exists.")
flags.DEFINE_integer("eval_examples", None, "Test images to check exports on. Default: all, "
                     "up to 64 MiB of them as float32.")
flags.DEFINE_integer(
    "calibration_examples", Export.calibration_examples,
    "Training images that calibrate full-integer quantization.",
)
flags.DEFINE_integer("seed", Export.seed, "Seed of the calibration sample.")
flags.DEFINE_float(
    "anomaly_threshold", None,
    "A run trained with --normal_classes: the threshold is_anomaly decides by. Default: "
    "the one calibrated in training (anomaly.json).",
)


def main(argv):
    if len(argv) > 1:
        sys.exit(f"export: unexpected arguments {argv[1:]}; flags look like --name=value")
    try:
        config = Export(**{
            name: FLAGS[name].value for name in Export.__dataclass_fields__
        })
        report = export.export_run(FLAGS.model_dir, config)
    except config_lib.ConfigError as e:
        commands.fail("export", 2, f"--{e.field}: {e.message}")
    except data_lib.DataError as e:
        commands.fail("export", 2, e)
    except export.ExportError as e:
        commands.fail("export", 1, e)
    print(export.summarize(report))


def run():
    """The console script's entry point."""
    app.run(main)
