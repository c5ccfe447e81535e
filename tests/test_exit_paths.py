"""The command line's other exits, in a real process: Ctrl-C exits 130 with one line and keeps
what was written; a closed pipe ends quietly; outputs are group-readable (0644 under umask 022)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
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
        "--jobs",
        "2",
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        preexec_fn=_as_from_a_shell,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the run has loaded its data and is pretraining
    assert first.startswith("quickstart:"), first
    # While its pretraining workers run (they ignore SIGINT from their start, fedhar.workers).
    _wait_for_workers(proc, 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300 if os.environ.get("CI") else 120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert lines == ["fedhar: interrupted; results written so far are kept"], err


def _as_from_a_shell() -> None:
    """Child set-up: SIGINT at its default, as an interactive shell starts a command (a shell
    without job control starts background jobs with SIGINT ignored, and so would this test
    suite's children be when the suite runs in one)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _workers_ignoring_sigint(pid: int) -> tuple[int, int]:
    """(child processes of ``pid``, those whose SIGINT is ignored), from /proc."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += (task / "children").read_text().split()
    ignoring = 0
    for child in children:
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except FileNotFoundError:
            continue
        mask = int(next(x for x in status.splitlines() if x.startswith("SigIgn:")).split()[1], 16)
        ignoring += bool(mask & (1 << (signal.SIGINT - 1)))
    return len(children), ignoring


def _wait_for_workers(proc: subprocess.Popen, n: int) -> None:
    """Waits (bounded) until ``n`` worker processes of ``proc`` run and ignore SIGINT."""
    for _ in range(600):
        children, ignoring = _workers_ignoring_sigint(proc.pid)
        if ignoring >= n or proc.poll() is not None:
            break
        time.sleep(0.1)
    assert ignoring >= n, f"{children} workers, {ignoring} ignoring SIGINT"


def test_ctrl_c_at_a_terminal_reaches_the_workers_and_still_gives_one_line(
    tmp_path: Path,
) -> None:
    """A terminal sends SIGINT to the whole process group, pretraining workers included."""
    env = {**os.environ, "FEDHAR_CACHE_DIR": str(tmp_path / "cache"), "CI": "true"}
    scenario = tmp_path / "s.yaml"
    text = (REPO / "scenarios" / "quickstart.yaml").read_text()
    scenario.write_text(text + "\n# folds pretrained in two workers\n")
    cmd = [*FEDHAR, "run", str(scenario), "--out", str(tmp_path / "o"), "--jobs", "2"]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        start_new_session=True,
        preexec_fn=_as_from_a_shell,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("quickstart")
        _wait_for_workers(proc, 2)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=300 if os.environ.get("CI") else 120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
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
