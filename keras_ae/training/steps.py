"""The run's step policy: batches per epoch, steps per execution, XLA."""

import dataclasses

import tensorflow as tf

from keras_ae import config as config_lib
from keras_ae import distribute


def smallest_batch(config, strategy):
    """The fewest images an epoch's last batch may hold (see
    `keras_ae.data.train_dataset`)."""
    # TPUs compile for static shapes: every batch full. Elsewhere a last batch
    # is kept if it gives every replica an image.
    if distribute.is_tpu(strategy):
        return config.data.batch_size
    return strategy.num_replicas_in_sync


def steps_per_epoch(config, strategy, data):
    """Steps in one epoch of the run's training stream."""
    return data.train_images.steps_per_epoch(
        config.data.batch_size, smallest_batch(config, strategy),
        distribute.input_pipelines(strategy))


# Automatic steps per execution: at most this many. Each call into the graph
# costs about a millisecond of host work (callbacks, the logged loss's sync),
# more than a small model's step on a CPU; at 100 steps that is ~1% of a step.
AUTO_STEPS_PER_EXECUTION = 100


def auto_steps_per_execution(steps):
    """The largest divisor of an epoch's `steps` up to AUTO_STEPS_PER_EXECUTION.

    A divisor, because Keras runs whole executions: one that crossed an epoch's
    end would take the next epoch's batches from the stream.
    """
    return max(d for d in range(1, min(steps, AUTO_STEPS_PER_EXECUTION) + 1) if steps % d == 0)


def check_jit_compile(config, strategy):
    if (config.train.jit_compile and config.model.upsampling == "nearest"
            and config.model.architecture != "dense"  # dense decoders do not resize
            and not tf.config.list_physical_devices("GPU")
            and not distribute.is_tpu(strategy)):
        raise config_lib.ConfigError(
            "jit_compile",
            "XLA on CPUs has no kernel for the gradient of nearest-neighbour resizing "
            "(ResizeNearestNeighborGrad), which --upsampling=nearest trains through; use "
            "--upsampling=transpose with --jit_compile, or leave XLA off",
        )


def with_steps_per_execution(config, strategy, steps):
    """`config` with `steps_per_execution` chosen (None: automatic) and checked.

    Under MultiWorkerMirroredStrategy one: Keras 3.15's multi-step loop fails
    there ("You must feed a value for placeholder tensor ... while/cond" in
    multi_step_on_iterator).
    """
    chosen = config.train.steps_per_execution
    multi_worker = distribute.is_multi_worker(strategy)
    if chosen is None:
        chosen = 1 if multi_worker else auto_steps_per_execution(steps)
    elif multi_worker and chosen > 1:
        raise config_lib.ConfigError(
            "steps_per_execution",
            "must be 1 under multi_worker_mirrored: Keras 3.15's loop over several steps "
            "fails there; leave it unset",
        )
    elif steps % chosen:
        divisors = [d for d in range(1, steps + 1) if steps % d == 0]
        raise config_lib.ConfigError(
            "steps_per_execution",
            f"{chosen} does not divide the {steps} steps of an epoch (an "
            f"execution would run into the next epoch); use one of "
            f"{', '.join(map(str, divisors[:12]))}{', ...' if len(divisors) > 12 else ''}, "
            "or leave it unset to have it chosen",
        )
    return dataclasses.replace(
        config, train=dataclasses.replace(config.train, steps_per_execution=chosen))
