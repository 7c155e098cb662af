"""The tf.data pipeline: batches in a fresh order every epoch, and Gaussian noise.

`indexed_stream` turns images that can be read at random (an array, a
folder's files: `keras_ae.data.image_data.Images.loader`) into the stream `fit()`
consumes, for several epochs: each epoch takes them in a fresh shuffled order,
in batches of the global batch size (or one input pipeline's per-replica
pieces of them), crops them at random if asked (a network that scores large
images by tiles trains on crops), pastes simulated anomalies in
(`anomalies.py`) and adds Gaussian or masking noise on the fly if asked, and
prefetches.
Epoch `e` is a pure function of `(seed, e)`: its order is a permutation drawn
from both, and the noise, anomalies and crops of its global batch `b` come
from stateless random ops keyed by `(seed, e, b)` (an input pipeline draws its
batch's and keeps its own rows). So order, noise and anomalies are fresh every
epoch, the same in every run with the same seed whatever the strategy, number
of replicas or workers, or source (memory or files), and a run resumed at
epoch `e` sees what an uninterrupted run would. (`Dataset.shuffle` cannot give this: its seed must
be a Python value, so it can't depend on the epoch inside the stream.)

`eval_dataset` is one pass in order, its noise keyed by `(seed, batch)`.
"""

import numpy as np
import tensorflow as tf

from keras_ae.data import anomalies as anomalies_lib

# Separate random streams for training and evaluation with the same seed.
TRAIN_STREAM, EVAL_STREAM = 0, 1
ANOMALY_STREAM = 2  # folded into a training batch's seed: its anomalies
CROP_STREAM = 3  # and its crops: the images', then the pasted images'
MASKING_STREAM = 4  # and its masking noise
# Masking noise hides squares of these shares of the shorter side, one drawn
# per batch: 2, 4 or 7 px at 28x28, as RIAD (Zavrtanik et al., 2021) hides
# squares of several sizes.
MASKING_CELLS = (1 / 14, 1 / 7, 1 / 4)


def to_float(images):
    """uint8 0-255 → float32 0-1; float input is only cast."""
    if images.dtype == tf.uint8:
        return tf.cast(images, tf.float32) / 255.0
    return tf.cast(images, tf.float32)


def add_noise(images, stddev, seed, first_row=0, rows=None):
    """`clip(images + stddev * N(0, 1), 0, 1)`, from a stateless seed of shape [2].

    With `rows`, `images` are the rows `first_row, ...` of a batch of `rows`
    images, and get those rows of the noise drawn for the whole batch: the
    same however the batch is split.
    """
    first_row, count = tf.cast(first_row, tf.int32), tf.shape(images)[0]
    shape = tf.shape(images) if rows is None else tf.concat(
        [[tf.cast(rows, tf.int32)], tf.shape(images)[1:]], 0)
    noise = tf.random.stateless_normal(shape, seed=seed)[first_row:first_row + count]
    return tf.clip_by_value(images + stddev * noise, 0.0, 1.0)


def add_masking(images, share, seed, first_row=0, rows=None):
    """Masking noise (Vincent et al., 2008): `images` `[n, h, w, c]` with
    each square of a grid set to 0 with probability `share`. The squares'
    side is one of MASKING_CELLS of the shorter side (at least 1 px), drawn
    per batch from the stateless `seed`; with `rows`, as `add_noise`, the
    rows `first_row, ...` of the draw for a batch of `rows` images.

    A network that must fill in hidden squares from what surrounds them
    learns less of a copy: on `bench/defects.py` its plain reconstruction
    error finds small defects better."""
    height, width = images.shape[1], images.shape[2]
    first_row, count = tf.cast(first_row, tf.int32), tf.shape(images)[0]
    rows = count if rows is None else tf.cast(rows, tf.int32)
    sides = [max(1, round(cell * min(height, width))) for cell in MASKING_CELLS]
    which = tf.random.stateless_uniform([], seed, 0, len(sides), tf.int32)
    side = tf.gather(sides, which)
    key = tf.random.experimental.stateless_fold_in(seed, MASKING_STREAM)
    grid = tf.random.stateless_uniform(  # a static bound: the grid of the smallest squares
        [rows, -(-height // min(sides)), -(-width // min(sides))], key)[first_row:first_row + count]
    grid = tf.gather(tf.gather(grid, tf.range(height) // side, axis=1),
                     tf.range(width) // side, axis=2)
    return images * tf.cast(grid >= share, images.dtype)[..., None]


def corrupted(inputs, noise_stddev, masking, seed, first_row=0, rows=None):
    """`inputs` with the Gaussian noise (`add_noise`), then the masking noise
    (`add_masking`) asked for, each skipped at 0; `first_row` and `rows` as
    theirs."""
    if noise_stddev:
        inputs = add_noise(inputs, noise_stddev, seed, first_row, rows)
    if masking:
        inputs = add_masking(inputs, masking, seed, first_row, rows)
    return inputs


def with_anomalies(clean, foreign, seed, first_row=0, rows=None,
                   simulation=anomalies_lib.Simulation()):
    """`(inputs, targets)` for a detector trained on simulated anomalies:
    `clean` with `foreign` pasted in (`anomalies.simulate`, its own stream of
    the batch's `seed`, drawn as `simulation` says), and the clean images
    with the masks stacked on their channels."""
    seed = tf.random.experimental.stateless_fold_in(seed, ANOMALY_STREAM)
    inputs, masks = anomalies_lib.simulate(clean, foreign, seed, first_row, rows, simulation)
    return inputs, tf.concat([clean, masks], axis=-1)


def random_crops(images, size, seed, first_row=0, rows=None):
    """A random crop of `size` `(height, width)` of each of `images`
    `[n, H, W, c]`, from a stateless `seed` of shape [2]; with `rows`, the
    rows `first_row, ...` of a batch of `rows` get those rows' crops (as
    `add_noise`)."""
    first_row, count = tf.cast(first_row, tf.int32), tf.shape(images)[0]
    rows = count if rows is None else tf.cast(rows, tf.int32)
    corners = []
    for axis, (side, crop) in enumerate(zip(images.shape[1:3], size)):
        start = tf.random.stateless_uniform(
            [rows], tf.random.experimental.stateless_fold_in(seed, axis), 0, side - crop + 1,
            tf.int32)[first_row:first_row + count]
        corners.append(start[:, None] + tf.range(crop)[None])  # [n, crop]: rows, then columns
    rows_kept = tf.gather(images, corners[0], axis=1, batch_dims=1)
    return tf.gather(rows_kept, corners[1], axis=2, batch_dims=1)


def crops(crop, images, foreign, seed, first_row=0, rows=None):
    """`(images, foreign)` cropped to `crop` `(height, width)` at random
    places (`random_crops`, each from its own stream of the batch's `seed`),
    or as they are if `crop` is None."""
    if crop is None:
        return images, foreign
    seed = tf.random.experimental.stateless_fold_in(seed, CROP_STREAM)
    images = random_crops(images, crop, tf.random.experimental.stateless_fold_in(seed, 0),
                          first_row, rows)
    if foreign is not None:
        foreign = random_crops(foreign, crop, tf.random.experimental.stateless_fold_in(seed, 1),
                               first_row, rows)
    return images, foreign


def steps_per_epoch(num_examples, batch_size, smallest_batch=1):
    """Batches in one epoch of `num_examples` (see `train_dataset`)."""
    full, last = divmod(num_examples, batch_size)
    return full + (last >= smallest_batch)


def indexed_stream(load, count, *, batch_size, epochs, noise_stddev=0.0, masking=0.0,
                   anomalies=None, crop=None, seed=0, first_epoch=0,
                   smallest_batch=1, input_context=None, ram_budget=None):
    """`keras_ae.data.train_dataset` of `count` images read at random by `load`
    (int64 indices `[n]` → their images)."""
    used = min(count, steps_per_epoch(count, batch_size, smallest_batch) * batch_size)
    starts, sizes = _pieces(used, batch_size, input_context)
    # All pieces alike (always so on TPUs): a static batch dimension.
    static_size = int(sizes[0]) if len(set(sizes.tolist())) == 1 else None
    stream_key = tf.constant([seed, TRAIN_STREAM], tf.int64)

    def one_epoch(epoch):
        key = tf.random.experimental.stateless_fold_in(stream_key, epoch)
        # A full uniform shuffle: a permutation drawn from (seed, epoch) alone.
        order = tf.random.experimental.stateless_shuffle(
            tf.range(count, dtype=tf.int64), seed=key)

        def piece(start, size):
            positions = tf.ensure_shape(tf.range(start, start + size), [static_size])
            clean = load(tf.gather(order, positions))
            # The piece's rows of its global batch's noise and anomalies.
            batch, row = start // batch_size, start % batch_size
            rows = tf.minimum(tf.constant(batch_size, tf.int64), used - batch * batch_size)
            seed = tf.random.experimental.stateless_fold_in(key, batch)
            # Pasted from the image half an epoch away.
            foreign = load(tf.gather(order, (positions + count // 2) % count)) if (
                anomalies) else None
            clean, foreign = crops(crop, clean, foreign, seed, row, rows)  # before to_float
            inputs = targets = clean = to_float(clean)
            if anomalies:
                inputs, targets = with_anomalies(clean, to_float(foreign), seed, row, rows,
                                                 anomalies)
            return corrupted(inputs, noise_stddev, masking, seed, row, rows), targets

        return tf.data.Dataset.from_tensor_slices((starts, sizes)).map(
            piece, num_parallel_calls=tf.data.AUTOTUNE)

    dataset = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
    return finish(dataset, ram_budget)


def layout(input_context):
    """`(replicas, input pipelines, this pipeline's index)`."""
    if input_context is None:
        return 1, 1, 0
    return (input_context.num_replicas_in_sync, input_context.num_input_pipelines,
            input_context.input_pipeline_id)


def _pieces(used, batch_size, input_context):
    """`(starts, sizes)` (int64 lists) of the batches one pipeline yields per
    epoch, as positions in the epoch's order (see `train_dataset`)."""
    replicas, pipelines, pipeline = layout(input_context)
    per_pipeline = replicas // pipelines
    mine = range(pipeline * per_pipeline, (pipeline + 1) * per_pipeline)
    starts, sizes = [], []
    for batch_start in range(0, used, batch_size):
        size = min(batch_size, used - batch_start)
        start = batch_start
        for replica in range(replicas):
            piece = size // replicas + (replica < size % replicas)
            if replica in mine:
                starts.append(start)
                sizes.append(piece)
            start += piece
    return np.array(starts, np.int64), np.array(sizes, np.int64)


def eval_dataset(images, *, batch_size, noise_stddev=0.0, seed=0):
    """One pass over `images` (an array) in order, as `(input, clean)` batches,
    the input of batch `b` `eval_noise(clean, noise_stddev, seed, b)`."""
    batches = (
        tf.data.Dataset.from_tensor_slices(images)
        .batch(batch_size)
        .map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    )
    if not noise_stddev:
        return finish(batches.map(lambda x: (x, x)))
    return finish(batches.enumerate().map(
        lambda index, clean: (eval_noise(clean, noise_stddev, seed, index), clean),
        num_parallel_calls=tf.data.AUTOTUNE))


def eval_noise(clean, stddev, seed, batch):
    """Test batch number `batch` (float) with its noise, drawn from `(seed, batch)`
    alone: the same however the test images are read."""
    key = tf.constant([seed, EVAL_STREAM], tf.int64)
    # As int64 always: a Python int would fold in as int32, another key.
    batch = tf.cast(batch, tf.int64)
    return add_noise(clean, stddev, tf.random.experimental.stateless_fold_in(key, batch))


def finish(dataset, ram_budget=None):
    """`dataset` prefetched, its buffers within `ram_budget` bytes (None:
    tf.data's own), sharded by element under multi-worker."""
    options = tf.data.Options()
    if ram_budget:  # tf.data's autotuned buffers stay within it
        options.autotune.ram_budget = int(ram_budget)
    # In-memory sources have no files to shard: multi-worker shards elements.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
