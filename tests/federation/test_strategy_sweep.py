"""A scenario whose ``sweep`` lists selection strategies and deadlines runs once per pair into
its own folder and tabulates them: the table's counts are those of each run's report, and the
deadline that the STM32L496ZG's job misses makes stragglers that the run without it has not."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from fedhar.cli import main
from fedhar.results.strategies import COLUMNS, strategy_row

from .conftest import battery_scenario


def test_a_strategy_sweep_runs_each_cell_and_tabulates_it(tmp_path: Path) -> None:
    federation = {"rounds": 2, "aggregation": "fedavg", "selection": {"strategy": "all"}}
    battery = {"capacities_mah": [0.3, 1.0], "profiles": ["stm32l496zg", "esp32"]}
    path = battery_scenario(tmp_path, "sweep_battery", 3, federation, battery)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"] = {"selection": [{"strategy": "random", "k": 2}], "deadline_s": [None, 20.0]}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--jobs", "1"]) == 0
    rows = json.loads((out / "strategies.json").read_text())["rows"]
    assert [r["cell"] for r in rows] == ["random-k2-none", "random-k2-20s"]
    for row in rows:
        report = json.loads((out / row["cell"] / "report.json").read_text())
        assert report["header"]["scenario"] == f"sweep_battery-{row['cell']}"
        assert row == json.loads(json.dumps(strategy_row(row["cell"], report)))
        assert row["participations"] == 4  # k 2, 2 rounds
        assert row["global_f1"] is not None and row["fleet_energy_j"] > 0
    assert rows[0]["stragglers"] == 0 < rows[1]["stragglers"]
    table = (out / "strategies.md").read_text().splitlines()
    assert table[0] == "| " + " | ".join(title for _, title in COLUMNS) + " |"
    assert len(table) == 2 + len(rows)
