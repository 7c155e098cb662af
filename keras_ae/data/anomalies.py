"""Simulated anomalies, drawn on the fly from normal images alone (DRAEM's recipe).

DRAEM (Zavrtanik, Kristan, Skočaj, ICCV 2021) never sees a real defect: it
pastes foreign texture into normal images, inside masks shaped by thresholded
Perlin noise, and learns to restore the image and to segment the paste.
`simulate` does this in the `tf.data` pipeline, for a batch at a time:

- the mask: smooth noise with one of `SCALES` cells along each axis (a
  grid of random values interpolated by smoothstep, "value noise", as
  smooth as Perlin's), turned by a random angle and thresholded; blobs
  from a few pixels (small defects) to a third of the image, and streaks
  (scratches) where the axes' scales differ, gathered in a part of it; or
  in a share of them (the caller's `rectangles`) an axis-aligned rectangle,
  CutPaste's (Li et al., CVPR 2021), as straight-edged as a square part of
  another part pasted in; in half of the images, none in the rest;
- the paste: another training image (the caller's `foreign`), turned by a
  quarter turn, shifted, its contrast and brightness changed (in the
  caller's `paste_at_place` share of the images to about the grey of what
  it covers, as a foreign texture of the same brightness), and in four
  fifths of the images inverted, blurred, one flat grey or a grain of
  smooth noise or (the caller's `cells`) Worley noise's cells instead
  (DRAEM pastes photographs of other textures, which cannot be downloaded
  here), the grain and cells about a random grey or (`grain_at_place`)
  the grey of what they cover, blended with the image by a random opacity
  (the flat grey, a stain, opaque).

What is drawn besides the seed is a `Simulation`: the recipe's for the
run's images (`keras_ae.variants.base_recipe.Recipe.on_images`).

Every draw comes from stateless random ops keyed by the batch's seed, for the
whole global batch, so a replica's rows are the same however the batch is
split, and a run resumed at an epoch sees what it saw.

Example:

    images, masks = anomalies.simulate(clean, foreign, seed=[0, 1],
                                       simulation=Simulation(rectangles=0.5))
"""

import dataclasses
import math

import tensorflow as tf

# Cells of the noise grid along an axis, per the image's shorter side, drawn
# for each axis: 2 cells make blobs of about a third of the side, 32 of a few
# pixels at 128x128, 2 by 32 a streak.
SCALES = (2, 4, 8, 16, 32)
ANOMALOUS_SHARE = 0.5  # of training images, given an anomaly (DRAEM: half)
RECTANGLE_SIDES = (0.1, 0.4)  # shares of the image's sides
THRESHOLD = (0.7, 0.9)  # of the noise, in [0, 1]: masks of under 1% to ~15% of the image
OPACITY = (0.4, 1.0)  # of the paste over the image (DRAEM: 1 - beta, beta in [0, 0.8])
MIN_BRIGHTNESS, MAX_BRIGHTNESS = 0.1, 0.3  # of the paste's change of brightness
FILLS = ("paste", "inverted", "blurred", "grey", "grain", "cells")  # cells: if asked
GRAIN_CELLS = (16, 64)  # the grain fill's cells along the shorter side
CELL_POINTS = 16  # the cells fill's points, on a torus of the shorter side's square
CELL_ZOOM = (0.5, 2.0)  # the torus' periods along the shorter side: cells of 1/8 to 1/2 of it
GRAIN_AT_PLACE = 0.1  # at place: the grain's grey at most this off the covered grey


@dataclasses.dataclass(frozen=True)
class Simulation:
    """What `simulate` draws, besides its seed.

    Attributes:
        rectangles: the share of the masks drawn as axis-aligned rectangles
            (CutPaste's), not the noise's blobs. Default 0.
        grain_at_place: the grain fill about the grey of what it covers
            (within GRAIN_AT_PLACE), so that it differs from the image by its
            grain alone, as a foreign texture of the same brightness does;
            else about a random grey. Default False.
        paste_at_place: the share of the images whose paste (and so its
            inversion and blur) is about the grey of what it covers (within
            GRAIN_AT_PLACE), as a foreign texture of the texture's own
            brightness; the rest brightened or darkened by MIN_BRIGHTNESS to
            MAX_BRIGHTNESS. Default 0.
        cells: a sixth fill, cells of Worley noise (`_cells`), as a foreign
            texture of pebbles, scales or cracks; about the grain's grey (so
            at place with `grain_at_place`). Default False: five fills.
    """

    rectangles: float = 0.0
    grain_at_place: bool = False
    paste_at_place: float = 0.0
    cells: bool = False


def simulate(images, foreign, seed, first_row=0, rows=None, simulation=Simulation()):
    """`(images with anomalies, masks)`: float `images` `[n, h, w, c]` in
    [0, 1] with `foreign` (images of the same shape) pasted in simulated
    anomalies drawn as `simulation` says (a `Simulation`), and their float32
    masks `[n, h, w, 1]` (1 inside).

    `seed` is a stateless seed of shape [2]. With `rows`, `images` are the
    rows `first_row, ...` of a batch of `rows` images and get those rows of
    the anomalies drawn for the whole batch (as `pipeline.add_noise`).
    """
    height, width = images.shape[1], images.shape[2]
    keys = [tf.random.experimental.stateless_fold_in(seed, i) for i in range(10)]
    draw = _drawer(images, first_row, rows)
    masks = _masks(draw, keys[:3], height, width, simulation.rectangles)
    covered = _covered(images, masks)  # the grey the fills at place follow
    paste = _paste(draw, keys, foreign, masks, covered, simulation.paste_at_place)
    # Per image one of FILLS: the paste as it is, inverted, blurred (a smear),
    # one flat grey (a stain), a grain of another scale about a grey, or cells
    # (foreign textures): a paste of the same texture alone can be invisible.
    grey, strength, roughness = tf.split(draw(keys[8], [1, 1, 3]), 3, axis=-1)
    small = (max(1, height // 8), max(1, width // 8))
    blurred = tf.image.resize(tf.image.resize(paste, small, "area"), (height, width), "bilinear")
    # The grain's and the cells' grey: at place within GRAIN_AT_PLACE of what they cover.
    textured = (covered + (grey - 0.5) * 2.0 * GRAIN_AT_PLACE
                if simulation.grain_at_place else grey)
    fills = [paste, 1.0 - paste, blurred, grey, _grain(draw, keys[9], images, textured, roughness)]
    if simulation.cells:  # its own stream: the other draws are the same without it
        fills.append(_cells(draw, tf.random.experimental.stateless_fold_in(keys[9], 5), images,
                            textured, roughness))
    kind = tf.one_hot(tf.cast(draw(keys[6], []) * len(fills), tf.int32), len(fills))
    fills = tf.stack([tf.broadcast_to(fill, tf.shape(paste)) for fill in fills])
    paste = tf.einsum("knhwc,nk->nhwc", fills, kind)
    # A stain (the flat grey) covers what it is on: opaque, and so flat, as
    # the LocalContrast channel of the detector can tell (BUILD.md).
    stain = kind[:, FILLS.index("grey"), None, None, None]
    opacity = masks * tf.maximum(OPACITY[0] + (OPACITY[1] - OPACITY[0]) * strength, stain)
    return images * (1.0 - opacity) + paste * opacity, masks


def _paste(draw, keys, foreign, masks, covered, at_place):
    """The paste fill: `foreign` turned by a quarter turn and shifted (drawn
    per batch), its contrast changed per image and its brightness by
    MIN_BRIGHTNESS to MAX_BRIGHTNESS either way, or in an `at_place` share of
    the images its mean under `masks` moved to within GRAIN_AT_PLACE of
    `covered`, the grey they cover in the images."""
    height, width = foreign.shape[1], foreign.shape[2]
    turned = tf.image.rot90(foreign, _uniform_int(keys[3], 4)) if height == width else foreign
    shift = tf.random.stateless_uniform([2], keys[4], 0, min(height, width), tf.int32)
    turned = tf.roll(turned, shift, axis=[1, 2])
    contrast = draw(keys[5], [1, 1, 1], 0.5, 1.5)
    brightness = draw(keys[7], [1, 1, 1], -1.0, 1.0)
    brightness = tf.sign(brightness) * (MIN_BRIGHTNESS
                                        + (MAX_BRIGHTNESS - MIN_BRIGHTNESS) * tf.abs(brightness))
    paste = tf.clip_by_value((turned - 0.5) * contrast + 0.5 + brightness, 0.0, 1.0)
    if not at_place:
        return paste
    placed = tf.clip_by_value(
        (turned - _covered(turned, masks)) * contrast + covered
        + brightness / MAX_BRIGHTNESS * GRAIN_AT_PLACE, 0.0, 1.0)
    chosen = draw(tf.random.experimental.stateless_fold_in(keys[7], 3), [1, 1, 1]) < at_place
    return tf.where(chosen, placed, paste)


def _covered(images, masks):
    """The mean grey `[n, 1, 1, 1]` of what `masks` cover in `images`."""
    return tf.reduce_sum(images * masks, [1, 2, 3], keepdims=True) / (
        tf.reduce_sum(masks, [1, 2, 3], keepdims=True) * images.shape[-1] + 1e-6)


def _grain(draw, key, images, grey, roughness):
    """The grain fill `[n, h, w, 1]` for `images`: smooth noise of
    GRAIN_CELLS cells about `grey` `[n, 1, 1, 1]`, its contrast by
    `roughness`."""
    height, width = images.shape[1], images.shape[2]
    side = min(height, width)
    cells = draw(key, [2], *GRAIN_CELLS) * [height / side, width / side]
    grain = _noise(draw, tf.random.experimental.stateless_fold_in(key, 1), height, width, cells,
                   most=GRAIN_CELLS[1])
    return tf.clip_by_value(grey + (grain - 0.5) * (1.0 + 2.0 * roughness), 0.0, 1.0)


def _cells(draw, key, images, grey, roughness):
    """The cells fill `[n, h, w, 1]` for `images`, Worley noise (pebbles,
    scales, cracks): CELL_POINTS random points on a torus repeated CELL_ZOOM
    times along the shorter side, each pixel its nearest point's cell's
    grey, lighter toward the point and darker toward the cell's edge, about
    `grey` `[n, 1, 1, 1]`, its contrast by `roughness`."""
    height, width = images.shape[1], images.shape[2]
    side = min(height, width)
    points = draw(key, [CELL_POINTS, 3])  # y, x on the torus, and the cell's grey
    zoom = draw(tf.random.experimental.stateless_fold_in(key, 1), [1], *CELL_ZOOM)

    def on_torus(length, axis):  # [n, length, 1, k] or [n, 1, length, k]: to each point
        position = (tf.range(length, dtype=tf.float32) + 0.5) / side
        position = tf.math.floormod(position[None, :, None] * zoom[:, :, None], 1.0)
        offset = tf.abs(position - points[:, None, :, axis])
        offset = tf.minimum(offset, 1.0 - offset)
        return offset[:, :, None] if axis == 0 else offset[:, None]

    dy, dx = on_torus(height, 0), on_torus(width, 1)
    nearest = tf.math.top_k(-(dy * dy + dx * dx + 1e-8), 2)  # [n, h, w, 2]: squared, negated
    near, next_near = tf.unstack(tf.sqrt(-nearest.values), axis=-1)
    inside = (next_near - near) / (next_near + near)
    cell = tf.gather(points[..., 2], nearest.indices[..., 0], batch_dims=1)
    value = (cell - 0.5) * 0.6 + (tf.sqrt(inside) - 0.5) * 0.6
    return tf.clip_by_value(grey + value[..., None] * (0.5 + roughness), 0.0, 1.0)


def _drawer(images, first_row, rows):
    """`draw(key, shape, low=0, high=1, then=None)`: the rows of `images`
    (rows `first_row, ...` of a global batch of `rows`, or all of it) in a
    uniform draw `[rows, *shape]` for the whole global batch, mapped by
    `then` before its rows are taken: vectorized math (a cosine) can round
    an element otherwise in a batch of another size."""
    first_row = tf.cast(first_row, tf.int32)
    count = tf.shape(images)[0]
    rows = count if rows is None else tf.cast(rows, tf.int32)

    def draw(key, shape, low=0.0, high=1.0, then=None):
        full = tf.concat([[rows], tf.constant(shape, tf.int32)], 0)
        values = tf.random.stateless_uniform(full, key, low, high)
        return (then(values) if then else values)[first_row:first_row + count]

    return draw


def _masks(draw, keys, height, width, rectangles):
    """float32 `[n, h, w, 1]`: smooth noise (`_noise`) with a random number of
    cells along each axis, one of `SCALES` each (DRAEM's Perlin scales, drawn
    per axis: blobs, or streaks where they differ), turned by a random angle,
    thresholded; kept where a coarse noise is above its median (so that fine
    blobs gather in a part of the image, as a defect does); or in about
    `rectangles` of them a rectangle (`_rectangles`); zero in all but about
    ANOMALOUS_SHARE of the images."""
    side = min(height, width)
    scales = tf.gather(tf.constant(SCALES, tf.float32),
                       tf.cast(draw(keys[1], [2]) * len(SCALES), tf.int32))
    fine = _noise(draw, keys[0], height, width, scales * [height / side, width / side])
    fine = _turned(fine, draw(tf.random.experimental.stateless_fold_in(keys[1], 1), [],
                              then=_angle))
    coarse = _noise(draw, tf.random.experimental.stateless_fold_in(keys[0], 1), height, width,
                    tf.fill([tf.shape(scales)[0], 2], 2.0) * [height / side, width / side])
    uniform = draw(keys[2], [2])
    threshold = THRESHOLD[0] + (THRESHOLD[1] - THRESHOLD[0]) * uniform[:, 0]
    present = tf.cast(uniform[:, 1] < ANOMALOUS_SHARE, tf.float32)
    inside = (fine > threshold[:, None, None, None]) & (coarse > 0.5)
    if rectangles:  # its own stream: the other draws are the same without it
        box = draw(tf.random.experimental.stateless_fold_in(keys[2], 7), [5])
        inside = tf.where((box[:, 4] < rectangles)[:, None, None, None],
                          _rectangles(box[:, :4], height, width), inside)
    return tf.cast(inside, tf.float32) * present[:, None, None, None]


def _rectangles(box, height, width):
    """bool `[n, h, w, 1]`: per image an axis-aligned rectangle, its sides
    (RECTANGLE_SIDES) and its corner drawn by `box` `[n, 4]` (uniform in
    [0, 1])."""
    sides = RECTANGLE_SIDES[0] + (RECTANGLE_SIDES[1] - RECTANGLE_SIDES[0]) * box[:, :2]
    corners = box[:, 2:] * (1.0 - sides)

    def within(length, axis):  # [n, length]: pixel centres inside the box along `axis`
        centres = (tf.range(length, dtype=tf.float32) + 0.5) / length
        start = corners[:, axis, None]
        return (centres[None] >= start) & (centres[None] < start + sides[:, axis, None])

    return within(height, 0)[:, :, None, None] & within(width, 1)[:, None, :, None]


def _noise(draw, key, height, width, cells, most=max(SCALES)):
    """Value noise `[n, h, w, 1]` in [0, 1]: uniform values on a grid of
    `cells` `[n, 2]` cells along (height, width) per image (float, rounded,
    at least 1, at most `most` along the shorter side), interpolated by
    smoothstep one axis at a time (as smooth as Perlin's noise, and two
    matrix products)."""
    cells = tf.maximum(1.0, tf.round(cells))
    nodes = int(most * max(height, width) / min(height, width)) + 2  # a static bound
    grid = draw(key, [nodes, nodes])

    def weights(length, count):  # [n, length, nodes]: pixel centres on the cell grid
        position = (tf.range(length, dtype=tf.float32) + 0.5) / length * count[:, None]
        tent = tf.nn.relu(1.0 - tf.abs(position[..., None] - tf.range(nodes, dtype=tf.float32)))
        return tent * tent * (3.0 - 2.0 * tent)  # smoothstep: still sums to 1

    noise = tf.matmul(tf.matmul(weights(height, cells[:, 0]), grid),
                      weights(width, cells[:, 1]), transpose_b=True)
    return noise[..., None]


def _angle(uniform):
    """`[n, 2]`: the cosine and sine of angles of `(uniform - 0.5) * pi`
    (DRAEM's -90 to 90 degrees), for `_turned`."""
    angle = (uniform - 0.5) * math.pi
    return tf.stack([tf.cos(angle), tf.sin(angle)], axis=-1)


def _turned(images, angles):
    """`images` `[n, h, w, c]` each turned about its centre by its angle
    (`angles` `[n, 2]`, `_angle`), edges reflected."""
    height, width = images.shape[1], images.shape[2]
    cos, sin = angles[:, 0], angles[:, 1]
    x, y = (width - 1) / 2, (height - 1) / 2
    transforms = tf.stack([cos, -sin, x - x * cos + y * sin,
                           sin, cos, y - x * sin - y * cos,
                           tf.zeros_like(cos), tf.zeros_like(cos)], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=[height, width], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="REFLECT")


def _uniform_int(key, count):
    return tf.random.stateless_uniform([], key, 0, count, tf.int32)
