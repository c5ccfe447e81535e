"""Eq. (5) choice of M_l over a hand-made static front, and the grid's specs."""

from __future__ import annotations

import pytest

from fedhar.adaptive.modes import Mode
from fedhar.studies.adaptive import covering_static_set, static_in_range, static_memory_ratio
from fedhar.studies.adaptive_search import (
    Candidate,
    choose_large,
    front,
    gains,
    grid_specs,
    small_fits,
)


def cand(f1: float, cycles: float) -> Candidate:
    return Candidate((8, 8, 8), 7, f1, f1, cycles, 0.0, 0, 0)


def test_gain_picks_the_steepest_step_within_the_score_drop() -> None:
    cands = [
        cand(0.80, 100.0),  # front, least accurate: no gain
        cand(0.90, 200.0),  # gain 0.10 / 100 = 1e-3, but 0.08 below the best
        cand(0.95, 250.0),  # gain 0.05 / 50 = 1e-3
        cand(0.97, 260.0),  # gain 0.02 / 10 = 2e-3  <- M_l
        cand(0.98, 1000.0),  # gain 0.01 / 740
        cand(0.85, 900.0),  # dominated
    ]
    on = front(cands, "val")
    assert on.tolist() == [True, True, True, True, True, False]
    g = gains(cands, on)
    assert g[1] == pytest.approx(1e-3) and g[3] == pytest.approx(2e-3) and 0 not in g
    assert choose_large(cands, 0.05)[0] == 3
    assert choose_large(cands, 0.005)[0] == 4


def test_grid_specs_cover_channels_and_kernels() -> None:
    specs = grid_specs(3, 60, 5, [[4, 8, 8], [8, 16, 16]], [7, 15], [2, 4])
    convs = [[layer for layer in s.layers if layer.kind == "conv1d"] for s in specs]
    pools = [{layer.kernel for layer in s.layers if layer.kind == "maxpool1d"} for s in specs]
    assert [(c[0].out_channels, c[2].out_channels, c[0].kernel) for c in convs] == [
        (4, 8, 7),
        (8, 16, 7),
        (4, 8, 15),
        (8, 16, 15),
    ] * 2
    assert pools == [{2}] * 4 + [{4}] * 4


def test_min_small_channels_excludes_too_thin_models() -> None:
    assert small_fits((16, 16, 32), 0.25, 4) and not small_fits((8, 16, 16), 0.25, 4)
    cands = [cand(0.96, 100.0), cand(0.97, 110.0), cand(0.98, 400.0)]
    assert choose_large(cands, 0.05)[0] == 1
    assert choose_large(cands, 0.05, [True, False, True])[0] == 2
    with pytest.raises(ValueError, match="min_small_channels"):
        choose_large(cands, 0.05, [False, False, False])


def test_static_set_covers_the_adaptive_range() -> None:
    cands = [cand(0.90, 100.0), cand(0.93, 200.0), cand(0.97, 400.0), cand(0.99, 900.0)]
    modes = [mode(0.91, True), mode(0.95, True), mode(0.96, False), mode(0.80, False)]
    assert static_in_range(cands, modes) == [1]
    assert covering_static_set(cands, modes) == [1, 2]
    assert covering_static_set(cands, [mode(0.91, True), mode(0.93, True)]) == [1]


def test_no_static_set_when_every_static_model_scores_below_the_adaptive_modes() -> None:
    # HAPT seed 4 (2026-12-06): the adaptive modes scored 0.808-0.812, the best static 0.801.
    cands = [
        Candidate((8, 8, 8), 7, f1, f1, cycles, 0.0, 0, size)
        for f1, cycles, size in ((0.90, 100.0, 600), (0.93, 200.0, 1000), (0.97, 400.0, 3000))
    ]
    above = [mode(0.98, True), mode(0.99, True)]
    assert covering_static_set(cands, above) == []
    assert static_memory_ratio(cands, [], 2000) is None
    spanned = covering_static_set(cands, [mode(0.92, True), mode(0.95, True)])
    assert spanned == [1, 2]
    assert static_memory_ratio(cands, spanned, 2000) == (1000 + 3000) / 2000


def mode(f1: float, pareto: bool) -> Mode:
    return Mode(0.5, f1, f1, 0.5, 1.0, 1.0, 1.0, f1, 0.5, pareto)
