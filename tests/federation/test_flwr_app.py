"""The repository is a Flower app: ``flwr run .`` runs a scenario on Flower's local
simulation, with fewer SuperNodes than users, and writes the same report as ``fedhar run``.
Every process the run started (the local SuperLink and its helpers) is stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedhar.cli import main
from fedhar.engines.app import load_project
from fedhar.enums import Status
from fedhar.results.record import ClientRecord

from .conftest import REPO, write_scenario

SLOW_FACTOR = 3.0 if os.environ.get("CI") else 1.0


def _processes_of(flwr_home: Path) -> list[int]:
    """Processes whose command line names ``flwr_home`` (the local SuperLink keeps its
    database there), and every descendant of theirs."""
    parent_of: dict[int, int] = {}
    roots = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        if state in ("Z", "X"):
            continue  # dead, not yet reaped: nothing runs any more
        parent_of[int(entry.name)] = int(parent)
        if str(flwr_home) in cmdline:
            roots.append(int(entry.name))
    found = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, parent in parent_of.items():
            if parent in found and pid not in found:
                found.add(pid)
                grew = True
    return sorted(found)


def _stop(pids: list[int]) -> None:
    """Kills ``pids`` and waits (up to 10 s) until none of them runs: a kill is delivered
    asynchronously."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10 * SLOW_FACTOR
    while time.monotonic() < deadline and any(_running(pid) for pid in pids):
        time.sleep(0.1)


def _running(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_the_app_project_names_the_apps_and_bundles_them() -> None:
    project = load_project(REPO)
    assert (project.serverapp, project.clientapp) == (
        "server.server_app:app",
        "clients.client_app:app",
    )
    assert project.config["report"] == "true"


@pytest.mark.slow
def test_flwr_run_dot_gives_the_report_of_fedhar_run(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, n_users=3)
    reference = tmp_path / "fedhar-run"
    assert main(["run", str(scenario), "--out", str(reference)]) == 0
    home, out = tmp_path / "flwr-home", tmp_path / "flwr-run"
    env = {
        **os.environ,
        "FLWR_HOME": str(home),
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    flwr = str(Path(sys.executable).parent / "flwr")
    overrides = f"scenario='{scenario}' out='{out}'"
    try:
        done = subprocess.run(
            [flwr, "run", ".", "--stream", "--run-config", overrides],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300 * SLOW_FACTOR,
            check=False,
        )
    finally:
        _stop(_processes_of(home))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "(2 simulated SuperNodes)" in done.stdout + done.stderr
    assert _processes_of(home) == []
    ours = json.loads((out / "report.json").read_text())
    theirs = json.loads((reference / "report.json").read_text())
    records = [ClientRecord.from_dict(c) for c in ours["clients"]]
    assert [r.user for r in records] == ["1", "2", "3"]
    assert all(r.status == Status.OK for r in records)
    assert ours == theirs
    assert (out / "report.html").stat().st_size > 0
