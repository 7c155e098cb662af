"""A TensorFlow Datasets split read from its own record files as training
streams it.

`TfdsRecords` is the `keras_ae.data.image_data.Images` of a split that would not
fit in memory decoded (`--input=stream`): it holds which records of which files make the split
(TFDS's file instructions, read from its `dataset_info.json`) and decodes
records inside the tf.data pipeline with TFDS's own feature decoding.

TFRecord files cannot be read at random, so an epoch's order is drawn in two
stages, both from (seed, epoch) alone: the files in a shuffled order,
interleaved record by record, then each block of consecutive records
(`shuffle_block`) permuted. An epoch is therefore the same whenever it is
read, and a run resumed at epoch k sees what an uninterrupted run sees; but it
is not the order an in-memory run of the same seed draws, and a record moves
only within its block (TFDS shuffles the records when it writes them, which
makes up for much of that).

Each input pipeline (one per worker) reads its own contiguous, equal share of
the split (`share`): the shares are disjoint, cover the split but for fewer
records than there are pipelines, and give every worker the same number of
steps, as synchronous training needs.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_ae import images
from keras_ae.data import pipeline
from keras_ae.data import image_data
from keras_ae.data.image_data import error_reason

# Records shuffled together at most, and at least (memory permitting).
_MOST_SHUFFLED, _LEAST_SHUFFLED = 10_000, 256


@dataclasses.dataclass(frozen=True)
class TfdsRecords(image_data.Images):
    """The first `count` records of a TFDS split, each image shaped to
    `image_shape` (uint8) when read.

    `resize` false means every image must already have `image_shape`'s height
    and width (one that has not is an error).
    """

    name: str
    data_dir: str | None
    split: str
    image_key: str
    image_shape: tuple  # (height, width, channels)
    count: int
    record_bytes: float  # mean size of a record in the files
    resize: bool = False
    crop_to_aspect_ratio: bool = False

    dtype = np.dtype(np.uint8)
    streamed = True
    repair = ("restore the file(s) (or prepare the dataset again) and rerun the same "
              "command to resume")

    def __len__(self):
        return self.count

    @property
    def shape(self):
        return (self.count, *self.image_shape)

    def __getitem__(self, key):
        """`[:n]`: the first n records. Records allow no other selection."""
        if not isinstance(key, slice) or key.start or key.step:
            raise TypeError("records of a TFDS split can only be sliced as [:n]")
        return dataclasses.replace(self, count=len(range(self.count)[key]))

    def subset(self, indices):
        """The first n records (`indices` must be `0 .. n-1`): records allow no
        other selection."""
        indices = np.asarray(indices, np.int64)
        if not np.array_equal(indices, np.arange(len(indices))):
            raise TypeError(f"records of {self.name} {self.split} can only be read from "
                            "the first; pass --input=memory to select others")
        return self[:len(indices)]

    def in_memory(self):
        return self.read()

    def chunks(self, size):
        yield from self._decoded().batch(size).as_numpy_iterator()

    def sample(self, count, seed):
        """The first `count` records (TFDS shuffled them when it wrote the
        files), whatever the seed: records are read in order."""
        return self[:count].read()

    def steps_per_epoch(self, batch_size, smallest_batch=1, pipelines=1):
        """Batches in one epoch of `count` records read by `pipelines` input
        pipelines (see `train_stream`): every batch full, the pipelines' equal
        shares."""
        return (self.count // pipelines) // (batch_size // pipelines)

    def unreadable(self, error):
        """Records cannot be left out: the split, and TensorFlow's message
        (which names the file)."""
        return [(None, f"{self.name!r} {self.split} records", error_reason(error))]

    def builder(self):
        import tensorflow_datasets as tfds  # only here: it takes seconds to import

        return tfds.builder(self.name, data_dir=self.data_dir)

    def share(self, pipelines=1, pipeline=0):
        """`[(file, skip, take)]`: where input pipeline `pipeline` of
        `pipelines` reads its share, the records
        `[pipeline * n, (pipeline + 1) * n)` of the split, n = count // pipelines."""
        size = self.count // pipelines
        start, end = pipeline * size, (pipeline + 1) * size
        reads, position = [], 0
        for file in self.builder().info.splits[self.split].file_instructions:
            first, last = max(start, position), min(end, position + file.take)
            if first < last:
                reads.append((str(file.filename), file.skip + first - position, last - first))
            position += file.take
        return reads

    def shuffle_block(self, memory_budget=None):
        """Records shuffled together: as many as `memory_budget` bytes of
        encoded records allow, between 256 and 10,000, and no more than the
        split has."""
        fits = _MOST_SHUFFLED if memory_budget is None else int(memory_budget // self.record_bytes)
        return max(1, min(self.count, _MOST_SHUFFLED, max(_LEAST_SHUFFLED, fits)))

    def decoder(self):
        """A function: a serialized record (scalar string) → its uint8 image."""
        import tensorflow_datasets as tfds

        features = self.builder().info.features
        # Other image features are left encoded: only ours is decoded.
        skipped = {key: tfds.decode.SkipDecoding() for key, feature in features.items()
                   if key != self.image_key and isinstance(feature, tfds.features.Image)}
        height, width, channels = self.image_shape

        def decode(serialized):
            example = features.deserialize_example(serialized, decoders=skipped)
            image = images.drop_alpha(example[self.image_key])
            if not self.resize:
                same_size = tf.debugging.Assert(
                    tf.reduce_all(tf.shape(image)[:2] == [height, width]),
                    [f"an image of {self.name} {self.split} is not {height}x{width}; pass "
                     "--image_size=HEIGHT,WIDTH to resize them all to one"])
                with tf.control_dependencies([same_size]):
                    image = tf.identity(image)
            image = images.shaped(image, (height, width) if self.resize else None, channels,
                                  self.crop_to_aspect_ratio)
            return tf.ensure_shape(image, self.image_shape)

        return decode

    def labels(self, key):
        """The `key` feature (a label) of every record, in `read`'s order,
        their images left encoded: an int64 array."""
        import tensorflow_datasets as tfds

        features = self.builder().info.features
        skipped = {k: tfds.decode.SkipDecoding() for k, feature in features.items()
                   if isinstance(feature, tfds.features.Image)}
        if not self.count:
            return np.zeros(0, np.int64)
        labels = reads(self.share()).map(
            lambda record: features.deserialize_example(record, decoders=skipped)[key])
        return np.fromiter(labels.as_numpy_iterator(), np.int64, count=self.count)

    def read(self):
        """All `count` images, decoded, the files interleaved as `reads` does:
        a uint8 array."""
        if not self.count:
            return np.zeros(self.shape, np.uint8)
        return np.concatenate(list(self.chunks(1024)))

    def _decoded(self):
        """The images in order, decoded: a tf.data stream."""
        return reads(self.share()).map(self.decoder(), num_parallel_calls=tf.data.AUTOTUNE)

    def train_stream(self, *, batch_size, epochs, noise_stddev=0.0, masking=0.0, anomalies=None,
                     crop=None, seed=0, first_epoch=0, smallest_batch=1, input_context=None,
                     ram_budget=None):
        """`keras_ae.data.train_dataset` of the records, read in the order they allow.

        Each input pipeline reads its own share of the split (`share`) and
        yields whole batches of `batch_size / replicas` images, one per replica
        in turn, `steps_per_epoch` per epoch (`smallest_batch` aside: every
        batch is full); the remainder of a share is left out. An epoch's order
        (the files', then each block of records permuted), crops, noise and
        anomalies come from (seed, epoch, pipeline) alone.
        """
        replicas, pipelines, index = pipeline.layout(input_context)
        per_replica = batch_size // replicas
        share = self.share(pipelines, index)
        batches = self.steps_per_epoch(batch_size, pipelines=pipelines) * (replicas // pipelines)
        # Encoded records shuffled together: half of the budget, the rest decoded batches.
        block = self.shuffle_block(ram_budget and ram_budget // 2)
        decode = self.decoder()
        stream_key = tf.constant([seed, pipeline.TRAIN_STREAM], tf.int64)

        def one_epoch(epoch):
            key = tf.random.experimental.stateless_fold_in(
                tf.random.experimental.stateless_fold_in(stream_key, epoch), index)
            files_key, blocks_key, noise_key = (
                tf.random.experimental.stateless_fold_in(key, i) for i in range(3))
            order = tf.random.experimental.stateless_shuffle(
                tf.range(len(share), dtype=tf.int64), seed=files_key)

            def shuffled(block_index, records):
                # (tf.data's shuffle cannot take this seed while Keras sets a global one.)
                seed = tf.random.experimental.stateless_fold_in(blocks_key, block_index)
                return tf.data.Dataset.from_tensor_slices(
                    tf.random.experimental.stateless_shuffle(records, seed=seed))

            clean = (reads(share, order)
                     .batch(block).enumerate().flat_map(shuffled)
                     .take(batches * per_replica)
                     .map(decode, num_parallel_calls=tf.data.AUTOTUNE)
                     .batch(per_replica, drop_remainder=True))

            def inputs_and_targets(i, x):
                seed = tf.random.experimental.stateless_fold_in(noise_key, i)
                # Pasted from the batch's next image; cropped before to_float.
                foreign = tf.roll(x, 1, axis=0) if anomalies else None
                x, foreign = pipeline.crops(crop, x, foreign, seed)
                inputs = targets = x = pipeline.to_float(x)
                if anomalies:
                    inputs, targets = pipeline.with_anomalies(x, pipeline.to_float(foreign), seed,
                                                              simulation=anomalies)
                return pipeline.corrupted(inputs, noise_stddev, masking, seed), targets

            return clean.enumerate().map(inputs_and_targets)

        dataset = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
        return pipeline.finish(dataset, ram_budget)


def reads(share, order=None, cycle_length=16):
    """The serialized records of `share` (see `TfdsRecords.share`), files in
    `order` (int64 indices into `share`; default as listed) and interleaved
    record by record, `cycle_length` files at a time, deterministically."""
    paths, skips, takes = zip(*share)
    paths = tf.constant(paths)
    skips, takes = tf.constant(skips, tf.int64), tf.constant(takes, tf.int64)
    if order is None:
        order = tf.range(len(share), dtype=tf.int64)

    def records(i):
        return tf.data.TFRecordDataset(paths[i]).skip(skips[i]).take(takes[i])

    return tf.data.Dataset.from_tensor_slices(order).interleave(
        records, cycle_length=min(cycle_length, len(share)), block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
