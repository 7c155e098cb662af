"""Simulated anomalies, drawn on the fly from normal images alone (DRAEM's recipe).

DRAEM (Zavrtanik, Kristan, Skočaj, ICCV 2021) never sees a real defect: it
pastes foreign texture into normal images, inside masks shaped by thresholded
Perlin noise, and learns to restore the image and to segment the paste.
`simulate` does this in the `tf.data` pipeline, for a batch at a time:

- the mask: smooth noise at one of `SCALES` (a grid of random values
  interpolated bicubically, "value noise", as smooth as Perlin's and a
  resize away), thresholded; blobs from a few pixels (small defects) to a
  third of the image, gathered in a part of it, in half of the images, none
  in the rest;
- the paste: another training image (the caller's `foreign`), turned by a
  quarter turn, shifted, its contrast and brightness changed, and in three
  quarters of the images inverted, blurred or one flat grey instead (DRAEM
  pastes photographs of other textures, which cannot be downloaded here),
  blended with the image by a random opacity.

Every draw comes from stateless random ops keyed by the batch's seed, for the
whole global batch, so a replica's rows are the same however the batch is
split, and a run resumed at an epoch sees what it saw.

Example:

    images, masks = anomalies.simulate(clean, foreign, seed=[0, 1])
"""

import tensorflow as tf

# Cells of the noise grid along the image's shorter side: 2 cells make blobs
# of about a third of the side, 32 of a few pixels at 128x128.
SCALES = (2, 4, 8, 16, 32)
ANOMALOUS_SHARE = 0.5  # of training images, given an anomaly (DRAEM: half)
THRESHOLD = (0.7, 0.9)  # of the noise, in [0, 1]: masks of under 1% to ~15% of the image
OPACITY = (0.2, 1.0)  # of the paste over the image (DRAEM: 1 - beta, beta in [0, 0.8])


def simulate(images, foreign, seed, first_row=0, rows=None):
    """`(images with anomalies, masks)`: float `images` `[n, h, w, c]` in
    [0, 1] with `foreign` (images of the same shape) pasted in simulated
    anomalies, and their float32 masks `[n, h, w, 1]` (1 inside).

    `seed` is a stateless seed of shape [2]. With `rows`, `images` are the
    rows `first_row, ...` of a batch of `rows` images and get those rows of
    the anomalies drawn for the whole batch (as `pipeline.add_noise`).
    """
    first_row = tf.cast(first_row, tf.int32)
    count = tf.shape(images)[0]
    rows = count if rows is None else tf.cast(rows, tf.int32)
    height, width = images.shape[1], images.shape[2]
    keys = [tf.random.experimental.stateless_fold_in(seed, i) for i in range(9)]

    def draw(key, shape, low=0.0, high=1.0):  # the rows of the global batch's draw
        full = tf.concat([[rows], tf.constant(shape, tf.int32)], 0)
        values = tf.random.stateless_uniform(full, key, low, high)
        return values[first_row:first_row + count]

    masks = _masks(draw, keys[:3], height, width)
    # The paste: a quarter turn and a shift, drawn per batch; contrast and
    # brightness per image.
    turned = tf.image.rot90(foreign, _uniform_int(keys[3], 4)) if height == width else foreign
    shift = tf.random.stateless_uniform([2], keys[4], 0, min(height, width), tf.int32)
    turned = tf.roll(turned, shift, axis=[1, 2])
    contrast = draw(keys[5], [1, 1, 1], 0.5, 1.5)
    brightness = draw(keys[7], [1, 1, 1], -0.25, 0.25)
    paste = tf.clip_by_value((turned - 0.5) * contrast + 0.5 + brightness, 0.0, 1.0)
    # Per image, the paste as it is, inverted, blurred (a smear), or one flat
    # grey (a stain): a paste of the same texture alone can be invisible.
    kind = tf.one_hot(tf.cast(draw(keys[6], []) * 4, tf.int32), 4)
    grey = draw(keys[8], [1, 1, 2])
    small = (max(1, height // 8), max(1, width // 8))
    blurred = tf.image.resize(tf.image.resize(paste, small, "area"), (height, width), "bilinear")
    fills = tf.stack([paste, 1.0 - paste, blurred, tf.broadcast_to(grey[..., :1],
                                                                   tf.shape(paste))])
    paste = tf.einsum("knhwc,nk->nhwc", fills, kind)
    opacity = masks * (OPACITY[0] + (OPACITY[1] - OPACITY[0]) * grey[..., 1:])
    return images * (1.0 - opacity) + paste * opacity, masks


def _masks(draw, keys, height, width):
    """float32 `[n, h, w, 1]`: smooth noise at a random one of `SCALES`,
    thresholded, kept where the coarsest noise is above its median (so that
    fine blobs gather in a part of the image, as a defect does), zero in all
    but about ANOMALOUS_SHARE of the images."""
    side = min(height, width)
    noise = []
    for scale in SCALES:
        cells = (max(1, round(scale * height / side)) + 1, max(1, round(scale * width / side)) + 1)
        grid = draw(tf.random.experimental.stateless_fold_in(keys[0], scale), [*cells, 1])
        noise.append(tf.image.resize(grid, (height, width), "bicubic"))
    which = tf.one_hot(tf.cast(draw(keys[1], []) * len(SCALES), tf.int32), len(SCALES))
    chosen = tf.einsum("snhwc,ns->nhwc", tf.stack(noise), which)
    uniform = draw(keys[2], [2])
    threshold = THRESHOLD[0] + (THRESHOLD[1] - THRESHOLD[0]) * uniform[:, 0]
    present = tf.cast(uniform[:, 1] < ANOMALOUS_SHARE, tf.float32)
    inside = (chosen > threshold[:, None, None, None]) & (noise[0] > 0.5)
    return tf.cast(inside, tf.float32) * present[:, None, None, None]


def _uniform_int(key, count):
    return tf.random.stateless_uniform([], key, 0, count, tf.int32)
