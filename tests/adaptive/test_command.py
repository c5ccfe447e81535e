"""``fedhar adaptive`` end to end on a small synthetic scenario."""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fedhar.adaptive.fronts import cycles_saving_at_equal_f1, max_gap_to_static_front
from fedhar.cli import main
from fedhar.models.training import numerical_environment

SCENARIO = """
name: syn
seed: 0
data: {dataset: synthetic, classes: [walking, jogging, sitting, standing], window: 40,
       stride: 20, options: {n_users: 8, seconds_per_activity: 20}}
adaptive:
  grid_channels: [[4, 8, 8], [8, 8, 16]]
  grid_kernels: [7]
  search_epochs: 1
  epochs: 1
  personalize_users: 1
  personalize_epochs: 1
  thresholds: 10
  replicate: {activity: sitting, factors: [1, 3]}
"""


def static_grid(out: Path) -> list[dict[str, str]]:
    """The rows of a study's ``static_grid.csv``."""
    with open(out / "static_grid.csv") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def scenario_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """Writes SCENARIO with ``extra`` lines of its ``adaptive:`` section to ``tmp_path/s.yaml``
    and points the network cache into ``tmp_path``."""
    monkeypatch.setenv("FEDHAR_CACHE_DIR", str(tmp_path / "cache"))

    def write(extra: str = "") -> Path:
        path = tmp_path / "s.yaml"
        path.write_text(SCENARIO + extra)
        return path

    return write


@pytest.mark.slow
def test_adaptive_command_writes_its_files(
    tmp_path: Path, scenario_file: Callable[[str], Path]
) -> None:
    scenario = scenario_file()
    out = tmp_path / "out"
    assert main(["adaptive", str(scenario), "--out", str(out)]) == 0
    with open(out / "modes.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 10
    assert {"th", "f1", "p_easy", "cycles_avg", "energy_uj_avg", "pareto"} <= set(rows[0])
    modes = json.loads((out / "modes.json").read_text())
    assert len(modes["modes"]) == 10 and modes["small_width"] in (0.25, 0.5)
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "pareto_modes",
        "cycles_span",
        "bn_overhead_fraction",
        "adaptive_bytes",
        "static_set_bytes",
    ):
        assert key in summary
    assert summary["pareto_modes"] == sum(r["pareto"] == "True" for r in rows)
    # The CPU kernels that trained the networks are recorded (their weights depend on them).
    assert summary["numerical_environment"] == numerical_environment()
    # Every pricing compares the variable-width and the cascade fronts with the static one.
    assert summary["priced_by"] == summary["pricings"][0]
    for name in summary["pricings"]:
        for curve in ("adaptive", "cascade"):
            assert "max_gap_to_static_front" in summary["fronts"][name][curve]
    assert summary["cascade"]["bytes"] > summary["adaptive_bytes"]
    factors = summary["replicated"]["factors"]
    assert factors["3"]["class_share"] > factors["1"]["class_share"] > 0
    user = summary["personalized_users"][0]["user"]
    assert (out / "users" / user / "modes_after.csv").is_file()
    assert (out / "users" / user / "model.pt").is_file()
    for name in ("fig11.png", "fig12.png", "personalized.png", "static_grid.csv", "model.pt"):
        assert (out / name).is_file()


@pytest.mark.slow
def test_cascade_firsts_cover_every_cheaper_grid_model(
    tmp_path: Path, scenario_file: Callable[[str], Path]
) -> None:
    scenario = scenario_file()
    scenario.write_text(
        SCENARIO.replace("[[4, 8, 8], [8, 8, 16]]", "[[2, 4, 4], [4, 8, 8], [8, 8, 16]]")
    )
    out = tmp_path / "out"
    assert main(["adaptive", str(scenario), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    grid = {row["model"]: row for row in static_grid(out)}
    large = grid[summary["large_model"]]
    with open(out / "cascade_firsts.csv") as fh:
        rows = list(csv.DictReader(fh))
    # One row per grid model cheaper than M_l, and nothing else.
    cheaper = {m for m, g in grid.items() if float(g["cycles"]) < float(large["cycles"])}
    assert {row["model"] for row in rows} == cheaper and len(rows) == len(cheaper) >= 2
    static_f1 = np.array([float(g["f1_test"]) for g in grid.values()])
    static_cycles = np.array([float(g["cycles"]) for g in grid.values()])
    for row in rows:
        total = int(row["first_bytes"]) + int(large["bytes"])
        assert int(row["cascade_bytes"]) == total
        ratio = float(row["memory_ratio_cascade_over_adaptive"])
        assert ratio == pytest.approx(total / summary["adaptive_bytes"])
    # The chosen row is the summary's own cascade, on the headline pricing.
    chosen = [row for row in rows if row["chosen"] == "True"]
    assert [row["model"] for row in chosen] == summary["cascade"]["models"][:1]
    headline = summary["fronts"][summary["priced_by"]]["cascade"]
    assert float(chosen[0]["cycles_saving_at_equal_f1"]) == pytest.approx(
        headline["cycles_saving_at_equal_f1"]
    )
    assert float(chosen[0]["memory_ratio_cascade_over_adaptive"]) == pytest.approx(
        summary["cascade"]["memory_ratio_cascade_over_adaptive"]
    )
    # The summary's reading is recomputed from the rows and the variable-width modes.
    with open(out / "modes.csv") as fh:
        modes = list(csv.DictReader(fh))
    adaptive = cycles_saving_at_equal_f1(
        np.array([float(m["f1"]) for m in modes]),
        np.array([float(m["cycles_avg"]) for m in modes]),
        static_f1,
        static_cycles,
    )
    firsts = summary["cascade"]["firsts"]
    assert firsts["adaptive_cycles_saving_at_equal_f1"] == pytest.approx(adaptive)
    matching = [
        float(row["memory_ratio_cascade_over_adaptive"])
        for row in rows
        if row["cycles_saving_at_equal_f1"] != ""
        and float(row["cycles_saving_at_equal_f1"]) >= adaptive
    ]
    assert firsts["cascades"] == len(rows)
    assert firsts["matching_adaptive_saving"] == len(matching)
    assert firsts["cheapest_matching_memory_ratio"] == (min(matching) if matching else None)
    assert (out / "cascade_firsts.png").is_file()


def test_bad_scenario_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: x\ndata: {dataset: synthetic}\nadaptive: {pool: 0}\n")
    assert main(["adaptive", str(scenario), "--out", str(tmp_path / "o")]) == 2
    assert "adaptive.pool" in capsys.readouterr().err


@pytest.mark.slow
def test_adaptive_resume_keeps_the_trained_grid_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scenario_file: Callable[[str], Path]
) -> None:
    scenario = scenario_file()
    out = tmp_path / "out"
    assert main(["adaptive", str(scenario), "--out", str(out)]) == 0
    assert "(cached)" not in capsys.readouterr().out  # an empty cache: everything trained
    modes = (out / "modes.csv").read_bytes()
    journal = out / "grid.jsonl"
    lines = journal.read_text().splitlines()
    assert len(lines) == 3  # the study's identity, then the two grid models
    assert main(["adaptive", str(scenario), "--out", str(out)]) == 2  # never replaced silently
    assert "use --resume" in capsys.readouterr().err
    journal.write_text("\n".join(lines[:2]) + "\n")  # as if killed after the first grid model
    assert main(["adaptive", str(scenario), "--out", str(out), "--resume"]) == 0
    # Nothing is trained again: every grid model and variable-width network comes from the cache.
    steps = [
        line
        for line in capsys.readouterr().out.splitlines()
        if "grid C" in line or "variable-width net" in line
    ]
    assert len(steps) >= 3 and all("(cached)" in line for line in steps)
    assert journal.read_text().splitlines() == lines
    assert (out / "modes.csv").read_bytes() == modes


@pytest.mark.slow
def test_adaptive_seeds_run_one_study_per_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scenario_file: Callable[[str], Path]
) -> None:
    # M_s fits under any seed; the same 3 test users under every seed.
    scenario = scenario_file(
        "  min_small_channels: 2\n  split: users\n  test_users: ['2', '5', '7']\n"
        "  holdout_users_fraction: 0.34\n"
    )
    out = tmp_path / "seeds"
    assert main(["adaptive", str(scenario), "--out", str(out), "--seeds", "0", "3"]) == 0
    record = json.loads((out / "seeds.json").read_text())
    assert record["seeds"] == [0, 3] and [r["seed"] for r in record["runs"]] == [0, 3]
    assert (out / "seeds.png").stat().st_size > 0
    # A seed's directory holds exactly what a plain run of the scenario with that seed writes.
    single = tmp_path / "single"
    assert main(["adaptive", str(scenario), "--out", str(single)]) == 0
    for name in ("summary.json", "modes.csv", "static_grid.csv"):
        assert (out / "seed-0" / name).read_bytes() == (single / name).read_bytes()
    seeded = json.loads((out / "seed-3" / "summary.json").read_text())
    assert seeded["seed"] == 3
    path = "fronts." + seeded["priced_by"] + ".adaptive.cycles_saving_at_equal_f1"
    values = [r[path] for r in record["runs"] if r[path] is not None]
    stats = record["spread"][path]
    assert stats["n"] == len(values)
    if values:
        assert stats["mean"] == pytest.approx(sum(values) / len(values))
        assert stats["min"] == min(values) and stats["max"] == max(values)
    f1 = [r["small_f1_test"] for r in record["runs"]]  # always scored
    assert record["spread"]["small_f1_test"]["sd"] == pytest.approx(abs(f1[0] - f1[1]) / 2**0.5)
    # Each grid model's test F1 over the two seeds, as each seed's static grid reports it.
    noise = record["grid_f1_test"]
    grid = [
        {r["model"]: float(r["f1_test"]) for r in static_grid(out / f"seed-{k}")} for k in (0, 3)
    ]
    for label, stat in noise["per_model"].items():
        pair = [g[label] for g in grid]
        assert stat["sd"] == pytest.approx(abs(pair[0] - pair[1]) / 2**0.5, abs=1e-12)
    assert noise["max_sd"] == max(s["sd"] for s in noise["per_model"].values())
    # Against the seed-mean static front: each seed's modes.csv against the grid models' mean
    # test F1 over both seeds, recomputed here from the files the seeds wrote.
    counted = seeded["priced_by"]
    mean_f1 = [statistics.fmean(g[r["model"]] for g in grid) for r in static_grid(out / "seed-0")]
    cycles = [float(r["cycles"]) for r in static_grid(out / "seed-0")]
    for k, row in zip((0, 3), record["runs"], strict=True):
        with open(out / f"seed-{k}" / "modes.csv") as fh:
            modes = list(csv.DictReader(fh))
        f1 = np.array([float(m["f1"]) for m in modes])
        cost = np.array([float(m["cycles_avg"]) for m in modes])
        for name, fn in (
            ("max_gap_to_static_front", max_gap_to_static_front),
            ("cycles_saving_at_equal_f1", cycles_saving_at_equal_f1),
        ):
            want = fn(f1, cost, np.array(mean_f1), np.array(cycles))
            got = row[f"mean_grid.fronts.{counted}.adaptive.{name}"]
            assert (got is None and want != want) or got == pytest.approx(want, abs=1e-12)
    out_text = capsys.readouterr().out  # both spreads are printed as tables
    assert "against its own static front" in out_text
    assert "against the seed-mean static front" in out_text


def test_adaptive_seeds_must_be_distinct(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "o"
    assert main(["adaptive", str(scenario), "--out", str(out), "--seeds", "1", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fedhar adaptive: error: --seeds: expected distinct seeds, got [1, 1]"]
    assert not out.exists()


@pytest.mark.slow
def test_a_failing_seed_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scenario_file: Callable[[str], Path]
) -> None:
    scenario = scenario_file("  min_small_channels: 64\n")  # no grid model can host M_s
    assert main(["adaptive", str(scenario), "--out", str(tmp_path / "o"), "--seeds", "2"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("fedhar adaptive: error: seed 2: adaptive: no static Pareto model")
