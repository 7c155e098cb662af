"""Defects on real photographs: scikit-image's textures, in MVTec AD's layout.

    python bench/textures.py [--variants=draem,conv,restoration] [--textures=brick,grass,gravel]
                             [--seed=0,1,2]  # each seed's crops, defects and runs
    python bench/textures.py --layout_only   # write the folders, print train.py's command
                                             # and how alike the held-out region is

scikit-image's wheel ships photographs of textures (`skimage/data/`: brick,
grass, gravel; 512x512 grey). This reads their PNGs from --photos, or
downloads the wheel once with `pip download --no-deps scikit-image` and
unpacks them (scikit-image is never imported). For each texture and --seed it
writes, into --root's TEXTURE-SIZE (seeds other than 0: TEXTURE-SIZE-seedN):

    train/good/        --train crops of --size px from the photograph above and
                       below a band across its middle, at random places, some
                       mirrored
    test/good/         --good crops from inside the band, held out
    validation/good/   --validation more, drawn as the good test crops are:
                       the threshold is calibrated on them (train.py finds
                       validation/ beside train/), so that it may promise the
                       good test crops a false-positive rate
    test/<defect>/     --per_defect others from the band, one defect each:
                         scratch  a line 1-2 px wide, 15-50 px long, a grey
                                  0.25-0.5 off the place's mean
                         spot     a soft-edged ellipse (radii 4-12 px), darker
                                  or brighter by 0.2-0.45
                         patch    an ellipse (radii 8-24 px) of another
                                  texture's photograph
                         small    a disc of 2-8 px across, 0.3-0.6 off
    ground_truth/<defect>/<name>_mask.png   255 inside the defect

Then trains each of --variants on it as `python train.py --dataset=folder
--data_dir=FOLDER/train --test_dir=FOLDER/test --normal_classes=good
--variant=V` does (the recipe's defaults), and records image AUROC, pixel
AUROC, PRO, the false- and true-positive rates at the calibrated threshold and
the training seconds, or that training failed (collapsed, or diverged) as
train.py would say it; the image AUROC of the map's highest pixel (`draem`
serves the mean of its highest pixels); and `draem`'s check on simulated
anomalies in its validation images (`keras_ae.anomaly.simulated_check`).
Writes them, the command and the machine to --out; README's table is
`bench/report.py`'s rendering of it (each cell the mean over the seeds).
"""

import glob
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile

from keras_ae import commands  # noqa: E402,F401  first: TensorFlow's environment, as train.py's

from absl import app
from absl import flags
import numpy as np
from PIL import Image
from PIL import ImageDraw

from keras_ae import anomaly
from keras_ae import data
from keras_ae import distribute
from keras_ae import model_dir as model_dir_lib
from keras_ae import models
from keras_ae import training
import defects  # bench/defects.py, beside this file: its run's config and command
import environment  # bench/environment.py, beside this file

TEXTURES = ("brick", "grass", "gravel")
DEFECTS = ("scratch", "spot", "patch", "small")
FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_list("variants", ["draem", "conv", "restoration"], "Variants to run.")
    flags.DEFINE_list("textures", list(TEXTURES), "Textures to run.")
    flags.DEFINE_integer("size", 128, "Side of the crops (pixels).")
    flags.DEFINE_integer("train", 300, "Normal training crops per texture.")
    flags.DEFINE_integer("validation", 30, "Good validation crops per texture, from the "
                         "held-out region (0: none; the run then holds out a share of the "
                         "training crops).")
    flags.DEFINE_integer("good", 60, "Good test crops per texture.")
    flags.DEFINE_integer("per_defect", 20, "Test crops of each defect per texture.")
    flags.DEFINE_list("seed", ["0"], "Seeds of the crops, the defects and every run, each "
                      "seed its own folders; the table averages them (a seed moves a "
                      "texture's image AUROC by a few points).")
    flags.DEFINE_integer("epochs", None, "Epochs of each run. Default: the recipe's.")
    flags.DEFINE_integer("tile", None, "draem's --tile. Default: its own.")
    flags.DEFINE_integer("width", None, "draem's --width. Default: its own.")
    flags.DEFINE_string("photos", None, "A folder with the textures' PNGs. Default: "
                        "unpacked from scikit-image's wheel under --root.")
    flags.DEFINE_string("root", os.path.join(tempfile.gettempdir(), "textures-bench"),
                        "Where each texture's folder and runs go.")
    flags.DEFINE_string("out", "bench/textures.json", "Where to write the runs.")
    flags.DEFINE_bool("layout_only", False, "Write the folders, print train.py's command.")


def photographs(directory, names):
    """`{name: float [0, 1] grey array}` of the textures, from `directory`,
    or from scikit-image's wheel, downloaded and unpacked there once."""
    missing = [n for n in names if not os.path.exists(os.path.join(directory, f"{n}.png"))]
    if missing:
        os.makedirs(directory, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        "--dest", directory, "scikit-image"], check=True)
        wheel_file = sorted(glob.glob(os.path.join(directory, "scikit_image*.whl")))[-1]
        with zipfile.ZipFile(wheel_file) as wheel:
            for name in missing:
                with open(os.path.join(directory, f"{name}.png"), "wb") as f:
                    f.write(wheel.read(f"skimage/data/{name}.png"))
    return {n: np.asarray(Image.open(os.path.join(directory, f"{n}.png")).convert("L"),
                          np.float32) / 255 for n in names}


def crops(photo, count, size, rng, held_out):
    """`count` crops of `size` from `photo`, mirrored left-right at random:
    inside its held-out region (`held_out`, `held_out_region`), or anywhere
    clear of it."""
    top, bottom, left = held_out_region(photo.shape[0], size)
    out = []
    while len(out) < count:
        y, x = rng.integers(0, photo.shape[0] - size + 1, 2)
        inside = top <= y and y + size <= bottom and x >= left
        clear = y + size <= top or y >= bottom or x + size <= left
        if inside if held_out else clear:
            crop = photo[y:y + size, x:x + size]
            out.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
    return out


def held_out_region(side, size):
    """`(top, bottom, left)`: the rows and the first column of the region
    of a `side`-pixel photograph that test crops of `size` come from.

    A band of `size` and a quarter across the middle, the whole width, with
    room for training crops above and below it: a photograph is not the
    same all over, and a band across it holds what the training crops hold.
    Grass' is sharper to the right and below: the mean squared difference
    of neighbouring pixels is 1.37 times the rest's in its bottom-right
    quarter, 1.00 times in the band, so that held-out good crops from that
    quarter scored as anomalies. The bottom-right quarter when there is no
    room (crops of over 3/13 of the side).
    """
    band = size + size // 4
    top = (side - band) // 2
    if top >= size:
        return top, top + band, 0
    return quarter(side)


def quarter(side):
    """`(top, bottom, left)` of a `side`-pixel photograph's bottom-right
    quarter (as `held_out_region`): the held-out region until d027059."""
    return side // 2, side, side // 2


def sharpness_ratio(photo, region):
    """The mean squared difference of horizontal neighbours inside `region`
    `(top, bottom, left)` (as `held_out_region`) over that outside it."""
    squared = np.zeros_like(photo)
    squared[:, :-1] = np.diff(photo, axis=1) ** 2
    top, bottom, left = region
    inside = np.zeros(photo.shape, bool)
    inside[top:bottom, left:] = True
    return squared[inside].mean() / squared[~inside].mean()


def _ellipse(size, rng, radii):
    """A filled ellipse's mask (float, soft-edged by 1 px) at a random place."""
    a, b = np.minimum(rng.uniform(*radii, 2), size / 3)  # room for it on small crops
    y, x = rng.uniform(max(a, b), size - max(a, b), 2)
    turn = rng.uniform(0, np.pi)
    rows, columns = np.mgrid[:size, :size]
    u = (rows - y) * np.cos(turn) + (columns - x) * np.sin(turn)
    v = -(rows - y) * np.sin(turn) + (columns - x) * np.cos(turn)
    distance = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return np.clip((1 - distance) * min(a, b) + 0.5, 0, 1)


def _shift(image, inside, rng, low, high):
    """A grey `low`-`high` off the mean of `image` where `inside`, toward
    the side the range allows."""
    mean = float((image * inside).sum() / max(inside.sum(), 1e-6))
    step = rng.uniform(low, high)
    brighter = mean + step <= 1 and (mean - step < 0 or rng.random() < 0.5)
    return mean + step if brighter else mean - step


def defective(image, kind, rng, others):
    """`(image with one defect of kind, its mask)`; `others`: photographs
    of other textures, for patches."""
    size = image.shape[0]
    if kind == "scratch":
        canvas = Image.new("L", (size, size))
        length, angle = min(rng.uniform(15, 50), 0.8 * size), rng.uniform(0, np.pi)
        y, x = rng.uniform(length / 2, size - length / 2, 2)
        dy, dx = length / 2 * np.sin(angle), length / 2 * np.cos(angle)
        ImageDraw.Draw(canvas).line([(x - dx, y - dy), (x + dx, y + dy)], fill=255,
                                    width=int(rng.integers(1, 3)))
        inside = np.asarray(canvas, np.float32) / 255
        fill = _shift(image, inside, rng, 0.25, 0.5)
    elif kind in ("spot", "small"):
        inside = _ellipse(size, rng, (4, 12) if kind == "spot" else (1, 4))
        fill = _shift(image, inside, rng, *((0.2, 0.45) if kind == "spot" else (0.3, 0.6)))
    else:
        inside = _ellipse(size, rng, (8, 24))
        other = others[rng.integers(len(others))]
        y, x = rng.integers(0, other.shape[0] - size + 1, 2)
        fill = other[y:y + size, x:x + size]
    return np.clip(image * (1 - inside) + fill * inside, 0, 1), inside > 0.5


def save(path, pixels):
    """Writes float `pixels` in [0, 1] as an 8-bit PNG at `path`, making its folder."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(path)


def write_layout(photos, texture, directory, seed, size, train, good, per_defect,
                 validation=0):
    """Writes `texture`'s MVTec-layout folder into `directory` (the module
    docstring), unless a previous call finished it."""
    done = os.path.join(directory, "complete")
    if os.path.exists(done):
        return
    rng = np.random.default_rng([seed, TEXTURES.index(texture) if texture in TEXTURES else 9])
    photo = photos[texture]
    others = [p for name, p in photos.items() if name != texture]
    for i, crop in enumerate(crops(photo, train, size, rng, held_out=False)):
        save(os.path.join(directory, "train", "good", f"{i:04d}.png"), crop)
    test = crops(photo, good + per_defect * len(DEFECTS), size, rng, held_out=True)
    for i, crop in enumerate(test[:good]):
        save(os.path.join(directory, "test", "good", f"{i:04d}.png"), crop)
    for k, kind in enumerate(DEFECTS):
        for i, crop in enumerate(test[good + k * per_defect:][:per_defect]):
            image, mask = defective(crop, kind, rng, others)
            save(os.path.join(directory, "test", kind, f"{i:04d}.png"), image)
            save(os.path.join(directory, "ground_truth", kind, f"{i:04d}_mask.png"),
                  mask.astype(np.float32))
    # After the test crops, from the same generator: the training and test
    # crops are the ones of the layout without validation crops.
    for i, crop in enumerate(crops(photo, validation, size, rng, held_out=True)):
        save(os.path.join(directory, "validation", "good", f"{i:04d}.png"), crop)
    open(done, "w").close()


def folder(texture, seed):
    """Where `texture`'s folder for `seed` goes: seed 0's without the seed."""
    return os.path.join(FLAGS.root, f"{texture}-{FLAGS.size}" + (f"-seed{seed}" if seed else ""))


def run(variant, texture, directory, seed):
    options = {name: value for name, value in (("tile", FLAGS.tile), ("width", FLAGS.width))
               if value and variant == "draem"}
    config = defects.layout_config(directory, variant, seed, FLAGS.epochs, **options)
    start = time.perf_counter()
    try:
        metrics = training.train(config, distribute.get_strategy("default"),
                                 data.load(config.data), verbose=0, overwrite=True)
    except training.TrainingDiverged as e:  # as train.py reports it, exit 1
        return {"variant": variant, "texture": texture, "seed": seed,
                "failed": str(e).split(":")[0]}
    keys = ("test_auroc", "test_auroc_interval", "test_auroc_by_class", "test_pixel_auroc",
            "test_pro", "test_fpr_at_threshold", "test_tpr_at_threshold", "train_seconds",
            "epochs_trained", "peak_memory_mib", "validation_simulated_auroc",
            "validation_simulated_pixel_auroc")
    return {"variant": variant, "texture": texture, "seed": seed,
            "seconds": time.perf_counter() - start,
            **{k: metrics.get(k) for k in keys},
            "map_max_auroc": map_max_auroc(config.train.model_dir, directory)}


def map_max_auroc(model_dir, directory):
    """The image AUROC of the highest pixel of the run's `anomaly_map` as
    the score (`draem` serves the mean of its highest pixels instead)."""
    kinds, _, pixels, _ = defects.test_set(directory, DEFECTS)
    _, model_file, detector = model_dir_lib.read_run(model_dir)
    maps = anomaly.outputs_of(models.load(model_file), pixels, 8,
                              detector=anomaly.Detector.from_dict(detector))["anomaly_map"]
    return anomaly.auroc(maps.max(axis=(1, 2)), kinds != "good")


def main(argv):
    del argv  # environment.command() records the flags
    seeds = [int(seed) for seed in FLAGS.seed]
    photos = photographs(FLAGS.photos or os.path.join(FLAGS.root, "photos"),
                         sorted(set(TEXTURES) | set(FLAGS.textures)))
    for texture in FLAGS.textures:
        for seed in seeds:
            write_layout(photos, texture, folder(texture, seed), seed, FLAGS.size,
                         FLAGS.train, FLAGS.good, FLAGS.per_defect, FLAGS.validation)
        if FLAGS.layout_only:
            side = photos[texture].shape[0]
            print(f"{texture}: sharpness of the held-out region over the rest "
                  f"{sharpness_ratio(photos[texture], held_out_region(side, FLAGS.size)):.2f} "
                  f"(of the bottom-right quarter, the region until d027059: "
                  f"{sharpness_ratio(photos[texture], quarter(side)):.2f})")
            print(defects.train_command(folder(texture, seeds[0])))
    if FLAGS.layout_only:
        return
    results = {"command": environment.command(), "machine": environment.machine(),
               "size": FLAGS.size, "defects": list(DEFECTS), "seeds": seeds, "runs": []}
    for seed in seeds:
        for variant in FLAGS.variants:
            for texture in FLAGS.textures:
                results["runs"].append(run(variant, texture, folder(texture, seed), seed))
                print(json.dumps(results["runs"][-1]), flush=True)
                with open(FLAGS.out, "w") as f:
                    json.dump(results, f, indent=1)


if __name__ == "__main__":
    define_flags()
    app.run(main)
