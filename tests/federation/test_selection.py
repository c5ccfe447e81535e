"""Selection strategies read only the clients' last reports, and draw from the seed and round."""

from __future__ import annotations

from fedhar.schema.scenario import SelectionConfig
from server.selection import Report, select, utility_scores

REPORTS = {
    "1": Report(soc=0.9, capacity_j=100.0, loss=0.5, n_train=100, energy_j=10.0),
    "2": Report(soc=0.2, capacity_j=100.0, loss=2.0, n_train=100, energy_j=30.0),  # runs dry
    "3": Report(soc=0.6, capacity_j=100.0, loss=1.0, n_train=400, energy_j=5.0),
    "4": Report(soc=0.8, on=False, capacity_j=100.0),
    "5": Report(soc=1.0, capacity_j=100.0),  # not heard from yet
}


def test_all_and_threshold() -> None:
    assert select(SelectionConfig(), 1, 0, REPORTS) == list(REPORTS)
    cfg = SelectionConfig(strategy="battery_threshold", soc_min=0.6)
    assert select(cfg, 1, 0, REPORTS) == ["1", "3", "5"]  # 4 is off


def test_random_and_soc_weighted_repeat_by_seed_and_round() -> None:
    for strategy in ("random", "soc_weighted"):
        cfg = SelectionConfig(strategy=strategy, k=2)
        picks = {tuple(select(cfg, r, 7, REPORTS)) for r in range(1, 30)}
        assert all(len(p) == 2 for p in picks) and len(picks) > 3
        assert select(cfg, 3, 7, REPORTS) == select(cfg, 3, 7, REPORTS)
    weighted = SelectionConfig(strategy="soc_weighted", k=2)
    chosen = [u for r in range(1, 200) for u in select(weighted, r, 0, REPORTS)]
    assert "4" not in chosen  # off
    assert chosen.count("5") > chosen.count("2")  # full battery over 20 %


def test_utility_trades_loss_against_the_energy_left() -> None:
    scores = utility_scores(REPORTS, energy_weight=1.0)
    assert set(scores) == {"1", "3", "5"}  # 2 would run dry (30 J of 20 J left), 4 is off
    top = 1.0 * 400**0.5
    assert scores["3"] == 1.0 - 5.0 / 60.0
    assert scores["1"] == 0.5 * 100**0.5 / top - 10.0 / 90.0
    assert scores["5"] == 1.0  # unknown: the best loss term, no energy term
    cfg = SelectionConfig(strategy="utility", k=2)
    assert select(cfg, 1, 0, REPORTS) == ["3", "5"]
    # Round 1: no client has reported, every score is 1; ties go by user order.
    fresh = {u: Report(capacity_j=100.0) for u in REPORTS}
    assert select(cfg, 1, 0, fresh) == ["1", "2"]
