"""Where is the defect: Fashion-MNIST with synthetic defects, in MVTec AD's layout.

    python bench/defects.py [--variants=restoration] [--classes=0,...,9] [--epochs=N]
    python bench/defects.py --variants=conv --classes=0,8 --masking_noise=0.25  # another share
    python bench/defects.py --variants=default --classes=1   # as train.py without --variant
    python bench/defects.py --layout_only --classes=6   # write the folder, print train.py's command

For each class c, writes a folder laid out as MVTec AD is (`write_layout`):

    train/good/        the 6,000 training images of class c
    test/good/         400 of its 1,000 test images, as they are
    test/<defect>/     200 others each, with one defect pasted in (`DEFECTS`):
                         patch    a 6-10 px square of an image of another class,
                                  at the same place
                         scratch  a 1 px line, 8-16 px long, at any angle,
                                  white on a dark place, black on a bright one
                         blob     a filled ellipse (radii 2-4.5 px) of a grey
                                  0.35-0.6 away from the place's mean
    ground_truth/<defect>/<name>_mask.png
                       255 where the defect changed a pixel by more than
                       MASK_CHANGE of the range (0 elsewhere)

Every defect is centred on a pixel of the garment (brighter than 0.2) and
changes at least MIN_DEFECT_PIXELS pixels; all is drawn from --seed.

Then train.py's library trains the variant on train/ with
`--dataset=folder --normal_classes=good` (its recipe's defaults, or
--epochs), as `python train.py --dataset=folder --data_dir=FOLDER/train
--test_dir=FOLDER/test --normal_classes=good --variant=V` does (the masks
found in ground_truth/ beside test/); records its image AUROC (good against
all defects), pixel AUROC and PRO; exports the run (`python -m export`'s
library) and sends every test file's PNG bytes to the SavedModel's
`serving_bytes`, reads every mask with Pillow, and recomputes from the
served `anomaly_score` and `anomaly_map` the image AUROC (overall and per
defect) and the pixel AUROC; then the pixel AUROC and PRO of the run's maps
smoothed by each of --map_sigmas (the detector's own is the recipe's share
of the side, `--anomaly_map_sigma`). Writes the runs, the command and the machine
to --out; README's table is `bench/report.py`'s rendering of it.
"""

import json
import os
import statistics
import tempfile
import time

from keras_ae import commands  # noqa: E402,F401  first: TensorFlow's environment, as train.py's

from absl import app
from absl import flags
import numpy as np
from PIL import Image
import tensorflow as tf

from keras_ae import anomaly
from keras_ae import config as config_lib
from keras_ae import data
from keras_ae import distribute
from keras_ae import export
from keras_ae import model_dir as model_dir_lib
from keras_ae import models
from keras_ae import training
import environment  # bench/environment.py, beside this file

DEFECTS = ("patch", "scratch", "blob")
GOOD_TEST_IMAGES = 400
DEFECT_IMAGES = 200  # of each kind
MASK_CHANGE = 0.1
MIN_DEFECT_PIXELS = 4

FLAGS = flags.FLAGS


def define_flags():  # only when run: tests import write_layout
    flags.DEFINE_list("variants", ["restoration"], "Variants to run; default: none named, "
                      "as train.py without --variant.")
    flags.DEFINE_list("classes", [str(c) for c in range(10)], "Normal classes.")
    flags.DEFINE_integer("epochs", None, "Epochs of each run. Default: the recipe's.")
    flags.DEFINE_float("masking_noise", None, "--masking_noise of each run. Default: the "
                       "recipe's.")
    flags.DEFINE_integer("seed", 0, "Seed of the defects and of every run.")
    flags.DEFINE_string("root", os.path.join(tempfile.gettempdir(), "defects-bench"),
                        "Where each class's folder (ROOT/class-C) and runs go.")
    flags.DEFINE_string("out", "bench/defects.json", "Where to write the runs.")
    flags.DEFINE_list("map_sigmas", ["0", "0.5", "1", "1.75", "2.5", "3.5"],
                      "Also score each run's maps smoothed by these sigmas (pixels).")
    flags.DEFINE_bool("layout_only", False,
                      "Write the folders and print train.py's command; train nothing.")


def _garment_centre(image, rng):
    """A random (row, column) where the garment is (brighter than 0.2)."""
    rows, columns = np.nonzero(image > 0.2)
    i = rng.integers(len(rows))
    return rows[i], columns[i]


def _patch(image, rng, others):
    side = rng.integers(6, 11)
    y, x = _garment_centre(image, rng)
    top = int(np.clip(y - side // 2, 0, image.shape[0] - side))
    left = int(np.clip(x - side // 2, 0, image.shape[1] - side))
    source = others[rng.integers(len(others))]
    out = image.copy()
    out[top:top + side, left:left + side] = source[top:top + side, left:left + side]
    return out


def _scratch(image, rng, others):
    y, x = _garment_centre(image, rng)
    length, angle = rng.uniform(8, 16), rng.uniform(0, np.pi)
    steps = np.linspace(-length / 2, length / 2, int(4 * length))
    rows = np.clip(np.round(y + steps * np.sin(angle)), 0, image.shape[0] - 1).astype(int)
    columns = np.clip(np.round(x + steps * np.cos(angle)), 0, image.shape[1] - 1).astype(int)
    out = image.copy()
    out[rows, columns] = 1.0 if image[rows, columns].mean() < 0.5 else 0.0
    return out


def _blob(image, rng, others):
    y, x = _garment_centre(image, rng)
    a, b, turn = rng.uniform(2, 4.5), rng.uniform(2, 4.5), rng.uniform(0, np.pi)
    rows, columns = np.mgrid[:image.shape[0], :image.shape[1]]
    u = (rows - y) * np.cos(turn) + (columns - x) * np.sin(turn)
    v = -(rows - y) * np.sin(turn) + (columns - x) * np.cos(turn)
    inside = (u / a) ** 2 + (v / b) ** 2 <= 1
    mean = image[inside].mean()
    step = rng.uniform(0.35, 0.6)
    grey = mean + step if mean + step <= 1 else mean - step
    out = image.copy()
    out[inside] = grey
    return out


DRAW = {"patch": _patch, "scratch": _scratch, "blob": _blob}


def defective(image, kind, rng, others):
    """`image` (float [0, 1], H×W) with one defect of `kind` and its mask:
    the pixels it changed by more than MASK_CHANGE; drawn again until at
    least MIN_DEFECT_PIXELS changed."""
    while True:
        out = DRAW[kind](image, rng, others)
        mask = np.abs(out - image) > MASK_CHANGE
        if mask.sum() >= MIN_DEFECT_PIXELS:
            return out, mask


def _save(path, pixels):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).save(path)


def write_layout(fashion, normal_class, directory, seed, good=GOOD_TEST_IMAGES,
                 per_defect=DEFECT_IMAGES):
    """Writes class `normal_class`'s MVTec-layout folder (module docstring:
    `good` test images left good, `per_defect` of each kind) into
    `directory`, unless a previous call finished it."""
    done = os.path.join(directory, "complete")
    if os.path.exists(done):
        return
    rng = np.random.default_rng([seed, normal_class])
    for i, image in enumerate(fashion.train_images[fashion.train_labels == normal_class]):
        _save(os.path.join(directory, "train", "good", f"{i:04d}.png"), image[..., 0])
    test = fashion.test_images[fashion.test_labels == normal_class][..., 0]
    others = fashion.test_images[fashion.test_labels != normal_class][..., 0] / 255
    order = rng.permutation(len(test))
    for i in order[:good]:
        _save(os.path.join(directory, "test", "good", f"{i:04d}.png"), test[i])
    for k, kind in enumerate(DEFECTS):
        chosen = order[good + k * per_defect:][:per_defect]
        for i in chosen:
            image, mask = defective(test[i] / 255, kind, rng, others)
            _save(os.path.join(directory, "test", kind, f"{i:04d}.png"),
                  np.round(image * 255).astype(np.uint8))
            _save(os.path.join(directory, "ground_truth", kind, f"{i:04d}_mask.png"),
                  mask.astype(np.uint8) * 255)
    open(done, "w").close()


def layout_config(directory, variant, seed, epochs, masking_noise=None, **model_options):
    """The run `python train.py --dataset=folder --data_dir=DIRECTORY/train
    --test_dir=DIRECTORY/test --normal_classes=good --variant=VARIANT` makes
    (with `masking_noise` and `model_options` as flags; VARIANT "default":
    without --variant), its model_dir DIRECTORY/runs/VARIANT (bench/textures.py's too)."""
    return config_lib.RunConfig(
        config_lib.DataConfig("folder", data_dir=os.path.join(directory, "train"),
                              test_dir=os.path.join(directory, "test"), seed=seed,
                              masking_noise=masking_noise),
        config_lib.ModelConfig(None if variant == "default" else variant, **model_options),
        config_lib.TrainConfig(os.path.join(directory, "runs", variant), epochs=epochs),
        config_lib.AnomalyConfig(normal_classes=("good",)),
    )


def train_command(directory):
    """train.py's command for the folder `directory` (bench/textures.py's too)."""
    return (f"python train.py --dataset=folder --data_dir={directory}/train "
            f"--test_dir={directory}/test --normal_classes=good --model_dir={directory}/run")


def run(variant, normal_class, directory):
    config = layout_config(directory, variant, FLAGS.seed, FLAGS.epochs, FLAGS.masking_noise)
    start = time.perf_counter()
    loaded = data.load(config.data)
    metrics = training.train(config, distribute.get_strategy("default"), loaded, verbose=0,
                             overwrite=True)
    keys = ("test_auroc", "test_pixel_auroc", "test_pro", "test_normal_images",
            "test_masked_images", "test_anomalous_images_without_mask", "test_fpr_at_threshold",
            "test_tpr_at_threshold", "train_seconds", "epochs_trained")
    result = {"variant": variant, "trained": metrics["variant"], "normal_class": normal_class,
              "seconds": time.perf_counter() - start, **{k: metrics[k] for k in keys}}
    kinds, encoded, pixels, masks = test_set(directory)
    result.update(served(config.train.model_dir, kinds, encoded, masks))
    result["served_pixel_auroc_difference"] = abs(result["served_pixel_auroc"]
                                                  - result["test_pixel_auroc"])
    ran, _, _ = model_dir_lib.read_run(config.train.model_dir)  # the sigma written in
    result["map_sigma"] = ran.anomaly.anomaly_map_sigma
    result["by_map_sigma"] = by_sigma(config.train.model_dir, pixels, masks)
    return result


def test_set(directory, defects=DEFECTS):
    """The test folder as written: each file's kind (good, or one of
    `defects`), PNG bytes, pixels (float [0, 1]) and mask (read with Pillow;
    none for the good ones)."""
    kinds, encoded, pixels, masks = [], [], [], []
    for kind in ("good", *defects):
        folder = os.path.join(directory, "test", kind)
        for name in sorted(os.listdir(folder)):
            kinds.append(kind)
            with open(os.path.join(folder, name), "rb") as f:
                encoded.append(f.read())
            pixels.append(np.asarray(Image.open(os.path.join(folder, name)), np.float32) / 255)
            mask = os.path.join(directory, "ground_truth", kind, name.replace(".png", "_mask.png"))
            masks.append(np.asarray(Image.open(mask)) > 0 if kind != "good"
                         else np.zeros(pixels[-1].shape, bool))
    return np.array(kinds), encoded, np.stack(pixels)[..., None], np.stack(masks)


def served(model_dir, kinds, encoded, masks):
    """The run's SavedModel (`python -m export`'s library) on every test
    file, sent as its PNG bytes to `serving_bytes`: the image AUROC of the
    served `anomaly_score` (all defects, and each kind against the good
    images), and of the served `anomaly_map` the pixel AUROC and the image
    AUROC of its highest pixel (a score the detector does not serve)."""
    with tempfile.TemporaryDirectory() as base:
        report = export.export_run(model_dir, config_lib.ExportConfig(
            base, formats=("saved_model",)))
        serve = tf.saved_model.load(report["path"]).signatures["serving_bytes"]
        outputs = [serve(image_bytes=tf.constant(encoded[i:i + 500]))
                   for i in range(0, len(encoded), 500)]
    scores = np.concatenate([o["anomaly_score"].numpy() for o in outputs])
    maps = np.concatenate([o["anomaly_map"].numpy() for o in outputs])
    good = kinds == "good"
    per_kind = {f"served_auroc_{kind}": anomaly.auroc(scores[good | (kinds == kind)],
                                                      kinds[good | (kinds == kind)] == kind)
                for kind in DEFECTS}
    return {"served_auroc": anomaly.auroc(scores, ~good), **per_kind,
            "served_pixel_auroc": anomaly.pixel_auroc(maps, masks),
            "served_map_max_auroc": anomaly.auroc(maps.max(axis=(1, 2)), ~good)}


def by_sigma(model_dir, pixels, masks):
    """Pixel AUROC and PRO of the run's maps smoothed by each of --map_sigmas
    instead of the detector's own sigma."""
    _, model_file, detector = model_dir_lib.read_run(model_dir)
    model = models.load(model_file)
    results = {}
    for sigma in FLAGS.map_sigmas:
        smoothed = anomaly.Detector.from_dict(detector | {"map_sigma": float(sigma)})
        maps = anomaly.outputs_of(model, pixels, 256, detector=smoothed)["anomaly_map"]
        results[sigma] = {"pixel_auroc": anomaly.pixel_auroc(maps, masks),
                          "pro": anomaly.pro(maps, masks)}
    return results


def main(argv):
    del argv  # environment.command() records the flags
    fashion = data.load("fashion_mnist", download=False)
    directories = {}
    for normal_class in FLAGS.classes:
        directories[normal_class] = os.path.join(FLAGS.root, f"class-{normal_class}")
        write_layout(fashion, int(normal_class), directories[normal_class], FLAGS.seed)
        if FLAGS.layout_only:
            print(train_command(directories[normal_class]))
    if FLAGS.layout_only:
        return
    results = {"command": environment.command(), "machine": environment.machine(),
               "epochs": FLAGS.epochs, "defects": list(DEFECTS), "runs": []}
    for variant in FLAGS.variants:
        for normal_class in FLAGS.classes:
            results["runs"].append(run(variant, int(normal_class), directories[normal_class]))
            print(json.dumps(results["runs"][-1]), flush=True)
            with open(FLAGS.out, "w") as f:
                json.dump(results, f, indent=1)
    for variant in FLAGS.variants:
        runs = [r for r in results["runs"] if r["variant"] == variant]
        print(f"{variant}: mean image AUROC "
              f"{100 * statistics.mean(r['test_auroc'] for r in runs):.1f}, pixel AUROC "
              f"{100 * statistics.mean(r['test_pixel_auroc'] for r in runs):.1f}, PRO "
              f"{100 * statistics.mean(r['test_pro'] for r in runs):.1f}; served pixel AUROC "
              f"off by {max(r['served_pixel_auroc_difference'] for r in runs):.2g} at most")


if __name__ == "__main__":
    define_flags()
    app.run(main)
