"""Figures written next to a run."""

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
from matplotlib import pyplot as plt
import numpy as np

from keras_ae import files


def save_image_rows(path, rows, titles, columns=10):
    """Saves a grid: one row per array of images (N, H, W, C in [0, 1]).

    With rows `[inputs, reconstructions]` this is the reference tutorial's
    figure: the first ten test images over their reconstructions.
    """
    fig, axes = plt.subplots(
        nrows=len(rows), ncols=columns, figsize=(columns * 1.2, len(rows) * 1.35),
        squeeze=False,
    )
    for images, title, axes_row in zip(rows, titles, axes):
        axes_row[0].set_title(title, loc="left", fontsize=9)
        for image, ax in zip(images[:columns], axes_row):
            image = np.clip(np.asarray(image, np.float32), 0, 1)
            if image.shape[-1] == 1:
                ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(image)
            ax.set_axis_off()
    fig.tight_layout()
    _save(fig, path)


def save_image_grid(path, images, columns):
    """Saves images (N, H, W, C in [0, 1]) as one mosaic, `columns` per row."""
    images = np.clip(np.asarray(images, np.float32), 0, 1)
    count, height, width, channels = images.shape
    rows = -(-count // columns)
    mosaic = np.zeros((rows * height, columns * width, channels), np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        mosaic[r * height : (r + 1) * height, c * width : (c + 1) * width] = image
    fig, ax = plt.subplots(figsize=(columns * 0.6, rows * 0.6))
    ax.imshow(mosaic[..., 0] if channels == 1 else mosaic, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    fig.tight_layout(pad=0.1)
    _save(fig, path)


def save_scatter(path, points, labels, title):
    """Saves a 2-D scatter of `points` (N, 2) coloured by integer `labels`."""
    fig, ax = plt.subplots(figsize=(6, 5))
    shown = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=3)
    fig.colorbar(shown, ax=ax, label="label")
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path):
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def save_score_histograms(path, scores, anomalous, threshold):
    """Histograms of normal and anomalous images' scores, threshold marked."""
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(np.min(scores), np.max(scores), 60)
    for mask, name in ((~anomalous, "normal"), (anomalous, "anomalous")):
        if mask.any():
            ax.hist(scores[mask], bins=bins, alpha=0.6, label=f"{name} ({mask.sum()})")
    ax.axvline(threshold, color="k", linestyle="--", label="threshold")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("test images")
    ax.legend()
    fig.tight_layout()
    _save(fig, path)


def save_roc(path, false_positive_rates, true_positive_rates, area):
    """The ROC curve, its area in the title."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(false_positive_rates, true_positive_rates)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title(f"ROC, area {area:.3f}")
    fig.tight_layout()
    _save(fig, path)
