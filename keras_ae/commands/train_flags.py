"""train.py's flags: one per field of the run's config (`keras_ae.config`),
each variant's model options generated from its declaration
(`keras_ae.variants`), and the command's own (`--cpu_devices`, `--overwrite`,
the export's). Defined on import, as absl flags are; read in `train.py`."""

from absl import flags

from keras_ae import choices
from keras_ae import config as config_lib
from keras_ae import variants

Data, Train = config_lib.DataConfig, config_lib.TrainConfig
Anomaly = config_lib.AnomalyConfig
# Options a variant's recipe or model constructor (keras_ae/variants/VARIANT/)
# sets when the flag is not given; config.json records them.
RECIPE = " (default: the variant's recipe, keras_ae/variants/VARIANT/recipe.py)"
MODEL = " (default: the model's, keras_ae/variants/VARIANT/model.py)"

flags.DEFINE_string(
    "variant", None, f"Autoencoder variant: {', '.join(variants.NAMES)}. "
    f"Default: {variants.DEFAULT}; with --normal_classes {variants.DETECTOR}, or on a "
    f"folder with --test_dir (MVTec AD's layout) {variants.DEFECT_DETECTOR}.",
)
flags.DEFINE_string(
    "strategy", Train.strategy, f"tf.distribute strategy: {', '.join(choices.STRATEGIES)}."
)
flags.DEFINE_string("tpu", None, "TPU name or grpc:// address for --strategy=tpu.")
CPU_DEVICES = flags.DEFINE_integer(
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
    "--test_dir (MVTec AD), else inside it (MVTec AD 2), if there.",
)
flags.DEFINE_string(
    "validation_dir", None,
    "--dataset=folder with --normal_classes: normal images photographed apart from the "
    "training images, in class subfolders as under --data_dir (MVTec AD 2's "
    "validation/good/), to calibrate the threshold on. Default: validation/ beside "
    "--data_dir, if there; else (or with --validation_dir=) --validation_fraction of the "
    "training images.",
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
    "--memory_limit_mib; a folder's test split stays in its files.",
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
    "With --normal_classes and no validation folder (--validation_dir): the share of normal "
    "training images held out to calibrate on.",
)
flags.DEFINE_float(
    "anomaly_fpr", Anomaly.anomaly_fpr,
    "With --normal_classes: the false-positive rate on normal images the threshold is "
    "set to.",
)
flags.DEFINE_enum(
    "anomaly_score", Anomaly.anomaly_score, choices.ANOMALY_SCORES,
    "With --normal_classes: mse (each image's mean squared error), top_k (the mean of "
    "its worst 10% of squared pixel errors, for small defects) or map_max (the smoothed "
    "anomaly_map's highest pixel; conv's on a folder of defects)" + RECIPE + ".",
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
    "batch_size", Data.batch_size, "Global batch size, split across all replicas" + RECIPE + "."
)
flags.DEFINE_float("learning_rate", None, "Adam learning rate" + RECIPE + ".")
flags.DEFINE_string(
    "learning_rate_schedule", None,
    "constant; cosine: from --learning_rate down to 0 at the last step; warmup_cosine: up "
    "from 0 over the first epoch, then cosine" + RECIPE + ".",
)
# Every variant's model options (`keras_ae.variants`), each None unless given:
# then the model's default.
_DEFINE = {"int": flags.DEFINE_integer, "float": flags.DEFINE_float,
           "str": flags.DEFINE_string, "ints": flags.DEFINE_list}
for _option in config_lib.MODEL_OPTIONS.values():
    _takers = config_lib.takers(_option.name)
    _who = "" if len(_takers) == len(variants.NAMES) else ", ".join(_takers) + ": "
    _DEFINE[_option.kind](_option.name, None, _who + _option.help + MODEL + ".")
flags.DEFINE_float(
    "noise_stddev", None, "Stddev of Gaussian noise added to inputs on the fly" + RECIPE + "."
)
flags.DEFINE_float(
    "masking_noise", None, "Share of each training input hidden on the fly, in black "
    "squares (masking noise)" + RECIPE + "."
)
flags.DEFINE_float(
    "rectangles", None, "draem: share of the simulated anomalies' masks drawn as "
    "rectangles" + RECIPE + ", which sets it by the image size."
)
flags.DEFINE_bool(
    "grain_at_place", None, "draem: the simulated anomalies' grain fill about the grey of "
    "what it covers, not a random grey" + RECIPE + ", which sets it by the image size."
)
flags.DEFINE_float(
    "paste_at_place", None, "draem: share of the simulated anomalies' pasted images about "
    "the grey of what they cover" + RECIPE + ", which sets it by the image size."
)
flags.DEFINE_bool(
    "cells", None, "draem: a sixth of the simulated anomalies filled with cells of Worley "
    "noise (pebbles, scales, cracks)" + RECIPE + ", which sets it by the image size."
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
