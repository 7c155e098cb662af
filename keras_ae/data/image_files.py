"""A split's images as files, read and decoded as training streams them.

`ImageFiles` is the `keras_ae.data.image_data.Images` of a folder's split that
would not fit in memory decoded (`--input=stream`): it holds the paths only,
and its `loader` reads, decodes and shapes a batch of them by index inside the
tf.data pipeline, in parallel, with the same ops (`keras_ae.images`) the
in-memory reader stores the result of. Paths go through TensorFlow's file
system layer, so `gs://` works like a local path.

A file that turns unreadable while training (deleted, damaged, or of another
size when no `image_size` is set) fails the step that reads it; `unreadable`
then finds which files they are (one parallel pass, errors dropped and
counted), so that the run can name them or leave them out.
"""

import dataclasses
import hashlib
import os

import numpy as np
import tensorflow as tf

from keras_ae import images
from keras_ae.data import image_data
from keras_ae.data.image_data import error_reason


@dataclasses.dataclass(frozen=True)
class ImageFiles(image_data.Images):
    """Image files, each shaped to `image_shape` (uint8) when read.

    `resize` false means every file must already have `image_shape`'s height
    and width (a file that has not is an error naming it).
    """

    paths: tuple
    image_shape: tuple  # (height, width, channels)
    resize: bool = False
    crop_to_aspect_ratio: bool = False
    decoded: bool = False  # the files are `cached`'s: decoded and shaped already

    dtype = np.dtype(np.uint8)
    streamed = True
    repair = ("replace or remove the file(s) and rerun the same command to resume, or "
              "pass --skip_bad_images to leave such files out")

    def __len__(self):
        return len(self.paths)

    @property
    def shape(self):
        return (len(self.paths), *self.image_shape)

    def __getitem__(self, key):
        """The files at `key` (a slice, or an array of indices) as ImageFiles,
        as an array's `[]` gives an array."""
        paths = (self.paths[key] if isinstance(key, slice)
                 else tuple(self.paths[i] for i in np.asarray(key, np.int64)))
        return dataclasses.replace(self, paths=paths)

    def subset(self, indices):
        return self[indices]

    def in_memory(self):
        return self.read(np.arange(len(self)))

    def chunks(self, size):
        paths = tf.data.Dataset.from_tensor_slices(tf.constant(self.paths, tf.string))
        yield from (paths.map(self.load_one, num_parallel_calls=tf.data.AUTOTUNE)
                    .batch(size).prefetch(1).as_numpy_iterator())

    def unreadable(self, error):
        """`[(index, path, reason)]` of the files that cannot be read (one
        parallel pass over all of them), whatever `error` was."""
        bad = dict(unreadable(self))
        return [(i, path, bad[path]) for i, path in enumerate(self.paths) if path in bad]

    def load_one(self, path):
        """uint8 `image_shape` from one path (a scalar string tensor)."""
        if self.decoded:
            return tf.ensure_shape(tf.io.parse_tensor(tf.io.read_file(path), tf.uint8),
                                   self.image_shape)
        height, width, channels = self.image_shape
        image = images.decode(tf.io.read_file(path))
        if not self.resize:
            same_size = tf.debugging.Assert(
                tf.reduce_all(tf.shape(image)[:2] == [height, width]),
                [f"an image is not {height}x{width} like the first one; pass "
                 "--image_size=HEIGHT,WIDTH to resize them all to one. The file:", path],
            )
            with tf.control_dependencies([same_size]):
                image = tf.identity(image)
        image = images.shaped(image, (height, width) if self.resize else None, channels,
                              self.crop_to_aspect_ratio)
        return tf.ensure_shape(image, self.image_shape)

    def loader(self):
        """A function: int64 indices `[n]` → uint8 images `[n, *image_shape]`."""
        paths = tf.constant(self.paths)  # the file list is all a stream holds

        def load(indices):
            return tf.map_fn(lambda i: self.load_one(paths[i]), indices,
                             fn_output_signature=tf.TensorSpec(self.image_shape, tf.uint8),
                             parallel_iterations=16)

        return load

    def read(self, indices):
        """The images at `indices`, decoded: a uint8 array."""
        return self.loader()(tf.constant(np.asarray(indices, np.int64))).numpy()


def cached(files, cache_dir):
    """`files` decoded and shaped once into `cache_dir`, for images slow to
    decode: `(ImageFiles of the cached copies, [(path, reason)] of the files
    that could not be read)`.

    Each image is kept as a serialized uint8 tensor, read later without
    decoding, under a name hashed from its path, size and modification time
    and the shape asked for: a file changed since is decoded again, and runs
    of other shapes keep their own copies. Missing copies are written in one
    parallel pass, each under a temporary name renamed when complete, so a
    killed pass leaves no half-written copy and several processes may fill
    one cache. Old copies are never deleted: empty `cache_dir` to reclaim it.
    """
    shaped = f"{files.image_shape}|{files.resize}|{files.crop_to_aspect_ratio}"
    names = []
    for path in files.paths:
        stat = tf.io.gfile.stat(path)
        digest = hashlib.sha256(
            f"{shaped}|{path}|{stat.length}|{stat.mtime_nsec}".encode()).hexdigest()
        names.append(f"{cache_dir.rstrip('/')}/{digest[:2]}/{digest}.tensor")
    present = set(tf.io.gfile.glob(f"{cache_dir.rstrip('/')}/*/*.tensor"))
    missing = [i for i, name in enumerate(names) if name not in present]
    failed = set()
    if missing:
        for folder in {names[i].rsplit("/", 1)[0] for i in missing}:
            tf.io.gfile.makedirs(folder)
        sources = tf.constant([files.paths[i] for i in missing])
        temporary = [f"{names[i]}.tmp-{os.getpid()}" for i in missing]
        targets = tf.constant(temporary)

        def write(j):
            image = tf.io.serialize_tensor(files.load_one(sources[j]))
            with tf.control_dependencies([tf.io.write_file(targets[j], image)]):
                return tf.identity(j)

        written = set(
            tf.data.Dataset.range(len(missing))
            .map(write, num_parallel_calls=tf.data.AUTOTUNE)
            .ignore_errors()  # drops the files that cannot be read
            .as_numpy_iterator())
        for j, i in enumerate(missing):
            if j in written:
                tf.io.gfile.rename(temporary[j], names[i], overwrite=True)
            else:
                failed.add(i)
    kept = [i for i in range(len(files)) if i not in failed]
    copies = dataclasses.replace(files, paths=tuple(names[i] for i in kept), resize=False,
                                 crop_to_aspect_ratio=False, decoded=True)
    return copies, [(files.paths[i], reason(files, files.paths[i])) for i in sorted(failed)]


def unreadable(files):
    """`[(path, reason)]` of the files of `files` that cannot be read as images
    of its shape, in order: one parallel pass, then each failure's reason."""
    paths = tf.constant(files.paths)
    read = (
        tf.data.Dataset.from_tensor_slices(tf.range(len(files), dtype=tf.int64))
        .map(lambda i: (i, files.load_one(paths[i])),
             num_parallel_calls=tf.data.AUTOTUNE)
        .ignore_errors()  # drops the failing files
        .map(lambda i, _: i)
    )
    good = set(read.as_numpy_iterator())
    return [(path, reason(files, path)) for i, path in enumerate(files.paths) if i not in good]


def reason(files, path):
    """Why `path` cannot be read: TensorFlow's message, without its op names."""
    try:
        files.load_one(tf.constant(path))
    except tf.errors.OpError as e:
        return error_reason(e)
    return "read again, it was readable (was it replaced?)"
