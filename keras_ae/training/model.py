"""The run's model, built and compiled under its strategy."""

import keras

from keras_ae import distribute
from keras_ae import models


def build_model(config, strategy, input_shape, steps_per_epoch):
    """The run's model, built and compiled under `strategy` with the run's
    optimizer: Adam at `learning_rate`, constant or decayed to 0 over the run
    (after rising linearly from 0 over the first epoch, "warmup_cosine")."""
    learning_rate = config.train.learning_rate
    steps = steps_per_epoch * config.train.epochs
    if config.train.learning_rate_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    elif config.train.learning_rate_schedule == "warmup_cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(1, steps - steps_per_epoch), warmup_target=learning_rate,
            warmup_steps=steps_per_epoch)
    options = config.model.options()
    if "seed" in models.option_names(config.model.variant):
        options["seed"] = config.data.seed  # the model's own random draws
    policy = distribute.mixed_precision_policy(strategy) if config.train.mixed_precision else None
    with strategy.scope(), models.dtype_policy(policy):
        model = models.build(config.model.variant, input_shape, **options)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            steps_per_execution=config.train.steps_per_execution or 1,
            # False leaves Keras' own choice: XLA on a lone GPU, off on CPUs
            # and under tf.distribute.
            jit_compile=True if config.train.jit_compile else "auto",
        )
    return model
