"""The command line's other exits, in a real process: Ctrl-C exits 130 with one line and keeps
what was written; a closed pipe ends quietly; outputs are group-readable (0644 under umask 022)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

from fedhar.files import write_atomic

FEDHAR = [sys.executable, "-m", "fedhar.cli"]
REPO = Path(__file__).resolve().parents[1]


def test_ctrl_c_exits_130_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "FEDHAR_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [
        *FEDHAR,
        "run",
        str(REPO / "scenarios" / "quickstart.yaml"),
        "--out",
        str(tmp_path / "o"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the run has loaded its data and is pretraining
    assert first.startswith("quickstart:"), first
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert lines == ["fedhar: interrupted; results written so far are kept"], err


def test_closed_pipe_ends_quietly() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before fedhar writes a byte
    args = [*FEDHAR, "estimate", "--json"]
    proc = subprocess.run(args, stdout=write_end, stderr=subprocess.PIPE, text=True, check=False)
    os.close(write_end)
    assert proc.stderr == "", proc.stderr
    assert proc.returncode == 141


def test_atomic_writes_are_group_readable(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "a" / "report.json", "{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a" / "report.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o755
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["report.json"]
