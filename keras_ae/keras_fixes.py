"""Workarounds for Keras bugs that reach into private Keras APIs, each guarded.

Two Keras 3.15 bugs break `fit()` under `MultiWorkerMirroredStrategy`
(keras-team/keras#20585, open as of Keras 3.15.1, the latest release):

- "symbolic build": before the first step, fit() averages a distributed batch
  eagerly to build metrics and optimizer, which fails across workers
  ("Attempt to convert a value (PerReplica...)"). `Autoencoder` overrides
  `_maybe_symbolic_build` to build from zeros of its input shape instead.
- "multi-worker logs": fit() averages each step's scalar logs with
  `strategy.reduce("MEAN", value, axis=0)`, which fails for scalars ("Invalid
  reduction dimension 0 for input with 0 dimensions"). `fix_multi_worker_logs`
  replaces that one case; `keras_ae.training` applies it to multi-worker runs.

A Keras release may rename or reshape what these rely on, which would turn a
fix into dead code or a crash. Each fix therefore has a check that raises
`KerasChanged`, naming the fix, when the installed Keras no longer has it:
`check_all()` runs them (tests/test_keras_fixes.py), and applying a fix runs
its own. setup.py admits only the Keras minor version they were checked with.
"""

import inspect

import keras
import tensorflow as tf


class KerasChanged(RuntimeError):
    """The installed Keras no longer has what a keras-ae workaround relies on."""

    def __init__(self, fix, what):
        super().__init__(
            f"keras-ae's fix {fix!r} (keras-team/keras#20585) relies on {what}, which "
            f"Keras {keras.__version__} changed. Check whether the bug is fixed in this "
            "release and drop or adapt the fix (keras_ae/keras_fixes.py), or install "
            "the Keras version setup.py names"
        )


def _trainer():
    from keras.src.backend.tensorflow import trainer  # the private module at fault

    return trainer


def _require(fix, condition, what):
    if not condition:
        raise KerasChanged(fix, what)


def _parameters(function):
    return list(inspect.signature(function).parameters)


def check_symbolic_build():
    """Raises KerasChanged unless fit() still calls
    `_maybe_symbolic_build(iterator=...)`, which `Autoencoder` overrides."""
    fix = "symbolic build"
    method = getattr(keras.Model, "_maybe_symbolic_build", None)
    _require(fix, method is not None, "keras.Model._maybe_symbolic_build")
    _require(
        fix, _parameters(method) == ["self", "iterator", "data_batch"],
        "_maybe_symbolic_build(self, iterator=None, data_batch=None)",
    )
    fit = inspect.getsource(_trainer().TensorFlowTrainer.fit)
    _require(fix, "self._maybe_symbolic_build(iterator=" in fit,
             "TensorFlowTrainer.fit calling self._maybe_symbolic_build(iterator=...)")


def check_multi_worker_logs():
    """Raises KerasChanged unless fit() still reduces its logs through the
    module-level `reduce_per_replica(values, strategy, reduction)`."""
    fix = "multi-worker logs"
    trainer = _trainer()
    reduce = getattr(trainer, "reduce_per_replica", None)
    reduce = getattr(reduce, "keras_reduce", reduce)  # Keras' own, once fixed
    _require(fix, reduce is not None, "keras.src.backend.tensorflow.trainer.reduce_per_replica")
    _require(fix, _parameters(reduce) == ["values", "strategy", "reduction"],
             "reduce_per_replica(values, strategy, reduction)")
    _require(fix, callable(getattr(trainer, "_collective_all_reduce_multi_worker", None)),
             "trainer._collective_all_reduce_multi_worker(strategy)")
    step = inspect.getsource(trainer.TensorFlowTrainer._make_function)
    _require(fix, "reduce_per_replica(" in step,
             "TensorFlowTrainer._make_function (fit's step) calling reduce_per_replica")


def check_all():
    """Runs every fix's check; raises KerasChanged at the first that fails."""
    check_symbolic_build()
    check_multi_worker_logs()


def fix_multi_worker_logs():
    """Makes fit() reduce scalar logs across workers (idempotent).

    Replaces the one failing case, a "mean" over a multi-worker strategy, by a
    mean over replicas (axis=None), and leaves every other reduction to Keras.
    """
    check_multi_worker_logs()
    trainer = _trainer()
    if hasattr(trainer.reduce_per_replica, "keras_reduce"):
        return
    keras_reduce = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(
            strategy
        ):
            return tf.nest.map_structure(
                lambda value: strategy.reduce("MEAN", value, axis=None), values
            )
        return keras_reduce(values, strategy, reduction)

    reduce_per_replica.keras_reduce = keras_reduce
    trainer.reduce_per_replica = reduce_per_replica
