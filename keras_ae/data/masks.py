"""Ground-truth defect masks of a folder's test images, laid out as MVTec AD's.

    <test_dir>/<defect>/<name>.png             a test image
    <mask_dir>/<defect>/<name>_mask.png        its mask (MVTec AD's name),
    <mask_dir>/<defect>/<name>.png             or its image's (anomalib's Folder)

`mask_dir` defaults to `ground_truth/` beside the test folder, as MVTec AD lays
out `train/good/`, `test/<defect>/`, `ground_truth/<defect>/`, else inside it,
as MVTec AD 2 lays out `test_public/bad/`, `test_public/ground_truth/bad/`
(`default_dir`; the folder reader leaves a mask folder inside the test folder
out of the test images).
A mask is read as its image is (`keras_ae.images`: decoded, resized bilinear
to the model's size, cropped alike), its nonzero pixels the defect; a resized
pixel is a defect when at least half of what it covers was. Images without a
mask have none (normal images need none).
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from keras_ae import files
from keras_ae import images
from keras_ae.data.image_data import DataError
from keras_ae.data.image_data import error_reason

MASK_DIR = "ground_truth"


def default_dir(test_dir):
    """`ground_truth/` beside `test_dir` (MVTec AD), else inside it (MVTec AD
    2), if either exists; else None."""
    if not test_dir:
        return None
    for candidate in (files.beside(test_dir, MASK_DIR), f"{test_dir.rstrip('/')}/{MASK_DIR}"):
        if tf.io.gfile.isdir(candidate):
            return candidate
    return None


@dataclasses.dataclass(frozen=True)
class Masks:
    """The masks found for a test split, read as evaluation needs them
    (`chunk`), so that what is held does not grow with their number or size."""

    indices: np.ndarray  # int64: the test images that have a mask, ascending
    paths: tuple  # the mask file of each
    directory: str
    image_size: tuple  # (height, width): each shaped as its image
    crop_to_aspect_ratio: bool = False

    def chunk(self, start, stop):
        """`(masks, has_mask)` of test images `start .. stop - 1`: bool
        `[n, height, width]` (True = defect; none where an image has no
        mask) and bool `[n]`."""
        masks = np.zeros((stop - start, *self.image_size), bool)
        first, last = np.searchsorted(self.indices, [start, stop])
        for index, path in zip(self.indices[first:last], self.paths[first:last]):
            masks[index - start] = _shaped(_decode(path), self.image_size,
                                           self.crop_to_aspect_ratio)
        has_mask = np.zeros(stop - start, bool)
        has_mask[self.indices[first:last] - start] = True
        return masks, has_mask


def read(mask_dir, test_dir, test_paths, image_size, crop_to_aspect_ratio=False):
    """The `Masks` in `mask_dir` of the test images at `test_paths` (under
    `test_dir`), each to be shaped to `image_size` as its image is. A
    DataError names a mask that does not decode or whose size is not its
    image's: each is read once here, and again when evaluated."""
    indices, paths = [], []
    for i, path in enumerate(test_paths):
        mask_path = _mask_path(mask_dir, path[len(test_dir.rstrip("/")) + 1:])
        if mask_path is None:
            continue
        mask = _decode(mask_path)
        own = tuple(images.decode(tf.io.read_file(path)).shape[:2])
        if tuple(mask.shape[:2]) != own:
            raise DataError(
                f"{mask_path}: the mask is {mask.shape[1]}x{mask.shape[0]} pixels but its image "
                f"{path} is {own[1]}x{own[0]}; a mask must have its image's size")
        indices.append(i)
        paths.append(mask_path)
    return Masks(np.array(indices, np.int64), tuple(paths), mask_dir, tuple(image_size),
                 crop_to_aspect_ratio)


def _decode(mask_path):
    try:
        return images.decode(tf.io.read_file(mask_path))
    except tf.errors.OpError as e:
        raise DataError(f"{mask_path}: not a readable mask ({error_reason(e)}); replace it "
                        "with a PNG whose nonzero pixels mark the defect") from e


def _shaped(mask, image_size, crop_to_aspect_ratio):
    """bool `[height, width]`: a resized pixel is a defect when at least half
    of what it covers was."""
    defect = tf.cast(tf.reduce_max(mask, axis=-1, keepdims=True) > 0, tf.uint8) * 255
    return images.resize(defect, image_size, crop_to_aspect_ratio).numpy()[..., 0] >= 128


def _mask_path(mask_dir, relative):
    folder, _, name = relative.replace(os.sep, "/").rpartition("/")
    stem = os.path.splitext(name)[0]
    base = mask_dir.rstrip("/") + (f"/{folder}" if folder else "")
    for candidate in (f"{base}/{stem}_mask.png", f"{base}/{name}"):
        if tf.io.gfile.exists(candidate):
            return candidate
    return None
