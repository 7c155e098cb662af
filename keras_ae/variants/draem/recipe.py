"""The DRAEM-style detector's recipe: trained on simulated anomalies."""

from keras_ae.variants.base_recipe import Recipe


class DraemRecipe(Recipe):
    """Clean images with anomalies pasted in by the input pipeline
    (`keras_ae.data.anomalies`), Adam warmed up over the first epoch then
    decayed; the map is the segmentation as it is (its score smooths it),
    on images smaller than the tile smoothed (`on_small_images`)."""

    simulated_anomalies = True
    batch_size = 8  # DRAEM's: eight times the steps of the default 64 per epoch
    learning_rate = 2e-3
    learning_rate_schedule = "warmup_cosine"
    # Epochs by the training images, an image smaller than the tile counted as its
    # share of the tile's pixels: 54 of 300 texture crops (bench/textures.py); on
    # such small images twice as many shown (`on_small_images`), 31 epochs of 5,400
    # Fashion-MNIST images of 28 px (bench/defects.py; 3 until they counted so, 16
    # until they were doubled).
    epochs = None
    images_shown = 16_000
    anomaly_map_smoothing = 0.0
    # A grain as bright as what it covers, as a foreign texture of the
    # texture's own brightness is: on crops of textures it raised grass at
    # three seeds, where on Fashion-MNIST it lowered the pixel AUROC
    # (BUILD.md, "A grain as bright as its place").
    grain_at_place = True
    # Half of the pastes at place too: over five seeds of crops of textures
    # grass gained 2.0 image AUROC, gravel lost 1.0; on small images, as the
    # grain, not (BUILD.md, "The paste as bright as its place").
    paste_at_place = 0.5
    # Cells of Worley noise as a sixth fill, a foreign texture of pebbles or
    # scales, as DRAEM's pastes of other photographs are: on crops of textures
    # grass' pixel AUROC rose at five seeds of five, the image AUROC moved
    # within a seed's spread (BUILD.md, "Cells"); on small images, not.
    cells = True
    # Images smaller than the tile are whole small parts, as bench/defects.py's
    # 28 px garments: there three quarters of the masks are rectangles
    # (CutPaste's patch, straight-edged), the map is smoothed as conv's, and
    # training is twice as long (31 epochs of Fashion-MNIST), which each
    # raised their pixel AUROC; on crops of textures the rectangles cost both
    # grass and gravel, and longer training grass (BUILD.md, "Small whole images").
    on_small_images = {"rectangles": 0.75, "anomaly_map_smoothing": 1 / 16,
                       "images_shown": 2 * images_shown, "grain_at_place": False,
                       "paste_at_place": 0.0, "cells": False}


RECIPE = DraemRecipe()
