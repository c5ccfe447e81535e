"""A battery run with utility selection, a deadline and late stragglers, killed with SIGKILL at
several points (between rounds, inside a round, before an aggregation) and resumed each time,
gives the same ``report.json`` and ``clients.jsonl``, byte for byte, as the run never
interrupted: every device's state (battery, job, model, last report) comes back from the run's
journal, not from a fresh node, on the in-process, Ray and deployment engines. The report's
rounds count what the journal logged."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fedhar.cli import main
from fedhar.engines.cluster import slow_factor
from fedhar.engines.runner import SERVER_STOPPED
from fedhar.results.journal import read_rows

from .conftest import battery_scenario

KILL_POINTS = ("round-1-end", "round-2-row-2", "round-2-aggregation")


def _scenario(directory: Path) -> Path:
    federation = {
        "rounds": 3,
        "aggregation": "fedavg",
        "selection": {"strategy": "utility", "k": 3},
        "deadline_s": 20.0,
        "stragglers": "late",
    }
    battery = {"capacities_mah": [0.3, 1.0], "profiles": ["stm32l496zg", "esp32"], "assign": "draw"}
    return battery_scenario(directory, "resume_battery", 4, federation, battery)


def _run(scenario: Path, out: Path, *flags: str) -> int:
    """The run in this process (the in-process engine, one pretraining job)."""
    return main(["run", str(scenario), "--out", str(out), "--jobs", "1", *flags])


def _killed(scenario: Path, out: Path, kill_at: str, *flags: str) -> int:
    """The run in a child process that kills itself with SIGKILL at ``kill_at``."""
    env = {**os.environ, "FEDHAR_KILL_AT": kill_at}
    cmd = [sys.executable, "-m", "fedhar.cli", "run", str(scenario), "--out", str(out)]
    cmd += ["--jobs", "1", *flags]
    return subprocess.run(cmd, env=env, capture_output=True, timeout=300, check=False).returncode


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


def test_killed_at_every_point_and_resumed_is_byte_identical(
    reference: tuple[Path, Path], tmp_path: Path
) -> None:
    """One run killed at each point in turn (between rounds, inside a round, before an
    aggregation), each time resumed until the next kill, then resumed to the end."""
    scenario, expected = reference
    out = tmp_path / "out"
    logged = 0
    for i, point in enumerate(KILL_POINTS):
        flags = ("--resume",) if i else ()
        assert _killed(scenario, out, point, *flags) == -signal.SIGKILL, point
        rows = read_rows(out / "clients.jsonl")
        assert len(rows) > logged, point
        logged = len(rows)
    assert not (out / "report.html").exists()
    assert _run(scenario, out, "--resume") == 0
    for name in ("report.json", "clients.jsonl"):
        assert (out / name).read_bytes() == (expected / name).read_bytes(), name


def test_the_reports_rounds_count_the_logged_rows(reference: tuple[Path, Path]) -> None:
    rows = read_rows(reference[1] / "clients.jsonl")
    report = json.loads((reference[1] / "report.json").read_text())
    by_round = report["battery"]["by_round"]
    assert sorted(by_round, key=int) == ["1", "2", "3"]
    joined: set[str] = set()
    for r in (1, 2, 3):
        mine = sorted((row for row in rows if row["round"] == r), key=lambda row: int(row["user"]))
        line = by_round[str(r)]
        chosen = [row["user"] for row in mine if row["status"] != "skipped"]
        joined |= set(chosen)
        assert line["participants"] == chosen
        assert len(chosen) == 3  # utility, k 3
        missed = {row["user"]: row.get("missed", "") for row in mine}
        assert line["not_chosen"] == [row["user"] for row in mine if row["status"] == "skipped"]
        assert line["stragglers"] == [u for u, why in missed.items() if why == "deadline"]
        assert line["dropouts"] == [u for u, why in missed.items() if why == "battery"]
        socs = [row["battery"]["soc_end"] for row in mine]
        assert line["mean_soc"] == pytest.approx(sum(socs) / len(socs), abs=1e-6)
        spent = sum(sum(row["battery"]["energy_j_by_load"].values()) for row in mine)
        assert sum(line["energy_j_by_load"].values()) == pytest.approx(spent, rel=1e-6)
        assert line["global_f1"]["n_users"] == 4
        unjoined = [u for u in ("1", "2", "3", "4") if u not in joined]
        assert list(line["unjoined_f1"]["users"]) == unjoined
        assert all(0.0 <= f1 <= 1.0 for f1 in line["global_f1"]["users"].values())


@pytest.mark.slow
def test_killed_inside_a_round_and_resumed_on_ray_is_byte_identical(
    reference: tuple[Path, Path], tmp_path: Path
) -> None:
    """Ray's nodes start fresh (no ``Context.state`` of the killed run): the devices' state
    still comes from the journal, and the report is the same to the byte."""
    scenario, expected = reference
    out = tmp_path / "out"
    assert _killed(scenario, out, "round-2-row-2") == -signal.SIGKILL
    assert _run(scenario, out, "--resume", "--engine", "ray") == 0
    assert (out / "report.json").read_bytes() == (expected / "report.json").read_bytes()
    # Ray's replies arrive in their own order: the journal holds the same rows, in that order.
    rows, want = read_rows(out / "clients.jsonl"), read_rows(expected / "clients.jsonl")
    assert sorted(rows, key=_key) == sorted(want, key=_key)


@pytest.mark.slow
def test_a_deployment_killed_inside_a_round_and_resumed_on_new_nodes_is_byte_identical(
    reference: tuple[Path, Path], tmp_path: Path
) -> None:
    """The deployment's ServerApp (its own ``flwr-serverapp`` process) crashes inside round 2.
    Flower's ``flwr run`` would exit 0 about a minute later; the run sees the ServerApp gone
    without its end mark and fails at once, with one line and a report that says so. The
    resume starts a new SuperLink and new SuperNodes, whose ``Context.state`` is empty, and
    gives the in-process run's report."""
    scenario, expected = reference
    out = tmp_path / "out"
    env = {**os.environ, "FEDHAR_KILL_AT": "round-2-row-2"}
    cmd = [sys.executable, "-m", "fedhar.cli", "run", str(scenario), "--out", str(out),
           "--jobs", "1", "--engine", "deployment"]  # fmt: skip
    crashed = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=900 * slow_factor(), check=False
    )
    assert crashed.returncode == 1
    lines = crashed.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: engine deployment: {SERVER_STOPPED} (Flower logs: ")
    failed = json.loads((out / "report.json").read_text())["federation"]
    assert failed["status"] == "failed" and failed["users_not_reached"]
    logged = [(r["round"], r["user"]) for r in read_rows(out / "clients.jsonl")]
    assert sum(1 for r, _ in logged if r == 2) == 2 and max(r for r, _ in logged) == 2
    assert _run(scenario, out, "--resume", "--engine", "deployment") == 0
    assert (out / "report.json").read_bytes() == (expected / "report.json").read_bytes()
    rows, want = read_rows(out / "clients.jsonl"), read_rows(expected / "clients.jsonl")
    assert sorted(rows, key=_key) == sorted(want, key=_key)


def _key(row: dict) -> tuple[int, str]:
    return row["round"], row["user"]
