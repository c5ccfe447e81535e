"""``adaptive.selection: across_seeds``: one (M_l, width) pair chosen from every seed's
validation results, each seed reporting its own network of it."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import pytest

from fedhar.cli import main
from fedhar.studies.adaptive import prefer_pair
from fedhar.studies.adaptive_across import pool_scores

SCENARIO = """
name: syn_across
seed: 0
data: {dataset: synthetic, classes: [walking, jogging, sitting, standing], window: 40,
       stride: 20, options: {n_users: 8, seconds_per_activity: 20}}
adaptive:
  grid_channels: [[4, 4, 8], [8, 8, 16], [8, 16, 16], [16, 16, 32]]
  grid_kernels: [7]
  search_epochs: 1
  epochs: 1
  personalize_users: 0
  thresholds: 10
  cascade: false
  score_drop: 0.3
  min_small_channels: 2
  large_choice: gap_then_hypervolume
  large_pool: range
  split: users
  test_users: ['2', '5', '7']
  holdout_users_fraction: 0.34
"""


def test_pooled_scores_weigh_every_seed_alike_and_skip_gaps_that_cannot_be_compared() -> None:
    a, b = (0, 0.5), (1, 0.25)
    # Seed 1's hypervolumes are 10x seed 0's: relative to each seed's largest, both count alike.
    volumes = [{a: 2.0, b: 1.0}, {a: 10.0, b: 20.0}]
    gaps = [{a: 0.02, b: math.nan}, {a: -0.04, b: math.nan}]
    volume, gap = pool_scores(volumes, gaps)
    assert volume == {a: pytest.approx(0.75), b: pytest.approx(0.75)}
    assert gap[a] == pytest.approx(-0.01) and math.isnan(gap[b])
    gaps[1][b] = 0.03
    volume, gap = pool_scores(volumes, gaps)
    assert gap[b] == pytest.approx(0.03)  # the one seed that could compare it
    # a lies nowhere below the front on average, b does: a is kept though b's volume is larger.
    assert prefer_pair({a: 0.5, b: 0.9}, gap, "gap_then_hypervolume") == a
    assert prefer_pair({a: 0.5, b: 0.9}, gap, "hypervolume") == b


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_one_pair_is_chosen_from_the_seed_means_and_each_seed_reports_its_own_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDHAR_CACHE_DIR", str(tmp_path / "cache"))
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO + "  selection: across_seeds\n")
    out = tmp_path / "across"
    assert main(["adaptive", str(scenario), "--out", str(out), "--seeds", "0", "3"]) == 0
    record = json.loads((out / "seeds.json").read_text())
    summaries = [json.loads((out / f"seed-{k}" / "summary.json").read_text()) for k in (0, 3)]
    grids = [_rows(out / f"seed-{k}" / "static_grid.csv") for k in (0, 3)]
    # The candidates: every grid model within score_drop of the best seed-mean validation F1
    # that can host M_s, recomputed from the grids the seeds wrote.
    mean_val = {
        r["model"]: statistics.fmean(float(g[i]["f1_val"]) for g in grids)
        for i, r in enumerate(grids[0])
    }
    in_range = {m for m, v in mean_val.items() if v >= max(mean_val.values()) - 0.3}
    for s in summaries:
        assert s["chosen_over_seeds"] == [0, 3]
        assert {k.rsplit(" @", 1)[0] for k in s["candidate_validation_gap"]} == in_range
    # The chosen pair is the rule applied to the seeds' means of the values they wrote.
    keys = list(summaries[0]["candidate_hypervolume"])
    volumes = [{k: s["candidate_hypervolume"][k] for k in keys} for s in summaries]
    gaps = [
        {k: math.nan if v is None else v for k, v in s["candidate_validation_gap"].items()}
        for s in summaries
    ]
    volume, gap = pool_scores(volumes, gaps)  # type: ignore[arg-type]
    chosen = prefer_pair(volume, gap, "gap_then_hypervolume")  # type: ignore[arg-type]
    assert record["selection"]["rule"] == "across_seeds"
    assert record["selection"]["chosen"] == chosen
    assert record["selection"]["pairs"][chosen]["mean_relative_hypervolume"] == pytest.approx(
        volume[chosen]
    )
    for s in summaries:
        assert f"{s['large_model']} @{s['small_width']}" == chosen
    # Each seed reports its own network: the two seeds' modes differ.
    modes = [(out / f"seed-{k}" / "modes.csv").read_bytes() for k in (0, 3)]
    assert modes[0] != modes[1]
    # Per seed, the same scenario chooses on each seed's own validation.
    scenario.write_text(SCENARIO)
    per_seed = tmp_path / "per_seed"
    assert main(["adaptive", str(scenario), "--out", str(per_seed), "--seeds", "0", "3"]) == 0
    own = [json.loads((per_seed / f"seed-{k}" / "summary.json").read_text()) for k in (0, 3)]
    assert [s["chosen_over_seeds"] for s in own] == [[0], [3]]
    assert json.loads((per_seed / "seeds.json").read_text())["selection"] == {"rule": "per_seed"}
