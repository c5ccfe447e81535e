"""``adaptive.large_choice: hypervolume``: every eligible front model is converted and the best
validation trade-off is kept."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fedhar.cli import main

SCENARIO = """
name: syn_pair
seed: 0
data: {dataset: synthetic, classes: [walking, jogging, sitting, standing], window: 40,
       stride: 20, options: {n_users: 6, seconds_per_activity: 20}}
adaptive:
  grid_channels: [[4, 4, 8], [8, 8, 16], [8, 16, 16], [16, 16, 32]]
  grid_kernels: [7]
  search_epochs: 1
  epochs: 1
  personalize_users: 0
  thresholds: 10
  cascade: false
  score_drop: 0.99
  min_small_channels: 2
  large_choice: %s
"""


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test trains into its own network cache."""
    monkeypatch.setenv("FEDHAR_CACHE_DIR", str(tmp_path / "cache"))


def _summary(tmp_path: Path, choice: str) -> dict:
    name = choice.split()[0] + ("_range" if "range" in choice else "")
    scenario = tmp_path / f"{name}.yaml"
    scenario.write_text(SCENARIO % choice)
    out = tmp_path / name
    assert main(["adaptive", str(scenario), "--out", str(out)]) == 0
    return json.loads((out / "summary.json").read_text())


def _converted(summary: dict) -> set[str]:
    """The M_l labels a study converted into two-width networks."""
    return {k.rsplit(" @", 1)[0] for k in summary["candidate_hypervolume"]}


@pytest.mark.slow
def test_the_pair_with_the_largest_validation_hypervolume_is_kept(
    tmp_path: Path,
) -> None:
    gain = _summary(tmp_path, "gain")
    pair = _summary(tmp_path, "hypervolume")
    assert gain["large_choice"] == "gain" and pair["large_choice"] == "hypervolume"
    # The gain rule converts one M_l; the hypervolume rule converts every candidate, the
    # gain rule's among them, with the same network (the cache key is the same).
    assert _converted(gain) == {gain["large_model"]}
    labels = _converted(pair)
    assert len(labels) >= 2 and gain["large_model"] in labels
    volumes = pair["candidate_hypervolume"]
    best = max(volumes, key=volumes.__getitem__)
    assert best == f"{pair['large_model']} @{pair['small_width']}"
    assert pair["width_hypervolume"] == {
        k.rsplit(" @", 1)[1]: v
        for k, v in volumes.items()
        if k.rsplit(" @", 1)[0] == pair["large_model"]
    }


@pytest.mark.slow
def test_gap_then_hypervolume_keeps_the_best_pair_without_a_validation_gap(
    tmp_path: Path,
) -> None:
    s = _summary(tmp_path, "gap_then_hypervolume\n  large_pool: range")
    volumes, gaps = s["candidate_hypervolume"], s["candidate_validation_gap"]
    assert set(volumes) == set(gaps)
    # A null gap (no mode as dear as the cheapest static model) is not a gap.
    level = [k for k in volumes if gaps[k] is None or gaps[k] <= 0]
    want = (
        max(level, key=volumes.__getitem__)
        if level
        else min(volumes, key=lambda k: gaps[k] if gaps[k] is not None else float("inf"))
    )
    assert want == f"{s['large_model']} @{s['small_width']}"


@pytest.mark.slow
def test_the_range_pool_converts_models_off_the_validation_front(
    tmp_path: Path,
) -> None:
    on_front = _summary(tmp_path, "hypervolume")
    anywhere = _summary(tmp_path, "hypervolume\n  large_pool: range")
    with open(tmp_path / "hypervolume" / "static_grid.csv") as fh:
        grid = list(csv.DictReader(fh))
    front_labels = {r["model"] for r in grid if r["front_val"] == "True"}

    # score_drop 0.99 and min_small_channels 2: every grid model is in range and can host M_s.
    assert _converted(on_front) == front_labels
    assert _converted(anywhere) == {r["model"] for r in grid}
