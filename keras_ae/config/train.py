"""TrainConfig: how to train."""

import dataclasses

from keras_ae import choices
from keras_ae.choices import SCHEDULES
from keras_ae.config import checks


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Attributes:
        model_dir: where config, checkpoints, logs, metrics and figures go.
        strategy: one of `keras_ae.choices.STRATEGIES`. Default "default".
        tpu: TPU name or address for `strategy="tpu"`. Default None.
        epochs: passes over the training split. Default None: the recipe's
            (10, the restoration detector's 12).
        learning_rate: Adam learning rate. Default None: the recipe's.
        learning_rate_schedule: "constant", "cosine" (from `learning_rate`
            down to 0 at the last step) or "warmup_cosine" (up from 0 over the
            first epoch, then cosine). Default None: the recipe's.
        steps_per_execution: training steps run per call into the graph;
            more cuts host overhead; must divide the steps of an epoch.
            Default None: chosen by the run (`keras_ae.training.steps.auto_steps_per_execution`:
            the largest divisor of the epoch's steps up to 100) and written in.
        jit_compile: compile the training step with XLA. Default False:
            Keras' own choice (XLA on a lone GPU, off on CPUs and under
            tf.distribute).
        deterministic: turn on TensorFlow's op determinism, so that a run
            (and a resumed run) repeats exactly where TensorFlow allows.
            Default False.
        mixed_precision: compute in 16 bits, keeping variables, the code and
            the output in float32: "mixed_float16" on GPUs, "mixed_bfloat16"
            on TPUs and CPUs. Default False.
    """

    model_dir: str
    strategy: str = "default"
    tpu: str | None = None
    epochs: int | None = None
    learning_rate: float | None = None
    learning_rate_schedule: str | None = None
    steps_per_execution: int | None = None
    jit_compile: bool = False
    deterministic: bool = False
    mixed_precision: bool = False

    def __post_init__(self):
        checks.require_choice("strategy", self.strategy, list(choices.STRATEGIES))
        checks.require_positive(self, "epochs", "steps_per_execution")
        if self.learning_rate_schedule is not None:
            checks.require_choice("learning_rate_schedule", self.learning_rate_schedule, SCHEDULES)
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise checks.ConfigError(
                "learning_rate", f"must be > 0, got {self.learning_rate!r}"
            )
        if not self.model_dir:
            raise checks.ConfigError("model_dir", "must name a directory")
