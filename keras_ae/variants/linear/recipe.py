"""The reference tutorial's recipe as it is: clean inputs, Adam at 1e-3."""

from keras_ae.variants.base_recipe import Recipe


RECIPE = Recipe()
