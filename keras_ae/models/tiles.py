"""Large images scored by overlapping tiles, inside the graph.

A network trained on crops of `tile` pixels scores an image larger than that
by cutting it into tiles that overlap by OVERLAP of their side, running the
network on the tiles of one image at a time (so that memory follows the tile,
not the batch of images), and stitching its outputs back: each pixel is the
mean of the tiles that cover it, weighted by a window that falls off towards
a tile's edges (where a convolution's zero padding sees no context), so that
seams do not show. Static slices, pads and one loop over the batch: the
same graph in a SavedModel and in TFLite.

Example:

    tiling = Tiling((1024, 1024), (128, 128))
    maps = tiling.apply(network, images, channels=1)  # [batch, 1024, 1024, 1]
"""

import numpy as np
import tensorflow as tf

OVERLAP = 0.25  # of the tile's side, shared by neighbouring tiles


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
    `(height, width)`: their `starts`, and `apply` to run a function of a
    batch of tiles over whole images."""

    def __init__(self, image, tile, overlap=OVERLAP):
        self.image, self.tile = tuple(image), tuple(tile)
        rows, columns = (starts(s, t, overlap) for s, t in zip(self.image, self.tile))
        self.corners = [(top, left) for top in rows for left in columns]
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
        weighted mean of the tiles that cover it."""
        weights = tf.constant(self.weights[..., None], tiles.dtype)
        height, width = self.image
        image = 0.0
        for i, (top, left) in enumerate(self.corners):
            padding = [[top, height - top - self.tile[0]], [left, width - left - self.tile[1]],
                       [0, 0]]
            image += tf.pad(tiles[i] * weights, padding)
        return image / tf.constant(self.total[..., None], tiles.dtype)

    def apply(self, function, images, channels, dtype=tf.float32):
        """`[batch, height, width, channels]` of `dtype`: `function` (tiles
        `[n, h, w, c]` → `[n, h, w, channels]`) run on the tiles of each of
        `images` `[batch, height, width, c]`, one image at a time, stitched."""
        spec = tf.TensorSpec((*self.image, channels), dtype)
        return tf.map_fn(lambda image: self.stitch(function(self.split(image))), images,
                         fn_output_signature=spec, parallel_iterations=1)
