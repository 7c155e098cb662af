"""How well a detector trained on simulated anomalies finds them in normal
images it has not trained on: a figure for runs with no defects to test on.

A detector such as `draem` learns to segment the anomalies its training
stream pastes into crops of the training images (`data.anomalies`).
`simulated_check` pastes anomalies drawn the same way into tiles of the
held-out validation images, of the side it trains on, and scores its served
score and map on them against their masks: the tiles' image AUROC (about
half of them get an anomaly) and the pixel AUROC. It measures how well the
model learnt its task on these images, not how well it finds real defects,
which are unlike the simulated ones; but where it is low, real defects fare
no better. On `bench/textures.py` (BUILD.md, "Defects on photographs") brick,
whose real defects the detector finds all of, checks near 100, and grass, whose
real defects it finds little better than chance, checks far lower.
"""

from absl import logging
import numpy as np
import tensorflow as tf

from keras_ae.anomaly import metrics
from keras_ae.anomaly import pixel_metrics
from keras_ae.anomaly import scoring
from keras_ae.data import anomalies

TILES = 256  # tiles checked at most, from the first validation images on
TILE_BYTES = 64 * 2**20  # and no more than this of them as float32
DRAWS = 2  # anomalies drawn on each tile
STREAM = 7919  # the check's stream of the run's seed: its draws are its own
# Below this image AUROC on simulated anomalies the run warns that the
# detector has not learnt its task on these images.
WEAK = 0.9


def simulated_check(model, images, detector, batch_size, seed,
                    simulation=anomalies.Simulation()):
    """`{"validation_simulated_auroc", "validation_simulated_pixel_auroc"}`
    of `model` and its calibrated `detector` (a `scoring.Detector`, whose
    score and map are scored) on the normal validation `images` (an
    `Images`), the anomalies drawn from `seed` as in training (as
    `simulation`, an `anomalies.Simulation`, says); {} with fewer than 2
    tiles."""
    tiles = _tiles(images, model.input_shape[1:], batch_size)
    if len(tiles) < 2:
        return {}
    run = scoring.traced(model, detector=detector, shape=tiles.shape[1:])
    foreign = np.roll(tiles, len(tiles) // 2, axis=0)  # another image's tile, as in training
    scores, anomalous, pixels = [], [], pixel_metrics.PixelMetrics()
    for draw in range(DRAWS):
        for start in range(0, len(tiles), batch_size):
            key = tf.random.experimental.stateless_fold_in([seed, STREAM], draw * len(tiles) + start)
            pasted, masks = anomalies.simulate(tiles[start:start + batch_size],
                                               foreign[start:start + batch_size], key,
                                               simulation=simulation)
            outputs = run(pasted)
            masks = masks.numpy()[..., 0] > 0.5
            scores.append(outputs["anomaly_score"].numpy())
            anomalous.append(masks.any(axis=(1, 2)))
            pixels.update(outputs["anomaly_map"].numpy(), masks)
    scores, anomalous = np.concatenate(scores), np.concatenate(anomalous)
    result = {"validation_simulated_auroc": metrics.auroc(scores, anomalous),
              "validation_simulated_pixel_auroc": pixels.auroc()}
    _log(result, len(tiles), tiles.shape[1:3])
    return result


def _tiles(images, shape, batch_size):
    """float32 `[n, *shape]`: the tiles of `shape` that the validation
    `images` (an `Images`) divide into, side by side from the top left, at
    most TILES and TILE_BYTES of them."""
    count = max(1, min(TILES, TILE_BYTES // (4 * int(np.prod(shape)))))
    (height, width), tiles = shape[:2], []
    for chunk in images.float_chunks(batch_size):
        rows, columns = chunk.shape[1] // height, chunk.shape[2] // width
        grid = chunk[:, :rows * height, :columns * width].reshape(
            len(chunk), rows, height, columns, width, -1)
        tiles.append(grid.transpose(0, 1, 3, 2, 4, 5).reshape(-1, *shape))
        if sum(map(len, tiles)) >= count:
            break
    return np.concatenate(tiles)[:count] if tiles else np.zeros((0, *shape), np.float32)


def _log(result, tiles, shape):
    """Logs the check, and warns when it is weak."""
    image, pixel = result["validation_simulated_auroc"], result["validation_simulated_pixel_auroc"]
    if image is None or pixel is None:
        return
    logging.info("simulated anomalies in %d validation tiles of %dx%d px: image AUROC %.3f, "
                 "pixel AUROC %.3f (how well the detector learnt its training task on images "
                 "it did not train on)", tiles, *shape, image, pixel)
    if image < WEAK:
        logging.warning(
            "the detector finds simulated anomalies in its validation images at an image AUROC "
            "of %.3f, below %.2f: it has not learnt its task on these images, and will find "
            "real defects no better; train longer (--epochs) or a wider network (--width)",
            image, WEAK)
