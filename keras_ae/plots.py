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
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
