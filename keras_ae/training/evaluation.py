"""What a trained run reports: its test metrics and figures, and what ran.

Evaluation reads the test split once, chunk by chunk (`Images.float_chunks`),
and runs the model once per image through one traced function: from that pass
come `test_mse`, the recipe's own metrics, the figures' images, and a
detector's scores, maps and pixel metrics (`keras_ae.anomaly.DetectorTest`).
What it holds does not grow with the split but for a score per image, so a
streamed run's memory does not grow with its test split. A detector is
calibrated first, on its validation images, read the same way.
"""

import dataclasses
import os
import time

import numpy as np
import tensorflow as tf

from keras_ae import anomaly
from keras_ae import data as data_lib
from keras_ae import files
from keras_ae import model_dir
from keras_ae import plots
from keras_ae import variants

# Test images drawn in the figures (the tutorial's figure: the first ten).
FIGURE_IMAGES = 10


def evaluate(model, data, config, figure_dir):
    """Test metrics of a trained model, and its figures written to `figure_dir`.

    Returns `test_mse` (per pixel, clean test input → reconstruction), the
    recipe's own metrics (`keras_ae.variants.recipe`), with `normal_classes` the
    detector's (calibrated on `data.validation_images` and written to
    `anomaly.json` first; `keras_ae.anomaly.DetectorTest`; a detector trained
    on simulated anomalies, how well it finds them in the validation images,
    `keras_ae.anomaly.simulated_check`), with test noise
    (`config.data.eval_noise_stddev` > 0) the mean PSNR (dB) of the noisy test
    input and of its reconstruction against the clean images, the noise of
    test batch b drawn from the run's seed and b (`data.pipeline.eval_noise`:
    the same for every model evaluated with that seed), and
    `evaluation_seconds`, the wall time of all this.
    """
    start = time.perf_counter()
    batch_size, options = data.test_images.count_within(config.data.batch_size), config.anomaly
    detector_test = None
    if options.normal_classes:
        detector = anomaly.calibrated_detector(model, data.validation_images, options, batch_size)
        files.write_json(os.path.join(figure_dir, model_dir.ANOMALY_FILE),
                         dataclasses.asdict(detector))
        detector_test = anomaly.DetectorTest(detector, data, config.data.dataset)
    recipe = variants.recipe(config.model.variant)
    checked = {}
    if detector_test is not None and recipe.simulated_anomalies:
        checked = anomaly.simulated_check(model, data.validation_images, detector, batch_size,
                                          config.data.seed, data_lib.simulation(config.data))
    test = _test_pass(model, data.test_images, config, recipe, detector_test)
    shown = test["shown"]
    plots.save_image_rows(os.path.join(figure_dir, model_dir.FIGURE_FILE),
                          [shown["clean"], shown["reconstruction"]],
                          ["test images", "reconstructions"])
    metrics = {"test_mse": test["squared_error"] / test["values"],
               **{name: float(np.mean(values)) for name, values in test["recipe"].items()}}
    if config.data.eval_noise_stddev:
        metrics["test_psnr_noisy"] = float(np.mean(test["psnr_noisy"]))
        metrics["test_psnr_denoised"] = float(np.mean(test["psnr_denoised"]))
        plots.save_image_rows(
            os.path.join(figure_dir, model_dir.DENOISING_FIGURE_FILE),
            [shown["noisy"], shown["denoised"], shown["clean"]],
            ["noisy input", "reconstruction", "clean target"],
        )
    recipe.save_figures(model, figure_dir, data.test_images, data.test_labels, config.data.seed)
    if detector_test is not None:
        metrics.update(detector_test.finish(figure_dir), **checked)
    metrics["evaluation_seconds"] = time.perf_counter() - start
    return metrics


def _test_pass(model, images, config, recipe, detector_test):
    """One pass over the test `images`: the summed squared error and its count,
    the recipe's per-image metrics, per-image PSNRs (with test noise), each
    chunk handed to `detector_test`, and the first FIGURE_IMAGES of each row
    of the figures (`shown`)."""
    batch_size, seed, noise_stddev = (images.count_within(config.data.batch_size),
                                      config.data.seed, config.data.eval_noise_stddev)
    reconstruct = _reconstruct(model)
    run = anomaly.traced(model, detector=detector_test.detector) if detector_test else reconstruct
    totals = {"squared_error": 0.0, "values": 0}
    per_image = {"psnr_noisy": [], "psnr_denoised": [],
                 **{name: [] for name in recipe.metrics}}
    shown, start = {}, 0
    for clean in images.float_chunks(batch_size):
        outputs = anomaly.in_batches(run, clean, batch_size)
        squared = np.square(outputs["reconstruction"] - clean)
        totals["squared_error"] += float(np.sum(squared, dtype=np.float64))
        totals["values"] += clean.size
        rows = {"clean": clean, "reconstruction": outputs["reconstruction"]}
        for name, value in recipe.image_metrics(model, clean, batch_size, seed,
                                                (start, len(images))).items():
            per_image[name].append(value)
        if noise_stddev:
            noisy = np.concatenate([
                data_lib.eval_noise(clean[i:i + batch_size], noise_stddev, seed,
                                    (start + i) // batch_size).numpy()
                for i in range(0, len(clean), batch_size)])
            rows["noisy"] = noisy
            rows["denoised"] = anomaly.in_batches(reconstruct, noisy, batch_size)["reconstruction"]
            per_image["psnr_noisy"].append(psnr_per_image(clean, noisy))
            per_image["psnr_denoised"].append(psnr_per_image(clean, rows["denoised"]))
        if detector_test:
            detector_test.add(start, clean, outputs)
        for name, row in rows.items():
            kept = shown.get(name, row[:0])
            shown[name] = np.concatenate([kept, row[:FIGURE_IMAGES - len(kept)]])
        start += len(clean)
    return {**totals, "shown": shown,
            "recipe": {name: np.concatenate(per_image.pop(name)) for name in recipe.metrics},
            **{name: np.concatenate(values) for name, values in per_image.items() if values}}


def _reconstruct(model):
    """The model's reconstruction of a batch, traced once for any batch."""
    spec = tf.TensorSpec((None, *model.image_shape), tf.float32)
    return tf.function(lambda images: {"reconstruction": model(images, training=False)},
                       input_signature=[spec])


def psnr(reference, images):
    """Mean over images of the peak signal-to-noise ratio in dB (peak 1)."""
    return float(np.mean(psnr_per_image(reference, images)))


def psnr_per_image(reference, images):
    """Each image's peak signal-to-noise ratio in dB (peak 1)."""
    axes = tuple(range(1, reference.ndim))
    mse = np.mean(np.square(images - reference), axis=axes)
    return 10 * np.log10(1.0 / np.maximum(mse, 1e-12))


def training_metrics(config, strategy, data, model, history, first_epoch):
    """What ran, and the loss of every epoch this process trained."""
    losses = [float(loss) for loss in history.history.get("loss", [])]
    return {
        "variant": config.model.variant,
        "dataset": config.data.dataset,
        "data_source": data.source,
        "input": "stream" if data.streamed else "memory",
        "image_shape": list(data.train_images.shape[1:]),
        "train_images": len(data.train_images),
        "test_images": len(data.test_images),
        "skipped_images": len(data.skipped),  # unreadable files left out
        "strategy": config.train.strategy,
        "steps_per_execution": config.train.steps_per_execution,
        "jit_compile": bool(model.jit_compile),  # what Keras used
        "replicas": strategy.num_replicas_in_sync,
        "parameters": model.count_params(),
        "dtype_policy": model.dtype_policy.name,
        "resumed_at_epoch": first_epoch,
        "epochs_trained": len(history.epoch),  # by this process, after resuming
        "final_train_loss": losses[-1] if losses else None,
        "train_loss_by_epoch": losses,
    }


