"""What a trained run reports: its test metrics and figures, and what ran.

The test images are read once, chunk by chunk (`Images.float_chunks`), so a
streamed run's memory does not grow with its test split; the variant's own
metrics (`keras_ae.recipes`) and an anomaly detector's validation images read
the same way.
"""

import os

import numpy as np

from keras_ae import anomaly
from keras_ae import data as data_lib
from keras_ae import distribute
from keras_ae import model_dir
from keras_ae import plots
from keras_ae import recipes

# Test images drawn in the figures (the tutorial's figure: the first ten).
FIGURE_IMAGES = 10


def evaluate(model, data, config, figure_dir):
    """Test metrics of a trained model, and its figures written to `figure_dir`.

    Returns `test_mse` (per pixel, clean test input → reconstruction), the
    recipe's own metrics (`keras_ae.recipes`), an anomaly detector's
    (`keras_ae.anomaly.evaluate`, with `normal_classes`), and with test noise
    (`config.data.eval_noise_stddev` > 0) the mean PSNR (dB) of the noisy test
    input and of its reconstruction against the clean images, the noise of
    test batch b drawn from the run's seed and b (`data.pipeline.eval_noise`:
    the same for every model evaluated with that seed).
    """
    batch_size, seed = config.data.batch_size, config.data.seed
    noise_stddev = config.data.eval_noise_stddev
    score = config.anomaly.normal_classes and config.anomaly.anomaly_score
    test = _test_pass(model, data.test_images, batch_size, seed, noise_stddev, score)
    shown = test["shown"]
    plots.save_image_rows(os.path.join(figure_dir, model_dir.FIGURE_FILE),
                          [shown["clean"], shown["reconstruction"]],
                          ["test images", "reconstructions"])
    recipe = recipes.RECIPES[config.model.variant]
    metrics = {
        "test_mse": test["squared_error"] / test["values"],
        **recipe.test_metrics(model, data.test_images, batch_size, seed),
    }
    if noise_stddev:
        metrics["test_psnr_noisy"] = float(np.mean(test["psnr_noisy"]))
        metrics["test_psnr_denoised"] = float(np.mean(test["psnr_denoised"]))
        plots.save_image_rows(
            os.path.join(figure_dir, model_dir.DENOISING_FIGURE_FILE),
            [shown["noisy"], shown["denoised"], shown["clean"]],
            ["noisy input", "reconstruction", "clean target"],
        )
    recipe.save_figures(model, figure_dir, data.test_images, data.test_labels, seed)
    if score:
        metrics.update(anomaly.evaluate(model, data, config, figure_dir, test["views"]))
    return metrics


def _test_pass(model, images, batch_size, seed, noise_stddev, score):
    """One pass over the test `images`: the summed squared error and its count,
    per-image PSNRs (with noise) and anomaly views (with `score`), and the
    first FIGURE_IMAGES of each row of the figures (`shown`)."""
    totals = {"squared_error": 0.0, "values": 0}
    per_image = {"psnr_noisy": [], "psnr_denoised": [], "views": []}
    shown, first_batch = {}, 0
    for clean in images.float_chunks(batch_size):
        reconstruction = distribute.predict(model, clean, batch_size)
        squared = np.square(reconstruction - clean)
        totals["squared_error"] += float(np.sum(squared, dtype=np.float64))
        totals["values"] += clean.size
        rows = {"clean": clean, "reconstruction": reconstruction}
        if noise_stddev:
            noisy = np.concatenate([
                data_lib.eval_noise(clean[i:i + batch_size], noise_stddev, seed,
                                    first_batch + i // batch_size).numpy()
                for i in range(0, len(clean), batch_size)])
            rows["noisy"] = noisy
            rows["denoised"] = distribute.predict(model, noisy, batch_size)
            per_image["psnr_noisy"].append(psnr_per_image(clean, noisy))
            per_image["psnr_denoised"].append(psnr_per_image(clean, rows["denoised"]))
        if score:
            per_image["views"].append(anomaly.views_of(model, clean, score, batch_size))
        for name, row in rows.items():
            kept = shown.get(name, row[:0])
            shown[name] = np.concatenate([kept, row[:FIGURE_IMAGES - len(kept)]])
        first_batch += -(-len(clean) // batch_size)
    return {**totals, "shown": shown,
            **{name: np.concatenate(values) for name, values in per_image.items() if values}}


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


