"""ModelConfig: which autoencoder to build, its fields the variants' declared options."""

import dataclasses

from keras_ae import variants
from keras_ae.config import checks


# Every model option of every variant, once (`keras_ae.variants`): name → Option.
MODEL_OPTIONS = {}
for _name in variants.NAMES:
    for _option in variants.OPTIONS[_name]:
        MODEL_OPTIONS.setdefault(_option.name, _option)


def takers(option_name):
    """The variants whose model takes the option `option_name`."""
    return [name for name in variants.NAMES
            if option_name in {option.name for option in variants.OPTIONS[name]}]


def _check_model(self):
    if self.variant is not None:
        checks.require_choice("variant", self.variant, variants.NAMES)
    for name, option in MODEL_OPTIONS.items():
        try:
            object.__setattr__(self, name, option.checked(getattr(self, name)))
        except ValueError as e:
            raise checks.ConfigError(name, str(e)) from None
    if self.variant is None:
        return  # a RunConfig names it, and checks again
    accepted = [option.name for option in variants.OPTIONS[self.variant]]
    for name in self.options():
        if name not in accepted:
            raise checks.ConfigError(name, f"does not apply to variant {self.variant!r} "
                              f"(it takes: {', '.join(accepted)})")


def _model_options(self):
    """The builder options that are set, as keyword arguments."""
    return {name: getattr(self, name) for name in MODEL_OPTIONS
            if getattr(self, name) is not None}


# Which autoencoder to build: `variant` and every variant's model options
# (`keras_ae.variants`, each declared in its own folder), None unless set;
# then the model constructor's default. An option set for a variant that
# does not take it is an error.
ModelConfig = dataclasses.make_dataclass(
    "ModelConfig",
    [("variant", "str | None", None)] + [(name, "object", None) for name in MODEL_OPTIONS],
    namespace={"__post_init__": _check_model, "options": _model_options, "__module__": __name__,
               "__doc__": "Which autoencoder to build.\n\nAttributes:\n    variant: one of "
               "`keras_ae.variants.NAMES`. Default None: in a `RunConfig`, the tutorial's "
               "linear model, or with normal classes the detector.\n" + "".join(
                   f"    {name}: {', '.join(takers(name))}: {option.help}.\n"
                   for name, option in MODEL_OPTIONS.items())},
    frozen=True)
