"""Whether a run's training fits in memory, estimated before it starts.

A step keeps every layer's output for the backward pass and holds as much
again in gradients at its peak: twice the activations of the host's share of
the batch (times the model's `passes_per_image`), on top of the weights and
Adam's two moments. It is an estimate, not a measurement: TensorFlow frees
some outputs early and needs scratch space of its own.
`check_fits` refuses a run whose least need is beyond the memory the machine
has available, naming a batch size that fits, where TensorFlow would fail
later with "OOM when allocating tensor" and a traceback. `reset_peak` and
`peak_mib` measure what a run took (metrics.json's `peak_memory_mib`).
"""

import math

import keras

from keras_ae import config as config_lib
from keras_ae import distribute
from keras_ae import models

BYTES = 4  # float32
ACTIVATION_COPIES = 2  # forward outputs, kept, and their gradients


def activation_bytes(model):
    """Bytes of every layer's output for one image, sub-models included
    (and a model's own networks outside its graph, as DRAEM's segmenter)."""
    seen, total = set(), 0
    for layer in _layers(model):
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        outputs = layer.output if isinstance(layer.output, (list, tuple)) else [layer.output]
        total += sum(math.prod(output.shape[1:]) for output in outputs)
    return total * BYTES


def _layers(model):
    for layer in [*model.layers, *[v for v in vars(model).values() if isinstance(v, keras.Model)]]:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            yield layer


def training_bytes(model, batch):
    """The memory (bytes) a training step of `batch` images needs, by this
    module's estimate."""
    fixed, per_image = _needs(model)
    return fixed + batch * per_image


def _needs(model):
    """`(bytes whatever the batch, bytes per image)` of a training step."""
    fixed = 4 * model.count_params() * BYTES  # weights, gradients, Adam's two moments
    return fixed, ACTIVATION_COPIES * model.passes_per_image * activation_bytes(model)


def available_bytes():
    """Memory the machine has available now (Linux's MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def check_fits(config, strategy, image_shape, available=None):
    """Raises ConfigError ("batch_size") if training `config`'s model on
    images of `image_shape` needs more than `available` bytes (default: what
    the machine has available), with the largest batch size that fits."""
    available = available or available_bytes()
    if not available:
        return
    model = models.build(config.model.variant, image_shape, **config.model.options())
    pipelines = distribute.input_pipelines(strategy)  # one per worker, each on its host
    batch = config.data.batch_size // pipelines
    fixed, per_image = _needs(model)
    if fixed + batch * per_image <= available:
        return
    step = strategy.num_replicas_in_sync // pipelines  # a batch that splits evenly
    fits = max(0, (available - fixed) // per_image) // step * step * pipelines
    size = "x".join(map(str, image_shape[:2]))
    fix = f"use --batch_size={fits} or smaller" if fits else "use a smaller --image_size"
    raise config_lib.ConfigError(
        "batch_size", f"training {config.model.variant} on {size} images in batches of "
        f"{batch} needs at least {(fixed + batch * per_image) / 2**30:.1f} GiB, and this "
        f"machine has {available / 2**30:.1f} GiB available; {fix}")


def reset_peak():
    """Starts the process's peak resident memory afresh (Linux; else nothing),
    so that `peak_mib` measures the run, not the imports before it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_mib():
    """Peak resident memory (MiB) since `reset_peak` (Linux; else None)."""
    try:
        with open("/proc/self/status") as f:
            return int(f.read().split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError, ValueError):
        return None
