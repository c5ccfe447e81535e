"""A battery too small for a day: the device of user 1 is cut off in round 1 and stays off
(no charger), so in round 2 the server chose it and it finished no job. The run records it as
a drop-out (``failed``, ``missed: battery``, its battery figures kept), counts it in the
report's rounds, and the first depletion of the fleet falls inside round 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedhar.cli import main
from fedhar.results.journal import read_rows

from .conftest import battery_scenario


def _scenario(directory: Path) -> Path:
    battery = {"capacities_mah": [0.005, 1.0, 1.0], "assign": "list"}
    return battery_scenario(
        directory, "dropout_battery", 3, {"rounds": 2, "aggregation": "fedavg"}, battery
    )


def test_a_device_cut_off_before_its_job_is_a_dropout(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["run", str(_scenario(tmp_path)), "--out", str(out), "--jobs", "1"]) == 0
    rows = {(r["user"], r["round"]): r for r in read_rows(out / "clients.jsonl")}
    dropped = rows[("1", 2)]
    assert dropped["status"] == "failed"
    assert dropped["missed"] == "battery"
    assert dropped["reason"].startswith("battery depleted")
    assert dropped["modes"] == {}
    assert dropped["battery"]["jobs"] == {"full": 0, "tl": 0}
    assert dropped["battery"]["dead_s"] == pytest.approx(86400.0)
    assert dropped["battery"]["alive"] is False
    for user in ("2", "3"):
        assert rows[(user, 2)]["status"] == "ok" and "missed" not in rows[(user, 2)]
    battery = json.loads((out / "report.json").read_text())["battery"]
    assert battery["by_round"]["2"]["dropouts"] == ["1"]
    assert battery["by_round"]["2"]["updates"] == ["2", "3"]
    assert 0 < battery["first_depletion_s"] < 86400.0
