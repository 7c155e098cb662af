"""The variants, a folder each: everything a variant is, found together.

    variants/<name>/__init__.py   OPTIONS: its model's options as data, which
                                  `keras_ae.config` validates and `train.py`
                                  offers as flags (no TensorFlow)
    variants/<name>/model.py      MODEL: the network and its loss, a
                                  `keras_ae.models.Autoencoder`
    variants/<name>/recipe.py     RECIPE: how it trains by default, what it
                                  reports and draws (`variants.base_recipe.Recipe`)

The folders are the list: adding a variant is adding a folder (and its
tests); nothing else names it. This module imports the declarations only;
`model_class` and `recipe` import the rest when asked.

Example:

    variants.NAMES                      # ("contractive", "conv", ...)
    variants.OPTIONS["vae"]             # (Option("latent_dim", ...), ...)
    variants.recipe("vae").learning_rate
"""

import importlib
import pkgutil

NAMES = tuple(sorted(module.name for module in pkgutil.iter_modules(__path__)
                     if module.ispkg))
# The variant a run without --variant trains (`default`): the tutorial's;
# with normal classes named, the detector of a class among others; on a
# folder laid out as MVTec AD is, the detector of defects (BUILD.md, "Which
# detector of defects").
DEFAULT = "linear"
DETECTOR = "restoration"
DEFECT_DETECTOR = "draem"

OPTIONS = {name: importlib.import_module(f"{__name__}.{name}").OPTIONS for name in NAMES}


def model_class(name):
    """The variant's model class (`variants/<name>/model.py`'s MODEL)."""
    return importlib.import_module(f"{__name__}.{name}.model").MODEL


def recipe(name):
    """The variant's recipe (`variants/<name>/recipe.py`'s RECIPE)."""
    return importlib.import_module(f"{__name__}.{name}.recipe").RECIPE


def default(normal_classes=(), defects_layout=False):
    """`(variant, why)`: what a run that names no variant trains, and why.

    Args:
        normal_classes: the run's normal classes (`--normal_classes`), if any.
        defects_layout: whether its data is a folder with a test folder of its
            own, laid out as MVTec AD is (`train/good`, `test/<defect>`).
    """
    if not normal_classes:
        return DEFAULT, "the reference tutorial's model"
    if defects_layout:
        return DEFECT_DETECTOR, ("normal classes and a test folder of defects: the detector "
                                 "trained on simulated defects, the best on photographs of "
                                 "textures and on Fashion-MNIST's defects (BUILD.md, \"Which "
                                 "detector of defects\")")
    return DETECTOR, ("normal classes of a labelled data set: the restoration detector, "
                      "the best at telling a class from others (README, \"Anomaly detection\")")
