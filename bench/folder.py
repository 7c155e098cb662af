"""Training from a folder of PNG files against the same images in memory.

    python bench/folder.py [--folder=/tmp/fashion_mnist-png] [--variant=conv] [--epochs=3]

Writes Fashion-MNIST (Debian's local copy) as a folder of PNG files,
FOLDER/train/LABEL/NNNNN.png and FOLDER/test/LABEL/NNNNN.png (kept and reused
if complete), checks that the folder holds exactly the IDX files' pixels, then
trains the variant's default recipe twice with the same seed and epochs: from
the IDX files (`--dataset=fashion_mnist`) and from the folder
(`--dataset=folder --data_dir=FOLDER/train --test_dir=FOLDER/test`). The two
see the same images in another order (the folder's is by label), so their
test MSEs differ by training noise only. Prints JSON: both runs' test MSE,
their ratio, seconds to load each source, and training images/s.
"""

import json
import os
import tempfile
import time

from keras_ae import commands  # noqa: E402,F401  first: TensorFlow's environment, as train.py's

from absl import app
from absl import flags
from PIL import Image

from keras_ae import config as config_lib
from keras_ae import data
from keras_ae import distribute
from keras_ae import training

FLAGS = flags.FLAGS
DEFAULT_FOLDER = os.path.join(tempfile.gettempdir(), "fashion_mnist-png")


def define_flags():  # only when run: bench/pipeline.py imports write_folder
    flags.DEFINE_string("folder", DEFAULT_FOLDER,
                        "Where the PNG folder is written (reused if complete).")
    flags.DEFINE_string("variant", "conv", "Variant; its recipe's defaults train it.")
    flags.DEFINE_integer("epochs", 3, "Epochs of each run.")
    flags.DEFINE_integer("seed", 0, "Seed of both runs.")


def write_folder(images, labels, directory):
    """Writes `images` as DIRECTORY/LABEL/NNNNN.png unless all are there."""
    paths = [os.path.join(directory, str(label), f"{i:05d}.png")
             for i, label in enumerate(labels)]
    if all(os.path.isfile(p) for p in paths):
        return
    for label in set(labels.tolist()):
        os.makedirs(os.path.join(directory, str(label)), exist_ok=True)
    for path, image in zip(paths, images):
        Image.fromarray(image[..., 0]).save(path)


def same_images(a, b):
    """Whether two arrays hold the same images, in any order."""
    return sorted(x.tobytes() for x in a) == sorted(x.tobytes() for x in b)


def run(dataset_config, name):
    start = time.perf_counter()
    loaded = data.load(dataset_config)
    load_seconds = time.perf_counter() - start
    config = config_lib.RunConfig(
        dataset_config, config_lib.ModelConfig(variant=FLAGS.variant),
        config_lib.TrainConfig(model_dir=os.path.join(FLAGS.folder, "runs", name),
                               epochs=FLAGS.epochs),
    )
    metrics = training.train(config, distribute.get_strategy("default"), loaded, verbose=2,
                             overwrite=True)
    return loaded, {"test_mse": metrics["test_mse"], "load_seconds": load_seconds,
                    "train_images_per_second": metrics["train_images_per_second"]}


def main(argv):
    del argv
    idx = data.load("fashion_mnist", download=False)
    write_folder(idx.train_images, idx.train_labels, os.path.join(FLAGS.folder, "train"))
    write_folder(idx.test_images, idx.test_labels, os.path.join(FLAGS.folder, "test"))

    memory_data, memory = run(
        config_lib.DataConfig(dataset="fashion_mnist", download=False, seed=FLAGS.seed),
        "memory")
    folder_data, folder = run(
        config_lib.DataConfig(dataset="folder", data_dir=os.path.join(FLAGS.folder, "train"),
                              test_dir=os.path.join(FLAGS.folder, "test"), seed=FLAGS.seed),
        "folder")
    print(json.dumps({
        "variant": FLAGS.variant, "epochs": FLAGS.epochs, "seed": FLAGS.seed,
        "same_pixels": same_images(memory_data.train_images, folder_data.train_images)
        and same_images(memory_data.test_images, folder_data.test_images),
        "memory": memory, "folder": folder,
        "folder_vs_memory_test_mse": folder["test_mse"] / memory["test_mse"],
    }, indent=2))


if __name__ == "__main__":
    define_flags()
    app.run(main)
