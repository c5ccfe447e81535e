"""The processes of a run are found and stopped whoever their parent is, and carry no
telemetry: no Flower process needed, a detached grandchild stands for Flower's helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from fedhar.engines.cluster import Cluster, Transport
from fedhar.engines.processes import TOKEN_ENV, RunProcesses, alive, environment_of

# A parent that starts a detached grandchild in a new session (as flower-superlink starts
# flower-superexec), writes its pid, and sleeps.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                         start_new_session=True)
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(600)
"""


def _wait_for(path: Path, proc: subprocess.Popen) -> int:
    while not path.exists() or not path.read_text():
        assert proc.poll() is None, "the parent exited before starting its child"
        time.sleep(0.05)
    return int(path.read_text())


def test_a_detached_grandchild_whose_parent_was_killed_is_stopped(tmp_path: Path) -> None:
    run = RunProcesses()
    try:
        parent = run.start(
            [sys.executable, "-c", PARENT, str(tmp_path / "pid")], tmp_path / "p.log", os.environ
        )
        child = _wait_for(tmp_path / "pid", parent)
        assert os.getsid(child) != os.getsid(parent.pid)  # outside the session started here
        assert environment_of(child)[TOKEN_ENV] == run.token
        parent.kill()
        parent.wait()
        assert alive(child)  # orphaned: its parent is gone, it is not
        assert run.members() == [child]
    finally:
        run.stop(timeout_s=5)
    assert not alive(child)
    assert run.members() == []


def test_telemetry_is_off_unless_the_user_turns_it_on() -> None:
    probe = "import fedhar, flwr.supercore.telemetry as t; print(t.FLWR_TELEMETRY_ENABLED)"
    env = {k: v for k, v in os.environ.items() if k != "FLWR_TELEMETRY_ENABLED"}
    for setting, expected in ((None, "0"), ("1", "1"), ("0", "0")):
        child_env = env if setting is None else {**env, "FLWR_TELEMETRY_ENABLED": setting}
        done = subprocess.run(
            [sys.executable, "-c", probe], env=child_env, capture_output=True, text=True
        )
        assert done.stdout.strip() == expected, done.stderr
        cluster = Cluster(home=Path("/nonexistent"), superlink_port=1, transport=Transport())
        saved = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update(child_env)
            assert cluster.env()["FLWR_TELEMETRY_ENABLED"] == expected
        finally:
            os.environ.clear()
            os.environ.update(saved)
