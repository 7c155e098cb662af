"""The guards of keras_ae's workarounds for Keras bugs (keras_ae/keras_fixes.py):
they pass on the Keras installed, and fail, naming the fix, when what a fix
relies on changes."""

import keras
from keras.src.backend.tensorflow import trainer
import pytest

from keras_ae import keras_fixes


def test_every_fix_holds_on_the_installed_keras():
    keras_fixes.check_all()


def test_a_changed_symbolic_build_fails_naming_the_fix(monkeypatch):
    def _maybe_symbolic_build(self, data_batch=None):  # as a release might reshape it
        pass

    monkeypatch.setattr(keras.Model, "_maybe_symbolic_build", _maybe_symbolic_build)
    with pytest.raises(keras_fixes.KerasChanged, match="fix 'symbolic build'.*data_batch"):
        keras_fixes.check_all()


def test_a_removed_reduce_per_replica_fails_naming_the_fix(monkeypatch):
    monkeypatch.delattr(trainer, "reduce_per_replica")
    with pytest.raises(keras_fixes.KerasChanged, match="fix 'multi-worker logs'"):
        keras_fixes.check_all()
    with pytest.raises(keras_fixes.KerasChanged, match="fix 'multi-worker logs'"):
        keras_fixes.fix_multi_worker_logs()  # applying it checks first


def test_fixing_the_logs_reduces_only_multi_worker_means_and_is_idempotent(monkeypatch):
    monkeypatch.setattr(trainer, "reduce_per_replica", trainer.reduce_per_replica)
    original = trainer.reduce_per_replica
    keras_fixes.fix_multi_worker_logs()
    fixed = trainer.reduce_per_replica
    assert fixed is not original and fixed.keras_reduce is original
    keras_fixes.fix_multi_worker_logs()
    assert trainer.reduce_per_replica is fixed
    keras_fixes.check_all()  # the check sees through the fix
