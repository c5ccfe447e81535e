"""The analytic estimator equals, byte for byte and operation for operation, what the library
measures on a real run of the same configuration."""

from __future__ import annotations

import numpy as np
import pytest
from _ctrain_support import data, random_model, twins
from hypothesis import given, settings
from hypothesis import strategies as st

from fedhar.models.spec import ModelSpec, SpecBuilder, cnn3, daghero_cnn
from fedhar.ondevice.ctrain import Trainer
from fedhar.ondevice.estimator import (
    CATEGORIES,
    PHASES,
    OpCounts,
    estimate_inference,
    estimate_training,
)


def _odd_model() -> ModelSpec:
    """Strided conv, BN, maxpool with overlap, even-kernel same conv, avgpool, flatten."""
    b = SpecBuilder(3, 30).conv1d("c1", 8, 5, stride=2).batchnorm1d("bn").relu("r1")
    b.pool1d("maxpool1d", "mp", 3, 2).conv1d("c2", 6, 4, padding="same").relu("r2")
    b.pool1d("avgpool1d", "ap", 2, 1).flatten("flat").dense("fc", 4)
    return b.build("odd")


def _measure_and_compare(
    spec: ModelSpec, mode: str, batch: int, momentum: bool, weight_decay: bool, n_stored: int
) -> None:
    _, trainer = twins(
        spec,
        0,
        mode=mode,
        momentum=0.9 if momentum else 0.0,
        weight_decay=1e-3 if weight_decay else 0.0,
        n_stored_samples=n_stored,
    )
    x, y = data(batch, spec.input_channels, spec.input_length, spec.n_classes, 1)
    trainer.reset_counts()
    trainer.train_batch(x, y)
    measured, memory = trainer.counts(), trainer.memory()
    est = estimate_training(
        spec, mode, batch, n_stored_samples=n_stored, momentum=momentum, weight_decay=weight_decay
    )
    assert set(est.ops_per_layer) == set(measured)
    for name, row in est.ops_per_layer.items():
        for phase in PHASES:
            assert row[phase] == measured[name][phase], (name, phase)
    assert est.memory_bytes == {k: memory[k] for k in (*CATEGORIES, "total")}
    assert est.memory_per_layer == memory["per_layer"]
    total = sum((r[p] for r in measured.values() for p in PHASES), OpCounts())
    assert est.ops_total_per_batch == total


@pytest.mark.parametrize("length", [20, 40, 60, 80, 100])
@pytest.mark.parametrize("mode", ["tl", "full"])
def test_cnn3_paper_configurations(length: int, mode: str) -> None:
    _measure_and_compare(cnn3(3, length, 6), mode, 32, True, False, 0)


@pytest.mark.parametrize("mode", ["tl", "full"])
def test_batchnorm_maxpool_models(mode: str) -> None:
    _measure_and_compare(daghero_cnn(3, 40, 6, hidden=20), mode, 7, False, True, 5)
    _measure_and_compare(_odd_model(), "full", 5, True, True, 3)


def test_epoch_counts_are_batches_times_batch_estimate() -> None:
    spec = cnn3(3, 20, 6)
    _, trainer = twins(spec, 0, momentum=0.9)
    x, y = data(96, 3, 20, 6, 2)
    trainer.reset_counts()
    trainer.train_epoch(x, y, 32, np.random.default_rng(0).permutation(96))
    total = sum((r[p] for r in trainer.counts().values() for p in PHASES), OpCounts())
    assert total == estimate_training(spec, "full", 32).ops_total_per_batch.scaled(3)


def test_inference_counts() -> None:
    for spec in (cnn3(3, 60, 6), daghero_cnn(3, 40, 6)):
        _, trainer = twins(spec, 0)
        x, _ = data(11, 3, spec.input_length, 6, 3)
        trainer.reset_counts()
        trainer.logits(x)
        measured = trainer.counts()
        assert all(r[p] == OpCounts() for r in measured.values() for p in PHASES[1:])
        forward = sum((r["forward"] for r in measured.values()), OpCounts())
        assert forward == estimate_inference(spec, 11)


def test_memory_does_not_grow_with_batch() -> None:
    spec = cnn3(3, 100, 6)
    assert (
        estimate_training(spec, batch=1).memory_bytes
        == estimate_training(spec, batch=256).memory_bytes
    )


@settings(max_examples=15, derandomize=True, deadline=None)
@given(
    model=random_model(),
    batch=st.integers(1, 6),
    momentum=st.booleans(),
    n_stored=st.integers(0, 3),
)
def test_random_models_and_flags(
    model: tuple[ModelSpec, list[bool]], batch: int, momentum: bool, n_stored: int
) -> None:
    spec, flags = model
    mom = 0.5 if momentum else 0.0
    trainer = Trainer(spec, momentum=mom, n_stored_samples=n_stored, trainable=flags)
    x, y = data(batch, spec.input_channels, spec.input_length, spec.n_classes, 0)
    trainer.reset_counts()
    trainer.train_batch(x, y)
    est = estimate_training(
        spec, batch=batch, trainable=flags, momentum=momentum, n_stored_samples=n_stored
    )
    measured = trainer.counts()
    assert all(est.ops_per_layer[n][p] == measured[n][p] for n in measured for p in PHASES)
    memory = trainer.memory()
    assert est.memory_bytes == {k: memory[k] for k in (*CATEGORIES, "total")}
    assert est.memory_per_layer == memory["per_layer"]
