"""Large images scored by overlapping tiles, inside the graph.

A network trained on crops of `tile` pixels scores an image larger than that
by cutting it into tiles that overlap by OVERLAP of their side, running the
network on the tiles of one image at a time, GROUP at most (so that memory
follows the tile, not the image or the batch), and stitching its outputs
back: each pixel is the mean of the tiles that cover it, weighted by a window
that falls off towards a tile's edges (where a convolution's zero padding sees
no context), so that seams do not show. Static slices and pads, and loops over
the batch (and the groups): the same graph in a SavedModel and in TFLite.

Example:

    tiling = Tiling((1024, 1024), (128, 128))
    maps = tiling.apply(network, images, channels=1)  # [batch, 1024, 1024, 1]
"""

import numpy as np
import tensorflow as tf

OVERLAP = 0.25  # of the tile's side, shared by neighbouring tiles
# Tiles a function is run on at once, at most: an image's 121 tiles of 128 px
# at 1024x1024 (about 6 MB each through the draem detector); a larger image's
# in groups of this many, one after the other.
GROUP = 128


def starts(size, tile, overlap=OVERLAP):
    """Where tiles of `tile` pixels start along a side of `size` pixels: the
    fewest that overlap by at least `overlap` of a tile, spread evenly from
    the first pixel to the last."""
    if size <= tile:
        return [0]
    stride = max(1, tile - round(overlap * tile))
    count = -(-(size - tile) // stride) + 1
    return [round(i * (size - tile) / (count - 1)) for i in range(count)]


def window(tile, overlap=OVERLAP):
    """A tile's weights along one side: 1 in the middle, falling linearly to
    1 / (margin + 1) at its edges over the `overlap` margin."""
    margin = max(1, round(overlap * tile))
    distance = np.minimum(np.arange(tile), np.arange(tile)[::-1])  # to the nearer edge
    return np.minimum(1.0, (distance + 1) / (margin + 1)).astype(np.float32)


class Tiling:
    """Overlapping tiles of `tile` `(height, width)` over images of `image`
    `(height, width)`: their `corners`, and `apply` to run a function of a
    batch of tiles (`group` at most) over whole images."""

    def __init__(self, image, tile, overlap=OVERLAP, group=GROUP):
        self.image, self.tile, self.group = tuple(image), tuple(tile), group
        self.rows, self.columns = (starts(s, t, overlap) for s, t in zip(self.image, self.tile))
        self.corners = [(top, left) for top in self.rows for left in self.columns]
        self.weights = np.outer(window(self.tile[0], overlap), window(self.tile[1], overlap))
        total = np.zeros(self.image, np.float32)
        for top, left in self.corners:
            total[top:top + self.tile[0], left:left + self.tile[1]] += self.weights
        self.total = total  # every pixel is covered: > 0

    def __len__(self):
        return len(self.corners)

    def split(self, image):
        """`[tiles, h, w, c]`: the tiles of one `image` `[height, width, c]`."""
        return tf.stack([image[top:top + self.tile[0], left:left + self.tile[1]]
                         for top, left in self.corners])

    def stitch(self, tiles):
        """`[height, width, k]` from `tiles` `[tiles, h, w, k]`: each pixel the
        weighted mean of the tiles that cover it. A row of tiles at a time, so
        that what is held at once is a few rows of the image, not one padded
        image per tile."""
        tiles = tiles * tf.constant(self.weights[..., None], tiles.dtype)
        (height, width), (tile_height, tile_width) = self.image, self.tile
        image = 0.0
        for row, top in enumerate(self.rows):
            strip = 0.0
            for column, left in enumerate(self.columns):
                strip += tf.pad(tiles[row * len(self.columns) + column],
                                [[0, 0], [left, width - left - tile_width], [0, 0]])
            image += tf.pad(strip, [[top, height - top - tile_height], [0, 0], [0, 0]])
        return image / tf.constant(self.total[..., None], tiles.dtype)

    def apply(self, function, images, channels, dtype=tf.float32):
        """`[batch, height, width, channels]` of `dtype`: `function` (tiles
        `[n, h, w, c]` → `[n, h, w, channels]`) run on the tiles of each of
        `images` `[batch, height, width, c]`, one image at a time, stitched."""
        def one_image(image):
            tiles = self.split(image)
            if len(self) <= self.group:
                return self.stitch(function(tiles))
            groups = -(-len(self) // self.group)
            tiles = tf.pad(tiles, [[0, groups * self.group - len(self)], [0, 0], [0, 0], [0, 0]])
            outputs = tf.map_fn(
                function, tf.reshape(tiles, [groups, self.group, *tiles.shape[1:]]),
                fn_output_signature=tf.TensorSpec((self.group, *self.tile, channels), dtype),
                parallel_iterations=1)
            return self.stitch(tf.reshape(outputs, [-1, *self.tile, channels])[:len(self)])

        return tf.map_fn(one_image, images, parallel_iterations=1,
                         fn_output_signature=tf.TensorSpec((*self.image, channels), dtype))
