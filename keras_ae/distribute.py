"""One switch from a strategy name to a `tf.distribute.Strategy`."""

from absl import logging
import numpy as np
import tensorflow as tf

from keras_ae import choices

STRATEGIES = choices.STRATEGIES

# What a collective op raises on the surviving workers when a peer dies.
LOST_WORKER_ERRORS = (
    tf.errors.UnavailableError,
    tf.errors.AbortedError,
    tf.errors.CancelledError,
    tf.errors.DeadlineExceededError,
)


def split_cpu(num_devices):
    """Splits the host CPU into `num_devices` logical devices.

    Lets multi-replica strategies run on a machine without accelerators (as in
    tests). Must be called before TensorFlow initializes its devices.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices
    )


def get_strategy(name, tpu=None):
    """Returns the `tf.distribute` strategy called `name`.

    Args:
        name: one of `STRATEGIES`:
            "default": no distribution, the current device;
            "one_device": the first GPU, else the CPU;
            "mirrored": all visible GPUs in sync; without GPUs, all logical CPU
                devices (one, unless `split_cpu` made more), with a log line;
            "multi_worker_mirrored": synchronous over the workers in `TF_CONFIG`;
            "tpu": the TPU `tpu` (a name or grpc:// address; None on a TPU VM).
        tpu: see "tpu". Default None.

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    if name not in STRATEGIES:
        raise ValueError(
            f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}"
        )
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multi_worker_mirrored":
        # Before anything lists devices: that starts TensorFlow's runtime, and
        # collective ops must be configured before it starts.
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        return _tpu_strategy(tpu)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy((gpus or tf.config.list_logical_devices("CPU"))[0].name)
    if name == "mirrored":
        if gpus:
            return tf.distribute.MirroredStrategy()
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        logging.info("mirrored: no GPU found, mirroring over CPU device(s) %s", cpus)
        # Not the default collective all-reduce: a second MirroredStrategy over
        # CPUs in one process reuses its instance keys and fails with "Shape
        # mismatch in the collective instance" (tensorflow#62790).
        return tf.distribute.MirroredStrategy(
            cpus, cross_device_ops=tf.distribute.ReductionToOneDevice()
        )


def predict(model, inputs, batch_size=32):
    """`model.predict(inputs)` in batches, safe under any number of replicas.

    A strategy splits each batch evenly across its replicas, so a batch smaller
    than the replica count leaves a replica an empty batch, which some kernels
    reject (oneDNN's convolutions, on by default on Intel CPUs: "input depth
    must be evenly divisible by filter depth: 1 vs 32"). Here the batch is a
    multiple of the replica count, the inputs are padded with copies of their
    last row to make the last batch one too, and the padded rows are dropped
    from the outputs.

    Args:
        model: a Keras model, built under the strategy it predicts with.
        inputs: a numpy array or tensor, examples on the first axis.
        batch_size: the global batch, rounded up to a multiple of the
            replicas. Default 32.

    Returns:
        What `model.predict` returns for `inputs`.

    Example:

        reconstructions = predict(model, test_images, batch_size=128)
    """
    inputs = np.asarray(inputs)
    count = len(inputs)
    replicas = model.distribute_strategy.num_replicas_in_sync
    batch_size = -(-batch_size // replicas) * replicas
    pad = -(count % batch_size) % replicas
    if pad:
        inputs = np.concatenate([inputs, np.repeat(inputs[-1:], pad, axis=0)])
    outputs = model.predict(inputs, batch_size=batch_size, verbose=0)
    return tf.nest.map_structure(lambda output: output[:count], outputs)


def is_tpu(strategy):
    """Whether `strategy` runs on TPUs (which compile for static shapes)."""
    return isinstance(strategy, tf.distribute.TPUStrategy)


def is_multi_worker(strategy):
    """Whether `strategy` spans worker processes (MultiWorkerMirroredStrategy)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def mixed_precision_policy(strategy):
    """The Keras mixed-precision policy for `strategy`'s devices: float16 on
    GPUs (with loss scaling, which Keras adds), bfloat16 on TPUs and CPUs."""
    if is_tpu(strategy) or not tf.config.list_logical_devices("GPU"):
        return "mixed_bfloat16"
    return "mixed_float16"


def is_chief(strategy):
    """Whether this process writes the run's files: true but on the workers
    other than the chief of a multi-worker strategy."""
    return strategy.extended.should_checkpoint


def input_pipelines(strategy):
    """The input pipelines `strategy.distribute_datasets_from_function` builds:
    one per worker process (per host on TPUs)."""
    if is_multi_worker(strategy):
        jobs = strategy.cluster_resolver.cluster_spec().as_dict()
        return max(1, len(jobs.get("chief", [])) + len(jobs.get("worker", [])))
    if is_tpu(strategy):
        return strategy.extended.num_hosts
    return 1


def _tpu_strategy(tpu):
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError) as e:
        raise ValueError(
            f"strategy 'tpu': no TPU found {f'at {tpu!r}' if tpu else 'on this machine'} ({e}); "
            "pass --tpu=NAME for a Cloud TPU, or run on a TPU VM"
        ) from e
    return tf.distribute.TPUStrategy(resolver)
