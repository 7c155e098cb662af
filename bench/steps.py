"""Per-step speed: train.py's training against a minimal hand-written loop.

    python bench/steps.py [--variants=linear,conv] [--rounds=3] [--train_examples=N]

For each variant, at its reference batch size (linear 20: the tutorial's; the
others 64), trains one epoch on Fashion-MNIST (Debian's local copy) five ways,
taking turns in one process, rounds rotated, so that machine load hits all
alike:

    default     keras_ae.training.train as train.py runs it (automatic
                steps per execution)
    spe_1       the same with --steps_per_execution=1 (the old default)
    jit         the same with --jit_compile (XLA)
    loop        a tf.function step (forward, the model's own loss, gradient,
                Adam) called once per batch over the same tf.data stream, no
                callbacks: what fit() could at best reach
    loop_jit    that loop with XLA

Each is timed from the first step to the last, tracing included (as
train.py's train_seconds). Prints JSON: per variant the median images/s of
each way, the median within-round ratios of default to each other way, and
the test MSE of every default and spe_1 run (the same steps: it should agree);
writes them, the command and the machine to --out (bench/steps.json).
"""

import json
import os
import statistics
import tempfile
import time

from keras_ae import commands  # noqa: E402,F401  first: TensorFlow's environment, as train.py's

from absl import app
from absl import flags
import keras
import tensorflow as tf

from keras_ae import config as config_lib
from keras_ae import data
from keras_ae import distribute
from keras_ae import training
import environment  # bench/environment.py, beside this file

FLAGS = flags.FLAGS
WAYS = ("default", "spe_1", "jit", "loop", "loop_jit")


def batch_size(variant):
    return 20 if variant == "linear" else 64  # the tutorial's, and the others'


def run_config(variant, model_dir, upsampling=None, **train):
    return training.resolve(config_lib.RunConfig(
        config_lib.DataConfig(dataset="fashion_mnist", download=False,
                              batch_size=batch_size(variant)),
        config_lib.ModelConfig(variant=variant,
                               upsampling=None if variant == "linear" else upsampling),
        config_lib.TrainConfig(model_dir=model_dir, epochs=1, **train),
    ))


def train_py(variant, fashion, upsampling=None, **train):
    """train.py's images/s; its test MSE goes to TEST_MSE."""
    with tempfile.TemporaryDirectory() as model_dir:
        metrics = training.train(run_config(variant, model_dir, upsampling, **train),
                                 distribute.get_strategy("default"), fashion, verbose=0)
    TEST_MSE.setdefault((variant, tuple(sorted(train.items()))), []).append(metrics["test_mse"])
    return metrics["train_images_per_second"]


# (variant, train options) -> test MSE of each run: the speed-ups must not
# change what is learnt (the same steps in the same order).
TEST_MSE = {}


def hand_loop(variant, fashion, upsampling=None, jit_compile=False):
    """A minimal loop's images/s: the same model, optimizer and stream."""
    config = run_config(variant, "unused", upsampling)
    steps = data.steps_per_epoch(len(fashion.train_images), config.data.batch_size)
    keras.utils.set_random_seed(0)
    model = training.build_model(config, distribute.get_strategy("default"),
                                 fashion.train_images.shape[1:], steps)
    stream = data.train_dataset(fashion.train_images, batch_size=config.data.batch_size,
                                epochs=1, noise_stddev=config.data.noise_stddev)

    @tf.function(jit_compile=jit_compile)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x, y, model(x, training=True), training=True)
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply(gradients, model.trainable_variables)
        return loss

    start = time.perf_counter()
    for x, y in stream:
        loss = step(x, y)
    float(loss)  # wait for the last step
    return len(fashion.train_images) / (time.perf_counter() - start)


def measure(variant, fashion, rounds, ways=WAYS, upsampling=None):
    """`ways` timed in `rounds` paired rounds: median images/s of each, median
    within-round ratios to `default`. XLA ways are left out where XLA cannot
    train the model on this machine (nearest-neighbour upsampling on CPUs)."""
    ways = list(ways)
    if run_config(variant, "unused", upsampling).model.upsampling == "nearest":
        ways = [w for w in ways if "jit" not in w]
    how = {
        "default": lambda: train_py(variant, fashion, upsampling),
        "spe_1": lambda: train_py(variant, fashion, upsampling, steps_per_execution=1),
        "jit": lambda: train_py(variant, fashion, upsampling, jit_compile=True),
        "loop": lambda: hand_loop(variant, fashion, upsampling),
        "loop_jit": lambda: hand_loop(variant, fashion, upsampling, jit_compile=True),
    }
    rounds_done = []
    for r in range(rounds):
        order = ways[r % len(ways):] + ways[:r % len(ways)]
        rounds_done.append({way: how[way]() for way in order})
    return {
        "test_mse": {"default": TEST_MSE.get((variant, ())),
                     "spe_1": TEST_MSE.get((variant, (("steps_per_execution", 1),)))},
        "batch_size": batch_size(variant),
        "upsampling": run_config(variant, "unused", upsampling).model.upsampling,
        "images_per_second": {w: statistics.median(r[w] for r in rounds_done) for w in ways},
        **{f"default_vs_{w}": statistics.median(r["default"] / r[w] for r in rounds_done)
           for w in ways if w != "default"},
        "rounds": rounds_done,
    }


def main(argv):
    del argv  # environment.command() records the flags
    fashion = data.load("fashion_mnist", download=False, train_examples=FLAGS.train_examples)
    results = {"command": environment.command(),
               "machine": environment.machine(), "train_examples": len(fashion.train_images),
               "variants": {}}
    for variant in FLAGS.variants:
        result = measure(variant, fashion, FLAGS.rounds, upsampling=FLAGS.upsampling)
        print(json.dumps({variant: result}, indent=2), flush=True)
        results["variants"][variant] = result
        with open(FLAGS.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    # Defined here, not on import: bench/run.py imports this module beside
    # bench/pipeline.py, whose flags share these names.
    flags.DEFINE_list("variants", ["linear", "conv"], "Variants (recipes) to measure.")
    flags.DEFINE_integer("rounds", 3, "Rounds; each times every way once.")
    flags.DEFINE_integer("train_examples", None, "Training images. Default: all 60,000.")
    flags.DEFINE_string("upsampling", None, "Conv decoders' upsampling. Default: the "
                        "model's (nearest, which XLA cannot train on CPUs: then no jit rows).")
    flags.DEFINE_string("out", os.path.join(os.path.dirname(__file__), "steps.json"),
                        "Results file.")
    app.run(main)
