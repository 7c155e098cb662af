"""One switch from a strategy name to a `tf.distribute.Strategy`."""

from absl import logging
import tensorflow as tf

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker_mirrored", "tpu")


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
    if name == "multi_worker_mirrored":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return _tpu_strategy(tpu)


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
