"""The TFLite files of an export: every endpoint in every flavour, converted
from the SavedModel and checked against Keras (`checks.check_tflite`).

Full-integer (int8) files take more than a conversion:

- calibration inputs (`calibration_inputs`): a sample of training images,
  with simulated anomalies pasted in about half of them for a detector
  trained on them, so that the segmentation's calibrated range is a
  defect's and not only a normal image's;
- for a model that scores by tiles, a SavedModel of one image per call, all
  its tiles at once: TFLite's int8 converter crashed (TensorFlow 2.21, a
  segmentation fault in calibration) on the loops over a batch's images and
  over rows of tiles (`models.tiles`), which that graph has not; beyond
  INT8_TILES tiles, whose activations calibration holds at once, its int8
  `reconstruct` file is left out (`_left_out`);
- a quantized detector that decides otherwise than Keras too often
  (`checks.decided_otherwise`) is removed, and the report says why.

Example:

    entries, left_out = tflite_files.write(model, run, data, config, detector,
                                           (saved_model_dir, scratch), version_dir,
                                           (inputs, expected, scale))
"""

import os

from absl import logging
import tensorflow as tf

from keras_ae import choices
from keras_ae import data as data_lib
from keras_ae import variants
from keras_ae.data import anomalies
from keras_ae.export import checks
from keras_ae.export import saved_model
from keras_ae.export import signatures
from keras_ae.export import tflite
from keras_ae.models import tiles

TFLITE_DIR = "tflite"
# What each signature's .tflite files are called.
ENDPOINTS = {
    signatures.RECONSTRUCT: "reconstruct",
    signatures.ENCODE: "encode",
    signatures.DECODE: "decode",
}
CALIBRATION_STREAM = 6007  # of the export's seed: the anomalies int8 calibrates on
# The tiles of an image an int8 `reconstruct` file runs at once, at most: a
# 1024x1024 image's 441 of 64 px (its export, which converts and checks that
# file, peaked at 3.00 GiB: BUILD.md's bench/large.py figures).
INT8_TILES = 512


def write(model, run, data, config, detector, sources, directory, checked):
    """`(entries, left_out)`: the report entries of the TFLite files of
    `model` (its `run`, `data` and `detector`) written into
    `directory/tflite/` as `config` (an `ExportConfig`) asks, and `{file:
    why}` of those left out. `sources` is `(SavedModel directory, scratch
    directory)`, `checked` `(inputs, expected outputs, scales)` as
    `checks.check_tflite` takes them. A quantized detector's decisions are
    counted on more test images than those (`checks.Decisions`), unless
    --eval_examples says how many."""
    saved_model_dir, scratch = sources
    left_out = _left_out(model, config.quantize)
    one_image_dir = None
    if "int8" in config.quantize and model.training_crop is not None and not left_out:
        one_image_dir = one_image_saved_model(model, run, detector,
                                              os.path.join(scratch, "one_image"))
    calibration = calibration_inputs(model, data, config, run.model.variant,
                                     data_lib.simulation(run.data)) if (
        "int8" in config.quantize) else None
    decisions = None
    if detector and config.eval_examples is None and set(config.quantize) - {"float32"}:
        decisions = checks.Decisions(model, detector, data.test_images,
                                     len(checked[0][signatures.RECONSTRUCT]["images"]))
    entries = _convert(saved_model_dir, one_image_dir, directory, config.quantize, calibration,
                       checked, left_out, decisions)
    return entries, left_out


def one_image_saved_model(model, run, detector, directory):
    """Writes into `directory` (and returns it) the SavedModel that the int8
    `reconstruct` file of `model`, which scores by tiles, is converted from:
    one image per call, all its tiles at once (`Tiling.ungrouped`), no loop."""
    tiling, model.tiling = model.tiling, model.tiling.ungrouped()
    try:
        saved_model.write(model, directory, run.data.crop_to_aspect_ratio, detector, batch=1,
                          names=(signatures.RECONSTRUCT,))
    finally:
        model.tiling = tiling
    return directory


def _left_out(model, flavours):
    """`{file name: why}` of the TFLite files `model` cannot have: the int8
    `reconstruct` file of a model that scores an image by more than
    INT8_TILES tiles, which it would run all at once (`write`); its float
    files and the tile's own encode and decode quantize as any."""
    crop = model.training_crop
    if "int8" not in flavours or crop is None or len(
            tiles.Tiling(model.image_shape[:2], crop)) <= INT8_TILES:
        return {}
    why = (f"full-integer quantization of a model that scores an image by more than "
           f"{INT8_TILES} tiles: the file would run them all at once, as TFLite's converter "
           f"crashes on a loop over them (float32, float16 and dynamic files serve it)")
    logging.warning("export: left out %s_int8.tflite: %s", ENDPOINTS[signatures.RECONSTRUCT], why)
    return {os.path.join(TFLITE_DIR, f"{ENDPOINTS[signatures.RECONSTRUCT]}_int8.tflite"): why}


def _convert(saved_model_dir, one_image_dir, directory, flavours, calibration, checked,
             left_out, decisions):
    """Converts each endpoint in each flavour into `directory/tflite/` and checks
    it, but the files `left_out` (`{name: why}`) names; returns the report
    entries. A quantized detector that decides otherwise than Keras too often
    (`checks.decided_otherwise`, counted on `decisions`' images too if
    given) is removed and added to `left_out`. The int8 `reconstruct` file is
    converted from `one_image_dir` if given: the SavedModel with a batch of
    one image, for a model that scores by tiles."""
    inputs, expected, scale = checked
    os.mkdir(os.path.join(directory, TFLITE_DIR))
    entries = {}
    for signature, endpoint in ENDPOINTS.items():
        sizes = {}
        # float32 first, for the other flavours' size ratio.
        for quantize in [q for q in choices.QUANTIZATIONS if q in flavours]:
            name = os.path.join(TFLITE_DIR, f"{endpoint}_{quantize}.tflite")
            if name in left_out:
                continue
            logging.info("export: %s", name)
            source = one_image_dir if (
                one_image_dir and quantize == "int8" and signature == signatures.RECONSTRUCT
            ) else saved_model_dir
            with open(os.path.join(directory, name), "wb") as f:
                f.write(tflite.convert(source, signature, quantize,
                                       calibration and calibration[signature]))
            entry = checks.check_tflite(
                os.path.join(directory, name), signature, quantize, inputs, expected, scale
            )
            count = len(next(iter(inputs[signature].values())))
            if decisions and quantize != "float32" and signature == signatures.RECONSTRUCT:
                decisions.count(entry, os.path.join(directory, name))
            why = checks.decided_otherwise(entry, quantize, count)
            if why:
                logging.warning("export: left out %s: %s", name, why)
                os.remove(os.path.join(directory, name))
                left_out[name] = why
                continue
            entries[name] = entry
            sizes[quantize] = entries[name]["size_bytes"]
            if quantize != "float32" and "float32" in sizes:
                entries[name]["size_vs_float32"] = sizes[quantize] / sizes["float32"]
    return entries


def calibration_inputs(model, data, config, variant, simulation=anomalies.Simulation()):
    """Each signature's inputs for a seeded sample of training images
    (`Images.sample`: of a TFDS stream, its first records), within
    `checks.IMAGE_BUDGET`; for a `variant` trained on simulated anomalies,
    with anomalies pasted in about half of them as in training (as
    `simulation`, an `anomalies.Simulation`, says), so that int8's
    calibrated ranges span a defect's segmentation and not only a normal
    image's."""
    count = data.train_images.count_within(
        min(config.calibration_examples, len(data.train_images)), checks.IMAGE_BUDGET)
    images = data_lib.to_float(data.train_images.sample(count, config.seed))
    if variants.recipe(variant).simulated_anomalies:
        # Drawn for the whole sample, pasted a batch of evaluation's size at a time.
        foreign, step = tf.roll(images, 1, axis=0), data.train_images.count_within(count)
        images = tf.concat([anomalies.simulate(
            images[i:i + step], foreign[i:i + step], [config.seed, CALIBRATION_STREAM], i,
            count, simulation)[0] for i in range(0, count, step)], axis=0)
    return signatures.inputs(model, images.numpy())
