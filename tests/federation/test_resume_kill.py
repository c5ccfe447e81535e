"""A battery run with utility selection, a deadline and late stragglers, killed with SIGKILL at
several points (between rounds, inside a round, before an aggregation) and resumed, gives the
same ``report.json`` and ``clients.jsonl``, byte for byte, as the run never interrupted: every
device's state (battery, job, model, last report) comes back from the run's journal, not from
a fresh node."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fedhar.results.journal import read_rows

from .conftest import REPO

KILL_POINTS = ("round-1-end", "round-2-row-2", "round-2-aggregation")


def _scenario(directory: Path) -> Path:
    raw = yaml.safe_load((REPO / "scenarios" / "quickstart_battery.yaml").read_text())
    raw["name"] = "resume_battery"
    raw["data"]["options"]["n_users"] = 4
    raw["personalization"] = {"modes": ["none", "full"], "epochs": 2, "warmup_epochs": 1}
    raw["federation"] = {
        "rounds": 3,
        "aggregation": "fedavg",
        "selection": {"strategy": "utility", "k": 3},
        "deadline_s": 100.0,
        "stragglers": "late",
    }
    battery = raw["battery"]
    battery.pop("skip_below_soc")
    battery.update(
        charging={"name": "never"},
        capacities_mah=[0.3, 1.0],
        profiles=["stm32l496zg", "esp32"],
        assign="draw",
    )
    path = directory / "resume_battery.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _run(scenario: Path, out: Path, *flags: str, kill_at: str = "") -> int:
    env = dict(os.environ)
    env.pop("FEDHAR_KILL_AT", None)
    if kill_at:
        env["FEDHAR_KILL_AT"] = kill_at
    cmd = [sys.executable, "-m", "fedhar.cli", "run", str(scenario), "--out", str(out), *flags]
    return subprocess.run(cmd, env=env, capture_output=True, timeout=600, check=False).returncode


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("resume_kill")
    scenario = _scenario(root)
    out = root / "reference"
    assert _run(scenario, out) == 0
    return scenario, out


def test_the_reference_run_has_stragglers_skips_and_heterogeneous_devices(
    reference: tuple[Path, Path],
) -> None:
    rows = read_rows(reference[1] / "clients.jsonl")
    assert any(r.get("missed") == "deadline" for r in rows)
    assert any(r["status"] == "ok" and "missed" not in r for r in rows)
    assert any(r["reason"].startswith("not selected: strategy utility") for r in rows)
    assert {r["profile"] for r in rows} == {"stm32l496zg", "esp32"}
    assert {r["battery"]["capacity_mah"] for r in rows} == {0.3, 1.0}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_and_resumed_run_is_byte_identical(
    reference: tuple[Path, Path], tmp_path: Path, point: str
) -> None:
    scenario, expected = reference
    out = tmp_path / "out"
    assert _run(scenario, out, kill_at=point) == -signal.SIGKILL
    assert not (out / "report.html").exists()
    assert _run(scenario, out, "--resume") == 0
    for name in ("report.json", "clients.jsonl"):
        assert (out / name).read_bytes() == (expected / name).read_bytes(), name
