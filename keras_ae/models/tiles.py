"""Large images scored by overlapping tiles, inside the graph.

A network trained on crops of `tile` pixels scores an image larger than that
by cutting it into tiles that overlap by OVERLAP of their side, running the
network on the tiles of one image at a time, all of them if they are GROUP at
most, else a row of tiles at a time (so that memory follows the tile, not the
image or the batch), and stitching its outputs back: each pixel is the mean of
the tiles that cover it, weighted by a window that falls off towards a tile's
edges (where a convolution's zero padding sees no context), so that seams do
not show. Static slices and pads, and loops over the batch (none for a batch of
one) and the rows (none when `ungrouped`): the same graph in a SavedModel and
in TFLite.

Example:

    tiling = Tiling((1024, 1024), (128, 128))
    maps = tiling.apply(network, images, channels=1)  # [batch, 1024, 1024, 1]
"""

import copy

import numpy as np
import tensorflow as tf

OVERLAP = 0.25  # of the tile's side, shared by neighbouring tiles
# Tiles a function is run on at once, at most: an image's 121 tiles of 128 px
# at 1024x1024 (about 6 MB each through the draem detector); a larger image's
# a row of tiles at a time, in groups of this many along a row.
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


def _shares(positions, side, tile, overlap):
    """`[len(positions), tile]` float32: along one axis of `side` pixels, each
    tile's `window` divided by the sum of the windows over each pixel."""
    weights, total = window(tile, overlap), np.zeros(side, np.float32)
    for start in positions:
        total[start:start + tile] += weights  # every pixel is covered: > 0
    return np.stack([weights / total[start:start + tile] for start in positions])


class Tiling:
    """Overlapping tiles of `tile` `(height, width)` over images of `image`
    `(height, width)`: their `corners`, and `apply` to run a function of a
    batch of tiles (`group` at most) over whole images."""

    def __init__(self, image, tile, overlap=OVERLAP, group=GROUP):
        self.image, self.tile, self.overlap, self.group = tuple(image), tuple(tile), overlap, group
        self.rows, self.columns = (starts(s, t, overlap) for s, t in zip(self.image, self.tile))
        self.corners = [(top, left) for top in self.rows for left in self.columns]
        # The window is a product of one along each axis, and so is its sum
        # over the tiles: each tile's share of a pixel is a row's factor
        # times a column's (`_shares`).
        self.row_shares, self.column_shares = (
            _shares(positions, side, tile, overlap)
            for positions, side, tile in zip((self.rows, self.columns), self.image, self.tile))

    def __len__(self):
        return len(self.corners)

    def ungrouped(self):
        """This tiling with every tile of an image in one group: no loop over
        rows of tiles (TFLite's int8 converter crashed on one, as on a loop
        over groups of tiles before), all the tiles' memory at once."""
        whole = copy.copy(self)
        whole.group = len(self)
        return whole

    def split(self, image):
        """`[tiles, h, w, c]`: the tiles of one `image` `[height, width, c]`."""
        return tf.stack([image[top:top + self.tile[0], left:left + self.tile[1]]
                         for top, left in self.corners])

    def stitch(self, tiles):
        """`[height, width, k]` from `tiles` `[tiles, h, w, k]`: each pixel the
        weighted mean of the tiles that cover it, as the sum of each tile times
        its share (no division: divided by the windows' sum, a full-integer
        TFLite file was off by up to 0.88 where tiles overlap). A row
        of tiles at a time, so that what is held at once is a few rows of the
        image, not one padded image per tile."""
        (height, width), (tile_height, tile_width) = self.image, self.tile
        image = 0.0
        for row, top in enumerate(self.rows):
            strip = 0.0
            for column, left in enumerate(self.columns):
                share = tf.constant(self.column_shares[column][None, :, None], tiles.dtype)
                strip += tf.pad(tiles[row * len(self.columns) + column] * share,
                                [[0, 0], [left, width - left - tile_width], [0, 0]])
            share = tf.constant(self.row_shares[row][:, None, None], tiles.dtype)
            image += tf.pad(strip * share, [[top, height - top - tile_height], [0, 0], [0, 0]])
        return image

    def apply(self, function, images, channels, dtype=tf.float32):
        """`[batch, height, width, channels]` of `dtype`: `function` (tiles
        `[n, h, w, c]` → `[n, h, w, channels]`) run on the tiles of each of
        `images` `[batch, height, width, c]`, one image at a time, stitched.
        With `channels` a tuple, `function` returns a tuple of outputs of
        those channels, and so does this: each stitched on its own (not
        concatenated, which TFLite's int8 converter could not quantize
        beside the segmenter's own concatenation of its inputs). A batch of
        one (static: a batch-1 TFLite file) has no loop over images, which
        that converter crashed on."""
        several = isinstance(channels, tuple)
        counts = channels if several else (channels,)
        run = function if several else lambda tiles: (function(tiles),)

        def one_image(image):
            if len(self) <= self.group:
                return tuple(self.stitch(output) for output in run(self.split(image)))
            return self._by_rows(run, image, counts, dtype)

        if images.shape[0] == 1:
            stitched = tuple(output[None] for output in one_image(images[0]))
        else:
            stitched = tf.map_fn(
                one_image, images, parallel_iterations=1,
                fn_output_signature=tuple(tf.TensorSpec((*self.image, count), dtype)
                                          for count in counts))
        return tuple(stitched) if several else stitched[0]

    def _by_rows(self, run, image, counts, dtype):
        """`run`'s outputs on the tiles of `image`, stitched in a loop over
        rows of tiles that adds each row's share into the image: no buffer of
        every tile's outputs (a `tf.map_fn` over groups of tiles had one,
        33.5 MB of zeros in a 1024x1024 image's float TFLite file). A row's
        tiles run `group` at a time."""
        (height, width), tile_height = self.image, self.tile[0]
        tops = tf.constant(self.rows)
        row_shares = tf.constant(self.row_shares)
        strip = Tiling((tile_height, width), self.tile, self.overlap)  # a row of tiles

        def add_row(row, totals):
            top = tops[row]
            tiles = strip.split(tf.slice(image, [top, 0, 0], [tile_height, width, -1]))
            groups = [run(tiles[i:i + self.group]) for i in range(0, len(strip), self.group)]
            share = tf.cast(row_shares[row][:, None, None], dtype)
            return row + 1, tuple(
                total + tf.pad(strip.stitch(tf.concat(outputs, 0)) * share,
                               [[top, height - tile_height - top], [0, 0], [0, 0]])
                for total, outputs in zip(totals, zip(*groups)))

        # Zeros made from the image, which the converter cannot fold into a
        # constant of the image's size as it does `tf.zeros` (the test's file
        # of 31 KB was 133 KB with it).
        zeros = tuple(tf.cast(image[..., :1], dtype) * tf.zeros([count], dtype) for count in counts)
        return tf.while_loop(lambda row, _: row < len(self.rows), add_row,
                             (tf.constant(0), zeros), parallel_iterations=1)[1]
