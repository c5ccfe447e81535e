"""Every process of one run, found and stopped whoever its parent is.

A :class:`RunProcesses` starts each program in a session of its own
(``start_new_session=True``) and marks its environment with the run's token
(:data:`TOKEN_ENV`). Flower's programs start helpers of their own: the SuperLink starts
``flower-superexec`` *detached*, in a new session, and that one starts ``flwr-serverapp``.
Neither the parent ids nor the sessions of the processes started here reach those, but the
environment does: a child inherits it. :meth:`RunProcesses.members` is thus every live process
of the run: those in the sessions started here, and every other process whose environment
carries the token (read from ``/proc/<pid>/environ``). :meth:`RunProcesses.stop` stops them
all, so a ServerApp whose SuperLink was killed is stopped too.

Every environment made here also turns Flower's telemetry off
(``FLWR_TELEMETRY_ENABLED=0``) unless the caller's environment sets it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

TOKEN_ENV = "FEDHAR_RUN_TOKEN"
"""Environment variable naming the run a process belongs to."""

TELEMETRY_ENV = "FLWR_TELEMETRY_ENABLED"


def quiet_environment(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with Flower's telemetry off, unless ``base`` sets :data:`TELEMETRY_ENV`."""
    env = dict(base)
    env.setdefault(TELEMETRY_ENV, "0")
    return env


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie counts as exited)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def environment_of(pid: int) -> dict[str, str]:
    """The environment ``pid`` started with (empty when it cannot be read)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def command_of(pid: int) -> str:
    """The command line of ``pid``, its arguments joined by spaces (empty when gone)."""
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def _pids() -> list[int]:
    return [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()]


class RunProcesses:
    """The processes of one run: started in their own sessions, marked by a token.

    Attributes:
        token: the run's token, in every started process's environment.
        started: every process started, in order.
    """

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex
        self.started: list[subprocess.Popen] = []

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` marked with this run's token, telemetry off unless ``base`` sets it."""
        return {**quiet_environment(base), TOKEN_ENV: self.token}

    def start(self, argv: list[str], log: Path, env: Mapping[str, str]) -> subprocess.Popen:
        """Starts ``argv`` in a new session with ``env`` (marked), output to ``log``."""
        with log.open("w") as fh:
            proc = subprocess.Popen(
                argv,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=self.env(env),
                start_new_session=True,
            )
        self.started.append(proc)
        return proc

    def members(self) -> list[int]:
        """Live pids of the run: in a session started here, or carrying the token."""
        sessions = {p.pid for p in self.started}
        found = []
        for pid in _pids():
            fields = _stat(pid)
            if fields is None or fields[0] == "Z" or pid == os.getpid():
                continue
            if int(fields[3]) in sessions or environment_of(pid).get(TOKEN_ENV) == self.token:
                found.append(pid)
        return found

    def stop(self, timeout_s: float = 10.0) -> None:
        """Asks every started process to stop (SIGINT, last started first), waits up to
        ``timeout_s``, then kills every member left and waits (bounded) until none is alive."""
        for proc in reversed(self.started):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for proc in reversed(self.started):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + timeout_s
        while (left := self.members()) and time.monotonic() < deadline:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for proc in self.started:
                if proc.poll() is None:
                    try:
                        proc.wait(timeout=0.1)
                    except subprocess.TimeoutExpired:
                        pass
            time.sleep(0.05)
        for proc in self.started:
            if proc.poll() is None:
                proc.wait()
