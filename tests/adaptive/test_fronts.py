"""Adaptive fronts against static ones, on hand-made fronts (values worked out by hand)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedhar.adaptive.fronts import cost_at, cycles_saving_at_equal_f1, max_gap_to_static_front
from fedhar.adaptive.modes import replicate_indices

# Static models: (score, cycles). The dominated (0.85, 300) is not on the front.
STATIC_SCORE = np.array([0.80, 0.90, 0.85, 0.95])
STATIC_COST = np.array([100.0, 200.0, 300.0, 400.0])


def test_gap_interpolates_the_static_front_linearly_in_cycles() -> None:
    # At 150 cycles the front is halfway between 0.80 and 0.90: 0.85; the mode scores 0.82.
    # At 500 cycles (above the dearest static model) the front stays at 0.95; the mode 0.94.
    gap = max_gap_to_static_front(
        np.array([0.82, 0.94]), np.array([150.0, 500.0]), STATIC_SCORE, STATIC_COST
    )
    assert gap == pytest.approx(0.03)


def test_gap_ignores_modes_cheaper_than_every_static_model_and_can_be_negative() -> None:
    # 50 cycles: no static model, not compared. 300 cycles: front 0.925, mode 0.93 above it.
    gap = max_gap_to_static_front(
        np.array([0.70, 0.93]), np.array([50.0, 300.0]), STATIC_SCORE, STATIC_COST
    )
    assert gap == pytest.approx(-0.005)
    assert math.isnan(
        max_gap_to_static_front(np.array([0.7]), np.array([50.0]), STATIC_SCORE, STATIC_COST)
    )


def test_static_cost_at_a_score() -> None:
    front_cost, front_score = np.array([100.0, 200.0, 400.0]), np.array([0.80, 0.90, 0.95])
    assert cost_at(front_cost, front_score, 0.70) == 100.0  # the cheapest model reaches it
    assert cost_at(front_cost, front_score, 0.85) == pytest.approx(150.0)
    assert cost_at(front_cost, front_score, 0.925) == pytest.approx(300.0)
    assert math.isnan(cost_at(front_cost, front_score, 0.96))


def test_saving_at_equal_f1_positive_and_negative() -> None:
    # Mode (0.925, 120): the static front needs 300 cycles for 0.925: saving 1 - 120/300 = 0.6.
    # Mode (0.85, 180): static needs 150: saving -0.2. The largest is 0.6.
    saving = cycles_saving_at_equal_f1(
        np.array([0.85, 0.925]), np.array([180.0, 120.0]), STATIC_SCORE, STATIC_COST
    )
    assert saving == pytest.approx(0.6)
    # Only dearer modes: (0.80, 150) against 100 → -0.5; (0.90, 250) against 200 → -0.25.
    saving = cycles_saving_at_equal_f1(
        np.array([0.80, 0.90]), np.array([150.0, 250.0]), STATIC_SCORE, STATIC_COST
    )
    assert saving == pytest.approx(-0.25)


def test_saving_skips_scores_above_the_static_front() -> None:
    saving = cycles_saving_at_equal_f1(
        np.array([0.99]), np.array([10.0]), STATIC_SCORE, STATIC_COST
    )
    assert math.isnan(saving)


def test_replicate_indices_repeats_only_the_class() -> None:
    y = np.array([0, 2, 1, 2])
    idx = replicate_indices(y, 2, 3)
    assert sorted(idx.tolist()) == [0, 1, 1, 1, 2, 3, 3, 3]
    assert (y[idx] == 2).mean() == pytest.approx(6 / 8)
    assert replicate_indices(y, 2, 1).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="factor"):
        replicate_indices(y, 2, 0)
