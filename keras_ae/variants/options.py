"""A variant's model options declared as data: what `keras_ae.config`
validates and `train.py` offers as flags. Imports nothing, so that a
configuration can be checked without TensorFlow.

Example (a variant's `__init__.py`):

    OPTIONS = (*options.BACKBONE,
               options.Option("beta", "float", "weight of the KL term", minimum=0))
"""

import dataclasses

KINDS = ("int", "float", "str", "ints")  # "int": a positive integer; "ints": positive integers


@dataclasses.dataclass(frozen=True)
class Option:
    """One keyword option of a variant's model constructor.

    Attributes:
        name: the constructor's argument, the `ModelConfig` field and the flag.
        kind: one of KINDS.
        help: what it is, for `--help` and the config's documentation.
        choices: the valid values, where they are few. Default: any.
        minimum: the least valid value. Default None: no bound.
        between: `(low, high)`: valid values lie strictly between. Default None.
    """

    name: str
    kind: str
    help: str
    choices: tuple = ()
    minimum: float | None = None
    between: tuple | None = None

    def checked(self, value):
        """`value` as the model takes it (a list of integers as a tuple);
        ValueError saying what is wrong with it."""
        if value is None:
            return None
        if self.kind == "ints":
            values = tuple(value)  # a list from JSON or flags
            if not values or not all(isinstance(v, int) and v > 0 for v in values):
                raise ValueError(f"must be positive integers, e.g. 32,64; got {values!r}")
            return values
        if self.kind == "int" and (not isinstance(value, int) or value <= 0):
            raise ValueError(f"must be a positive integer, got {value!r}")
        if self.choices and value not in self.choices:
            raise ValueError(f"unknown value {value!r}; valid values: {', '.join(self.choices)}")
        if self.minimum is not None and not value >= self.minimum:  # also rejects NaN
            raise ValueError(f"must be >= {self.minimum:g}, got {value!r}")
        if self.between and not self.between[0] < value < self.between[1]:
            raise ValueError(f"must be in ({self.between[0]:g}, {self.between[1]:g}), "
                             f"got {value!r}")
        return value


# The options of the shared networks (`keras_ae.models.backbone`).
LATENT_DIM = Option("latent_dim", "int", "size of the code")
ARCHITECTURE = Option("architecture", "str", "conv or dense network", choices=("conv", "dense"))
FILTERS = Option("filters", "ints", "channels of each stride-2 conv level, e.g. 32,64")
UPSAMPLING = Option("upsampling", "str", "conv decoder: nearest (no checkerboard artifacts) "
                    "or transpose", choices=("nearest", "transpose"))
BACKBONE = (LATENT_DIM, ARCHITECTURE, FILTERS, UPSAMPLING)
