"""Is the input pipeline a bottleneck? Training images/s, real stream vs in memory.

    python bench/pipeline.py [--variant=conv] [--steps=100] [--rounds=3]

Trains one model on Fashion-MNIST (Debian's local copy) fed three ways, taking
turns in the same process so that machine load hits all three alike:

    in_memory  one global batch, cached as a tensor and repeated: no input work
    pipeline   keras_ae.data.train_dataset without noise
    noisy      keras_ae.data.train_dataset with noise_stddev=0.5

Each round times every feed once, in an order rotated round by round; the
ratios pipeline/in_memory and noisy/in_memory are taken within each round and
their median reported (1.0 means the pipeline costs nothing), with the median
images/s of each feed. Pairing within rounds cancels the drift of a shared
machine's load; many short rounds make the median robust to this machine's
speed, which can halve and recover within seconds. Prints JSON.
"""

import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app
from absl import flags
import keras
import tensorflow as tf

import keras_ae
from keras_ae import data

_VARIANT = flags.DEFINE_string("variant", "conv", "Model to train.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 128, "Global batch size.")
_STEPS = flags.DEFINE_integer("steps", 20, "Training steps per timed trial.")
_ROUNDS = flags.DEFINE_integer("rounds", 15, "Timed trials per feed.")
_DATASET = flags.DEFINE_string("dataset", "fashion_mnist", "Dataset to read.")


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


def make_feeds(images, batch_size, epochs):
    """The three feeds, each a function returning a fresh dataset.

    All yield full batches of the same static shape (smallest_batch=batch_size), so that
    fit() runs one and the same traced step on each: only the input differs.
    """
    def stream(noise_stddev):
        return lambda: data.train_dataset(
            images, batch_size=batch_size, epochs=epochs, noise_stddev=noise_stddev,
            smallest_batch=batch_size,
        )

    one_batch = next(iter(stream(0.0)()))
    return {
        "in_memory": lambda: tf.data.Dataset.from_tensors(one_batch).repeat(),
        "pipeline": stream(0.0),
        "noisy": stream(0.5),
    }


def paired_ratio(rates, numerator, denominator):
    """Median over rounds of the per-round ratio of two feeds' rates."""
    return statistics.median(
        a / b for a, b in zip(rates[numerator], rates[denominator])
    )


def main(argv):
    del argv
    images = data.load(_DATASET.value, download=False).train_images
    batch_size, steps = _BATCH_SIZE.value, _STEPS.value
    epochs = -(-steps * (_ROUNDS.value + 1) // data.steps_per_epoch(len(images), batch_size))

    feeds = make_feeds(images, batch_size, epochs)
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
        "cpu_count": os.cpu_count(),
        "tensorflow": tf.__version__,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    app.run(main)
