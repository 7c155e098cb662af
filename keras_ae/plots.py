"""Figures written next to a run."""

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
from matplotlib import pyplot as plt
import numpy as np

from keras_ae import files

# A figure's cell shows an image about an inch wide: larger ones are averaged
# down to at most this side first, rather than handed to matplotlib whole.
SHOWN_SIDE = 256


def shown(image, reduce=np.mean):
    """`image` (H, W, C) as a figure shows it: float32, reduced over blocks
    of pixels (by `reduce`: the mean, or `np.max` for a map, whose few
    bright pixels must stay bright) to at most SHOWN_SIDE a side."""
    image = np.asarray(image, np.float32)
    block = -(-max(image.shape[:2]) // SHOWN_SIDE)
    if block == 1:
        return image
    height, width = (side // block * block for side in image.shape[:2])
    return reduce(image[:height, :width].reshape(
        height // block, block, width // block, block, -1), axis=(1, 3))


def save_image_rows(path, rows, titles, columns=10):
    """Saves a grid: one row per array of images (N, H, W, C in [0, 1]).

    With rows `[inputs, reconstructions]` this is the reference tutorial's
    figure: the first ten test images over their reconstructions.
    """
    fig, axes = plt.subplots(
        nrows=len(rows), ncols=columns, figsize=(columns * 1.2, len(rows) * 1.35),
        squeeze=False,
    )
    for images, axes_row in zip(rows, axes):
        for image, ax in zip(images[:columns], axes_row):
            image = np.clip(shown(image), 0, 1)
            if image.shape[-1] == 1:
                ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(image)
            ax.set_axis_off()
    # Laid out with room above each row, then titled: a title wider than its
    # first image would otherwise squeeze that column (or defeat the layout).
    fig.tight_layout(h_pad=3, rect=(0, 0, 1, 0.94))
    for title, axes_row in zip(titles, axes):
        axes_row[0].set_title(title, loc="left", fontsize=9)
    _save(fig, path)


def heat_overlay(images, maps, top):
    """RGB images (N, H, W, 3 in [0, 1]): each of `images` (N, H, W, C in
    [0, 1]) in grey under its map (N, H, W) coloured by the "inferno" colour
    map from 0 to `top`, the map the more opaque the higher it is, so low
    scores leave the image to be seen."""
    grey = np.clip(np.asarray(images, np.float32), 0, 1).mean(axis=-1, keepdims=True)
    heat = np.clip(np.asarray(maps, np.float32) / max(top, 1e-12), 0, 1)
    colours = matplotlib.colormaps["inferno"](heat)[..., :3]
    opacity = heat[..., None]
    return (1 - opacity) * 0.6 * grey + opacity * colours


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
    """The normal and the anomalous images' scores in two panels over one
    axis (the thousand normal images would hide behind nine thousand
    anomalous ones in one), threshold dashed; scores above the 99.5th
    percentile are counted in the last bin, so a long tail cannot squash the
    rest, and scores spanning over 100× are drawn on a log axis."""
    scores, anomalous = np.asarray(scores, np.float64), np.asarray(anomalous, bool)
    low, top = float(np.min(scores)), max(float(np.quantile(scores, 0.995)), threshold) * 1.02
    # Scores over orders of magnitude (the restoration detector's) on a log axis.
    logarithmic = low > 0 and top / low > 100
    bins = np.geomspace(low, top, 60) if logarithmic else np.linspace(low, top, 60)
    fig, axes = plt.subplots(2, 1, sharex=True, figsize=(6, 5))
    if logarithmic:
        axes[1].set_xscale("log")
    for ax, mask, name, color in ((axes[0], ~anomalous, "normal", "tab:blue"),
                                  (axes[1], anomalous, "anomalous", "tab:red")):
        ax.hist(np.minimum(scores[mask], bins[-1]), bins=bins, color=color)
        ax.axvline(threshold, color="k", linestyle="--")
        flagged = np.mean(scores[mask] > threshold) if mask.any() else 0.0
        ax.set_title(f"{mask.sum()} {name} test images: {flagged:.1%} above the threshold",
                     fontsize=10)
        ax.set_ylabel("images")
    axes[1].set_xlabel(f"anomaly score (dashed: threshold {threshold:.4g}; "
                       f"last bin: above {bins[-1]:.3g})")
    fig.tight_layout()
    _save(fig, path)


def save_scored_images(path, images, scores, anomalous, names, threshold, columns=10):
    """Images (N, H, W, C in [0, 1]) in a grid, each captioned with its score
    and class name and framed red if its class is anomalous, blue if normal;
    a score above `threshold` is marked "!" (flagged)."""
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.6), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, image, score, is_anomalous, name in zip(axes.flat, images, scores, anomalous, names):
        image = np.clip(shown(image), 0, 1)
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        color = "tab:red" if is_anomalous else "tab:blue"
        for spine in ax.spines.values():
            spine.set_color(color)
            spine.set_linewidth(2)
        ax.set_title(f"{score:.3g}{'!' if score > threshold else ''}\n{name}", fontsize=7,
                     color=color)
    fig.suptitle(f"The {len(images)} highest-scoring test images: score (! above the "
                 f"threshold {threshold:.4g}) and class; red: an anomalous class, blue: normal",
                 fontsize=9)
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
