"""Is the input pipeline a bottleneck? Training images/s, real stream vs in memory.

    python bench/pipeline.py [--variant=conv] [--steps=100] [--rounds=3] [--big_gib=4]

Trains one model on Fashion-MNIST (Debian's local copy) fed three ways, taking
turns in the same process so that machine load hits all three alike:

    in_memory  one global batch, cached as a tensor and repeated: no input work
    pipeline   keras_ae.data.train_dataset without noise
    noisy      keras_ae.data.train_dataset with noise_stddev=0.5
    stream     the same from the images as PNG files (--input=stream), no noise
    records    the same from a TFDS copy's record files (--input=stream), no noise

The PNG folder is bench/folder.py's (written to --folder if missing), the TFDS
copy is written beside it in 8 record files. Then the input alone, no training:
images/s that train_dataset yields streaming 28x28 grey PNG files, 64x64 RGB
ones (Fashion-MNIST resized, written beside), 256x256 RGB JPEG files resized to
64x64 as they are read and from a --cache_dir of them (with the time to fill
it), the TFDS copy's records, and from memory. With --big_gib, train.py also
trains one epoch of `linear` streaming a generated folder of 128x128 RGB PNG
files that decodes to that many GiB, with --memory_limit_mib a quarter of it,
and reports its peak RSS.

Each round times every feed once, in an order rotated round by round; the
ratios pipeline/in_memory and noisy/in_memory are taken within each round and
their median reported (1.0 means the pipeline costs nothing), with the median
images/s of each feed. Pairing within rounds cancels the drift of a shared
machine's load; many short rounds make the median robust to this machine's
speed, which can halve and recover within seconds. Prints the results as JSON
and writes them, with the command and the machine, to --out (bench/pipeline.json).
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from keras_ae import commands  # noqa: E402,F401  first: TensorFlow's environment, as train.py's

from absl import app
from absl import flags
import keras
import numpy as np
from PIL import Image
import tensorflow as tf

import keras_ae
from keras_ae import data
import environment  # bench/environment.py, beside this file
import folder  # bench/folder.py

_VARIANT = flags.DEFINE_string("variant", "conv", "Model to train.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 128, "Global batch size.")
_STEPS = flags.DEFINE_integer("steps", 20, "Training steps per timed trial.")
_ROUNDS = flags.DEFINE_integer("rounds", 15, "Timed trials per feed.")
_DATASET = flags.DEFINE_string("dataset", "fashion_mnist", "Dataset to read.")
_FOLDER = flags.DEFINE_string("png_folder", folder.DEFAULT_FOLDER,
                              "Fashion-MNIST as PNG files (bench/folder.py's layout).")
_BIG_GIB = flags.DEFINE_float("big_gib", 0, "Decoded GiB of the generated folder to train "
                              "on streaming; 0 skips it.")


def measure(model, feeds, steps, batch_size, rounds):
    """Training images/s of `model` on each feed: a list per feed, one per round."""
    names = list(feeds)
    rates = {name: [] for name in names}
    for round_ in range(rounds + 1):  # round 0 warms up (tracing, caches)
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            dataset = feeds[name]()
            start = time.perf_counter()
            model.fit(dataset, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
            seconds = time.perf_counter() - start
            if round_:
                rates[name].append(steps * batch_size / seconds)
    return rates


def make_feeds(images, batch_size, epochs, **streams):
    """The feeds, each a function returning a fresh dataset, and one per
    `streams` (the same images as `keras_ae.data.image_files.ImageFiles` or
    `keras_ae.data.tfds_records.TfdsRecords`).

    All yield full batches of the same static shape (smallest_batch=batch_size), so that
    fit() runs one and the same traced step on each: only the input differs.
    """
    def stream(noise_stddev, source=images):
        return lambda: data.train_dataset(
            source, batch_size=batch_size, epochs=epochs, noise_stddev=noise_stddev,
            smallest_batch=batch_size,
        )

    one_batch = next(iter(stream(0.0)()))
    feeds = {
        "in_memory": lambda: tf.data.Dataset.from_tensors(one_batch).repeat(),
        "pipeline": stream(0.0),
        "noisy": stream(0.5),
    }
    feeds.update({name: stream(0.0, source) for name, source in streams.items()})
    return feeds


def input_rate(images, batch_size=128, batches=200):
    """Images/s train_dataset yields from `images` alone, no training."""
    dataset = iter(data.train_dataset(images, batch_size=batch_size, epochs=1000))
    for _ in range(5):  # warm up: tracing, autotuning
        next(dataset)
    start = time.perf_counter()
    for _ in range(batches):
        next(dataset)
    return batches * batch_size / (time.perf_counter() - start)


def streamed(directory, test_dir, **options):
    """A folder's data with its training images as files."""
    return data.load("folder", data_dir=directory, test_dir=test_dir, input="stream",
                     memory_limit=2**30, **options)


def write_rgb(images, directory, count, size, extension):
    """The first `count` of `images` resized to `size`x`size` RGB, as files
    (once): the directory."""
    if len(os.listdir(directory) if os.path.isdir(directory) else []) != count:
        os.makedirs(directory, exist_ok=True)
        for start in range(0, count, 1000):
            chunk = tf.image.resize(images[start:start + 1000], (size, size))
            rgb = tf.image.grayscale_to_rgb(tf.cast(tf.round(chunk), tf.uint8)).numpy()
            for i, picture in enumerate(rgb):
                Image.fromarray(picture).save(os.path.join(directory, f"{start + i}.{extension}"))
    return directory


def tfds_copy(fashion, directory, name="fashion_mnist_records"):
    """`fashion` stored as a TFDS dataset (8 record files, once): its
    training split to stream."""
    import tensorflow_datasets as tfds

    if not os.path.isdir(os.path.join(directory, name, "1.0.0")):  # renamed when complete
        tfds.dataset_builders.store_as_tfds_dataset(
            name=name, version="1.0.0", data_dir=directory,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=fashion.train_images.shape[1:]),
                "label": tfds.features.ClassLabel(num_classes=10)}),
            split_datasets={split: tf.data.Dataset.from_tensor_slices(
                {"image": pixels, "label": labels}) for split, pixels, labels in (
                    ("train", fashion.train_images, fashion.train_labels),
                    ("test", fashion.test_images, fashion.test_labels))},
            download_config=tfds.download.DownloadConfig(num_shards=8))
    return data.load(name, data_dir=directory, download=False, input="stream",
                     memory_limit=2**30).train_images


def big_run(gib, root):
    """train.py streaming a generated folder of `gib` GiB decoded: its metrics."""
    size = (128, 128, 3)
    count = int(np.ceil(gib * 2**30 / np.prod(size)))
    train, test = os.path.join(root, f"train-{count}"), os.path.join(root, "test")
    environment.write_pictures(train, count, size[:2], seed=count)
    environment.write_pictures(test, 256, size[:2], seed=256)
    model_dir = os.path.join(root, "run")
    limit_mib = int(gib * 1024 / 4)
    command = [sys.executable, os.path.join(os.path.dirname(__file__), "..", "train.py"),
               "--variant=linear", "--dataset=folder", f"--data_dir={train}",
               f"--test_dir={test}", "--epochs=1", "--batch_size=128",
               f"--memory_limit_mib={limit_mib}", f"--model_dir={model_dir}", "--overwrite"]
    subprocess.run(command, check=True)
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    return {"images": count, "decoded_gib": count * np.prod(size) / 2**30,
            "memory_limit_mib": limit_mib, "input": metrics["input"],
            "peak_memory_mib": metrics["peak_memory_mib"],
            "train_images_per_second": metrics["train_images_per_second"],
            "train_seconds": metrics["train_seconds"]}


def paired_ratio(rates, numerator, denominator):
    """Median over rounds of the per-round ratio of two feeds' rates."""
    return statistics.median(
        a / b for a, b in zip(rates[numerator], rates[denominator])
    )


def main(argv):
    del argv  # environment.command() records the flags
    fashion = data.load(_DATASET.value, download=False)
    images = fashion.train_images
    batch_size, steps = _BATCH_SIZE.value, _STEPS.value
    epochs = -(-steps * (_ROUNDS.value + 1) // data.steps_per_epoch(len(images), batch_size))
    train_dir, test_dir = (os.path.join(_FOLDER.value, split) for split in ("train", "test"))
    folder.write_folder(images, fashion.train_labels, train_dir)
    folder.write_folder(fashion.test_images, fashion.test_labels, test_dir)
    files = streamed(train_dir, test_dir).train_images
    records = tfds_copy(fashion, os.path.join(_FOLDER.value, "tfds"))
    rgb_dir = write_rgb(images, os.path.join(_FOLDER.value, "rgb64", "train"), 20000, 64, "png")
    jpeg_dir = write_rgb(images, os.path.join(_FOLDER.value, "jpeg256", "train"), 5000, 256,
                         "jpg")
    to_64 = {"image_size": (64, 64), "channels": 3}
    cache_dir = tempfile.mkdtemp(dir=_FOLDER.value)  # empty: its filling is timed
    start = time.perf_counter()
    cached = streamed(jpeg_dir, test_dir, cache_dir=cache_dir, **to_64).train_images
    cache_seconds = time.perf_counter() - start
    input_only = {
        "memory_28x28x1": input_rate(images),
        "stream_png_28x28x1": input_rate(files),
        "stream_png_64x64x3": input_rate(streamed(rgb_dir, test_dir, **to_64).train_images),
        "stream_jpeg_256x256_to_64x64x3": input_rate(
            streamed(jpeg_dir, test_dir, **to_64).train_images),
        "cached_jpeg_256x256_to_64x64x3": input_rate(cached),
        "stream_tfds_records_28x28x1": input_rate(records),
    }
    shutil.rmtree(cache_dir)

    feeds = make_feeds(images, batch_size, epochs, stream=files, records=records)
    model = keras_ae.build(_VARIANT.value, images.shape[1:])
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    rates = measure(model, feeds, steps, batch_size, _ROUNDS.value)
    result = {
        "variant": _VARIANT.value,
        "batch_size": batch_size,
        "steps_per_trial": steps,
        "rounds": _ROUNDS.value,
        "median_images_per_second": {k: statistics.median(v) for k, v in rates.items()},
        "pipeline_over_in_memory": paired_ratio(rates, "pipeline", "in_memory"),
        "noisy_over_in_memory": paired_ratio(rates, "noisy", "in_memory"),
        "stream_over_pipeline": paired_ratio(rates, "stream", "pipeline"),
        "records_over_pipeline": paired_ratio(rates, "records", "pipeline"),
        "input_only_images_per_second": input_only,
        "cache_fill_seconds_jpeg_256x256_to_64x64x3": cache_seconds,
        "command": environment.command(),
        "machine": environment.machine(),
    }
    if _BIG_GIB.value:
        result["big_stream"] = big_run(_BIG_GIB.value, os.path.join(_FOLDER.value, "big"))
    with open(flags.FLAGS.out, "w") as f:
        f.write(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    # Defined here, not on import: bench/run.py imports this module and has its own --out.
    flags.DEFINE_string("out", os.path.join(os.path.dirname(__file__), "pipeline.json"),
                        "Results file.")
    app.run(main)
