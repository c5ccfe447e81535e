"""The deployment engine under faults and over TLS, on loopback (each test starts a SuperLink
and SuperNodes; every process of the run is stopped, also when the test fails).

* a SuperLink killed mid-run: ``fedhar run`` exits 1 with one line, ``report.json`` marks the
  federation failed, and no process of the run survives (the ServerApp included);
* a SuperNode killed mid-round is recorded as failed with Flower's reason; restarted, it is
  mapped back to its user for the next round; ``--resume`` retries its failed round;
* TLS with SuperNode authentication gives the in-process engine's results; a SuperNode on the
  wrong transport, without the root certificate, or with an unregistered key fails the start
  within a bounded time, with one line naming it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from clients.client_app import app as client_app
from fedhar.engines.app import EngineError
from fedhar.engines.cluster import Transport, local_cluster, slow_factor
from fedhar.engines.inprocess import run_inprocess
from fedhar.engines.processes import TOKEN_ENV, alive, environment_of
from fedhar.engines.runner import node_configs, run_config, run_deployment, submit
from fedhar.results.journal import read_rows
from server.server_app import app as server_app

from .certs import make_certificates, make_node_key
from .conftest import write_scenario

pytestmark = pytest.mark.slow
TIMEOUT_S = 300 * slow_factor()


def _rows(out: Path) -> list[tuple[int, str, str]]:
    return [(r["round"], r["user"], r["status"]) for r in read_rows(out / "clients.jsonl")]


def _by_client(out: Path) -> list[dict]:
    """The rows of ``clients.jsonl`` by round and user: a deployment appends them in the
    order the replies arrive, which two processes may swap."""
    return sorted(read_rows(out / "clients.jsonl"), key=lambda r: (r["round"], r["user"]))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _children(parent: int) -> list[int]:
    pids = [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()]
    found = []
    for pid in pids:
        try:
            ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
        except (OSError, IndexError):
            continue
        if int(ppid) == parent:
            found.append(pid)
    return found


def _processes_with(token: str) -> list[int]:
    pids = [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()]
    return [p for p in pids if alive(p) and environment_of(p).get(TOKEN_ENV) == token]


def _wait(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_killed_superlink_fails_the_run_and_leaves_no_process(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, n_users=2, rounds=3)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "fedhar.cli", "run", str(scenario), "--out", str(out),
           "--engine", "deployment", "--jobs", "1"]  # fmt: skip
    fedhar = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    token = ""
    try:
        link = [0]

        def round_one_started() -> bool:
            links = [p for p in _children(fedhar.pid) if "flower-superlink" in _cmdline(p)]
            journal = out / "clients.jsonl"
            if not links or not journal.exists():
                return False
            link[0] = links[0]
            return bool(read_rows(journal))

        _wait(round_one_started, TIMEOUT_S, "the first client of round 1")
        token = environment_of(link[0])[TOKEN_ENV]
        members = _processes_with(token)
        names = " ".join(_cmdline(p) for p in members)
        assert "flwr-serverapp" in names and "flower-superexec" in names, names
        assert {environment_of(p).get("FLWR_TELEMETRY_ENABLED") for p in members} == {"0"}
        os.kill(link[0], signal.SIGKILL)
        _, stderr = fedhar.communicate(timeout=TIMEOUT_S)
    finally:
        if fedhar.poll() is None:
            fedhar.kill()
            fedhar.wait()
        for pid in _processes_with(token) if token else []:
            os.kill(pid, signal.SIGKILL)
    assert fedhar.returncode == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "the SuperLink exited with code -9 during the run" in lines[0]
    assert [p for p in members if alive(p)] == []
    assert _processes_with(token) == []
    report = json.loads((out / "report.json").read_text())
    federation = report["federation"]
    assert federation["status"] == "failed" and "SuperLink exited" in federation["reason"]
    assert federation["users_not_reached"] == ["1", "2"]  # round 3 reached no one
    for client in report["clients"]:  # each shows what the device did, or that it failed
        assert client["round"] >= 1 or client["status"] == "failed", client
    assert (out / "deployment-logs" / "superlink.log").exists()
    assert "Federation failed" in (out / "report.html").read_text()


def test_dead_supernode_is_recorded_its_restart_rejoins_and_resume_retries(
    tmp_path: Path,
) -> None:
    scenario = write_scenario(tmp_path, n_users=2, rounds=2)
    out = tmp_path / "out"
    errors: list[BaseException] = []
    with local_cluster(2, tmp_path / "home") as cluster:

        def federation() -> None:
            try:
                submit(cluster, run_config(scenario, out, None, False), TIMEOUT_S)
            except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
                errors.append(exc)

        thread = threading.Thread(target=federation)
        thread.start()
        try:
            victim = cluster.named["supernode-1"]  # partition 1: user "2"
            log = cluster.log("supernode-1")
            _wait(lambda: "Receiving: train message" in log.read_text(), TIMEOUT_S, "round 1")
            old_id = cluster.node_id("supernode-1")
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait()
            cluster.start_supernode(1, 2)
            cluster.wait_for_nodes(["supernode-1"], TIMEOUT_S)
            assert cluster.node_id("supernode-1") != old_id
        finally:
            thread.join(2 * TIMEOUT_S)
    assert not errors, errors
    rows = {(r["round"], r["user"]): r for r in read_rows(out / "clients.jsonl")}
    assert rows[(1, "2")]["status"] == "failed"
    assert "Node Unavailable" in rows[(1, "2")]["reason"]
    assert [rows[(1, "1")]["status"], rows[(2, "1")]["status"], rows[(2, "2")]["status"]] == [
        "ok", "ok", "ok",
    ]  # fmt: skip
    # --resume retries the failed round only (on the in-process engine: the server decides).
    before = len(read_rows(out / "clients.jsonl"))
    run_inprocess(server_app, client_app, node_configs(2), run_config(scenario, out, None, True))
    after = read_rows(out / "clients.jsonl")
    assert [(r["round"], r["user"], r["status"]) for r in after[before:]] == [(1, "2", "ok")]


def test_tls_with_node_authentication_gives_the_inprocess_results(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, n_users=2)
    certs = make_certificates(tmp_path / "tls")
    keys = tuple(make_node_key(tmp_path / "keys", f"node{i}")[0] for i in range(2))
    transport = Transport(certs.ca, certs.cert, certs.key, node_keys=keys)
    tls, local = tmp_path / "tls-run", tmp_path / "inprocess"
    run_deployment(run_config(scenario, tls, None, False), 2, TIMEOUT_S, tmp_path, transport)
    run_inprocess(server_app, client_app, node_configs(2), run_config(scenario, local, None, False))
    assert sorted(_rows(tls)) == [(1, "1", "ok"), (1, "2", "ok")]
    assert _by_client(tls) == _by_client(local)


def test_supernodes_that_cannot_connect_fail_within_a_bounded_time(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "tls")
    keys = (make_node_key(tmp_path / "keys", "node0")[0],)
    unknown, _ = make_node_key(tmp_path / "keys", "unknown")
    transport = Transport(certs.ca, certs.cert, certs.key, node_keys=keys)
    bound_s = 8 * slow_factor()
    with local_cluster(1, tmp_path / "home", transport=transport) as cluster:
        ca = ["--root-certificates", str(certs.ca)]
        cases = {
            "insecure": (["--insecure"], "retries forever"),
            "no-root-certificate": ([], "CERTIFICATE_VERIFY_FAILED"),
            "unknown-key": ([*ca, "--auth-supernode-private-key", str(unknown)], "activate"),
        }
        for name, (flags, expected) in cases.items():
            cluster.start_supernode(0, 2, name=name, transport=flags)
            with pytest.raises(EngineError) as caught:
                cluster.wait_for_nodes([name], bound_s)
            message = str(caught.value)
            assert "\n" not in message and name in message and expected in message, message
