"""The same ServerApp and ClientApp on the three engines.

* contract: ``inprocess`` and ``ray`` give identical per-client results, and a two-round
  battery run gives the same per-client results (state of charge and energy included) on
  ``inprocess`` and ``ray``; on ``deployment``, ``test_resume_kill.py`` holds a battery run
  to the in-process one byte for byte, and ``test_deployment_faults.py`` a run over TLS;
* every process a local cluster started is stopped, also on failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fedhar.engines.cluster import Cluster, local_cluster
from fedhar.engines.runner import run_config, run_federation
from fedhar.results.journal import read_rows

from .conftest import write_scenario

SLOW_FACTOR = 3.0 if os.environ.get("CI") else 1.0


def _rows(out: Path) -> list[dict]:
    rows = read_rows(out / "clients.jsonl")
    return sorted(rows, key=lambda r: (r["round"], r["user"]))


@pytest.mark.slow
def test_inprocess_and_ray_give_identical_client_results(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, n_users=2)
    a, b = tmp_path / "inprocess", tmp_path / "ray"
    run_federation("inprocess", run_config(scenario, a, None, False), n_nodes=2)
    run_federation("ray", run_config(scenario, b, None, False), n_nodes=2)
    rows_a, rows_b = _rows(a), _rows(b)
    assert [r["status"] for r in rows_a] == ["ok", "ok"]
    assert rows_a == rows_b


def test_local_cluster_stops_every_process_on_failure(tmp_path: Path) -> None:
    started: list[Cluster] = []
    with pytest.raises(RuntimeError, match="boom"):
        with local_cluster(2, tmp_path / "home", startup_timeout_s=60 * SLOW_FACTOR) as c:
            started.append(c)
            raise RuntimeError("boom")
    (cluster,) = started
    assert len(cluster.processes) == 3
    assert all(p.poll() is not None for p in cluster.processes)
    assert cluster.run.members() == []


BATTERY = """\
battery:
  capacity_mah: 0.5
  round_s: 86400
  skip_below_soc: 0.5
  charging: {name: random, params: {probability: 0.5, min_hours: 0.5, max_hours: 2}}
  personalization: {name: always_full}
  threshold: {name: static, params: {th: 1.0}}
  cell: {model: coulomb, restart_soc: 0.05}
  payload_bytes: 30000
  update_bytes: {full: 30000, tl: 4000}
  window_s: 10
  modes:
    clock_hz: 205.1e6
    rows:
      - {th: 0.00, f1: 0.7788, p_easy: 1.00, cycles_avg: 219457, energy_uj_avg: 4.090}
      - {th: 1.00, f1: 0.8130, p_easy: 0.00, cycles_avg: 1078826, energy_uj_avg: 20.030}
    f1_reference: {none: 0.813, tl: 0.955, full: 0.969}
"""


@pytest.mark.slow
def test_battery_runs_give_the_same_client_results_on_every_engine(tmp_path: Path) -> None:
    """In-process and Ray here. The deployment engine's leg of this contract is
    ``test_resume_kill.py::test_a_deployment_killed_inside_a_round_and_resumed_on_new_nodes_is_byte_identical``:
    a battery run with selection and deadlines, run on the deployment engine from scratch
    and resumed on it, whose rows and report equal the in-process run's to the byte; one
    cluster there serves both checks, as CI's time is short."""
    scenario = write_scenario(tmp_path, n_users=2, rounds=2)
    scenario.write_text(scenario.read_text() + BATTERY)
    outs = {engine: tmp_path / engine for engine in ("inprocess", "ray")}
    for engine, out in outs.items():
        run_federation(engine, run_config(scenario, out, None, False), n_nodes=2)
    rows = {engine: _rows(out) for engine, out in outs.items()}
    assert [r["round"] for r in rows["inprocess"]] == [1, 1, 2, 2]
    assert [r["status"] for r in rows["inprocess"][:2]] == ["ok", "ok"]
    assert all(r["battery"]["soc_end"] < 1.0 for r in rows["inprocess"][:2])
    assert rows["ray"] == rows["inprocess"]
