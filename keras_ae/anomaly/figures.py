"""A detector's figures, from what one evaluation pass kept: every test score,
and only the images each figure draws (`Highest`)."""

import os

import numpy as np

from keras_ae import model_dir
from keras_ae import plots
from keras_ae.anomaly import metrics

HIGHEST_IMAGES = 40  # highest_scores.png
MAP_IMAGES = 10  # anomaly_maps.png: up to half of them defective
SHOWN_DEFECTS = 5


class Highest:
    """The `count` highest-scoring images seen so far and their rows (maps,
    masks), ties in the order they came; images kept as 8 bits."""

    def __init__(self, count):
        self.count = count
        self.scores = np.zeros(0)
        self.rows = {}

    def add(self, scores, **rows):
        """Offers images with their `scores` `[n]` and `rows` (arrays `[n, ...]`;
        "images", float in [0, 1], are kept as uint8)."""
        chosen = np.argsort(-scores, kind="stable")[:self.count]
        rows = {name: row[chosen] for name, row in rows.items()}
        if "images" in rows:
            rows["images"] = np.round(rows["images"] * 255).astype(np.uint8)
        scores = np.r_[self.scores, scores[chosen]]
        kept = np.argsort(-scores, kind="stable")[:self.count]
        self.scores = scores[kept]
        self.rows = {name: np.concatenate([self.rows.get(name, row[:0]), row])[kept]
                     for name, row in rows.items()}

    def get(self, name, count=None):
        """The kept rows of `name` (images as float32 in [0, 1])."""
        row = self.rows[name][:count]
        return row / np.float32(255) if name == "images" else row


def save_score_figures(directory, scores, anomalous, threshold, area, highest, names):
    """anomaly_scores.png, roc.png (with an AUROC) and highest_scores.png
    (`highest`: a `Highest` of test images with their "labels")."""
    plots.save_score_histograms(os.path.join(directory, model_dir.SCORES_FIGURE_FILE), scores,
                                anomalous, threshold)
    if area is not None:
        plots.save_roc(os.path.join(directory, model_dir.ROC_FIGURE_FILE),
                       *metrics.roc_curve(scores, anomalous), area)
    labels = highest.get("labels")
    plots.save_scored_images(
        os.path.join(directory, model_dir.HIGHEST_SCORES_FIGURE_FILE), highest.get("images"),
        highest.scores, highest.get("anomalous"),
        [names[i] if i < len(names) else f"class {i}" for i in labels], threshold)


def save_maps_figure(directory, defective, normal, top):
    """anomaly_maps.png: the highest-scoring test images with a defect mask
    (`defective`, a `Highest` with "images", "maps" and "masks"), then the
    highest-scoring normal ones (`normal`), their maps coloured from 0 to
    `top`."""
    shown = min(SHOWN_DEFECTS, len(defective.scores))
    rest = MAP_IMAGES - shown
    images = np.concatenate([defective.get("images", shown), normal.get("images", rest)])
    maps = np.concatenate([defective.get("maps", shown), normal.get("maps", rest)])
    masks = np.concatenate([defective.get("masks", shown), normal.get("masks", rest)])
    if len(images):  # at the figure's resolution, the maps' and masks' brightest pixels kept
        images = np.stack([plots.shown(image) for image in images])
        maps = np.stack([plots.shown(m[..., None], np.max)[..., 0] for m in maps])
        masks = np.stack([plots.shown(m[..., None], np.max)[..., 0] for m in masks])
    plots.save_image_rows(
        os.path.join(directory, model_dir.MAPS_FIGURE_FILE),
        [images, plots.heat_overlay(images, maps, top), masks[..., None].astype(np.float32)],
        [f"the {shown} highest-scoring test images with a defect mask, then the "
         "highest-scoring normal ones",
         "their anomaly maps over them (brightest: the test images' top 0.5% of pixel scores)",
         "their ground-truth masks (white: defect)"])
