"""Runs the federation (the same ServerApp and ClientApp) on one of three engines.

* ``inprocess`` (default): :class:`fedhar.engines.inprocess.InProcessGrid`; no servers,
  deterministic.
* ``ray``: Flower's simulation runtime (``flwr.simulation.run_simulation``), Ray actors.
* ``deployment``: a ``flower-superlink`` and one ``flower-supernode`` per user, started on
  loopback, and ``flwr run`` of the app project (:mod:`fedhar.engines.app`: the repository)
  with this run's config. Runtime dependency installation is disabled and ``FLWR_HOME`` is
  private to the run. Every process started here is stopped at the end, also on failure.

The in-process and Ray engines import the components named in the app project's
``[tool.flwr.app.components]``.

Every engine gets the same run config (:func:`run_config`); results land in ``OUT``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from flwr.app import UserConfig

from fedhar.engines.app import EngineError, load_component, load_project

ENGINES: tuple[str, ...] = ("inprocess", "ray", "deployment")


def run_config(
    scenario: str | Path, out: str | Path, data_dir: str | None, resume: bool
) -> UserConfig:
    """The run config every engine hands the ServerApp and the ClientApps (``fedhar run``
    writes the report itself, so the ServerApp does not)."""
    return {
        "scenario": str(Path(scenario).resolve()),
        "out": str(Path(out).resolve()),
        "data-dir": str(Path(data_dir).resolve()) if data_dir else "",
        "resume": "true" if resume else "false",
        "report": "false",
    }


def node_configs(n_nodes: int) -> list[UserConfig]:
    """One node config per user: ``partition-id`` ``0..n_nodes-1``."""
    return [{"partition-id": i, "num-partitions": n_nodes} for i in range(n_nodes)]


def run_federation(
    engine: str, config: UserConfig, n_nodes: int, seed: int = 0, jobs: int = 1
) -> None:
    """Runs the federation on ``engine`` with ``n_nodes`` nodes (one per user); the in-process
    engine runs the nodes in ``jobs`` processes.

    Raises:
        ValueError: an unknown engine.
        EngineError: the engine failed to start or to finish.
    """
    if engine == "inprocess":
        from fedhar.engines.inprocess import ClientAppRef, run_inprocess

        project = load_project()
        server = load_component(project.serverapp, project.directory)
        client = ClientAppRef(project.clientapp, project.directory)
        run_inprocess(server.app, client, node_configs(n_nodes), config, seed=seed, jobs=jobs)
    elif engine == "ray":
        run_ray(config, n_nodes)
    elif engine == "deployment":
        run_deployment(config, n_nodes)
    else:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


def run_ray(config: UserConfig, n_nodes: int, num_cpus: int | None = None) -> None:
    """Flower's Ray simulation: ``n_nodes`` virtual SuperNodes, one CPU per ClientApp."""
    from flwr.simulation import run_simulation

    project = load_project()
    server = load_component(project.serverapp, project.directory)
    client = load_component(project.clientapp, project.directory)
    cpus = num_cpus or os.cpu_count() or 1
    run_simulation(
        server_app=server.build_app(config),
        client_app=client.build_app(config),
        num_supernodes=n_nodes,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": cpus, "include_dashboard": False},
        },
    )
    summary = Path(str(config["out"])) / "clients.jsonl"
    if not summary.exists():
        raise EngineError(f"the Ray simulation ended without writing {summary}")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_flower_config(flwr_home: Path, name: str, address: str) -> Path:
    """Writes ``FLWR_HOME/config.toml`` naming one insecure SuperLink connection."""
    flwr_home.mkdir(parents=True, exist_ok=True)
    path = flwr_home / "config.toml"
    path.write_text(
        f'[superlink]\ndefault = "{name}"\n\n[superlink.{name}]\n'
        f'address = "{address}"\ninsecure = true\n'
    )
    return path


@dataclass
class Cluster:
    """Processes of a local deployment, and where their logs go.

    Attributes:
        home: private ``FLWR_HOME``.
        superlink_port: port of the SuperLink's HTTP APIs (Fleet, Control, Runtime).
        processes: every process started, SuperLink first.
        logs: log file of each process.
    """

    home: Path
    superlink_port: int
    processes: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """Environment for Flower processes: private home, no dependency installation,
        this interpreter's ``bin`` first on ``PATH`` (Flower starts ``flower-superexec``)."""
        env = dict(os.environ)
        env["FLWR_HOME"] = str(self.home)
        env["FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION"] = "1"
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        return env

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        """Starts one Flower executable (from this interpreter's ``bin``), logging to a file."""
        log = self.home / f"{name}.log"
        exe = str(Path(sys.executable).parent / args[0])
        with log.open("w") as fh:
            proc = subprocess.Popen(
                [exe, *args[1:]], stdout=fh, stderr=subprocess.STDOUT, env=self.env()
            )
        self.processes.append(proc)
        self.logs.append(log)
        return proc

    def tail(self, lines: int = 15) -> str:
        """The last lines of every log, for error messages."""
        parts = []
        for log in self.logs:
            text = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
            parts.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stops every process started (SuperNodes first), then the helpers they spawned."""
        pids = [p.pid for p in self.processes]
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for proc in reversed(self.processes):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        helpers = _children_by_parent_flag(pids)
        for pid in helpers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # SIGKILL is asynchronous: wait (bounded) until the helpers are gone, so that a caller
        # who looks right after stop() finds none (on a loaded machine this takes a moment).
        deadline = time.monotonic() + timeout_s
        while helpers and time.monotonic() < deadline:
            helpers = [pid for pid in helpers if _alive(pid)]
            if helpers:
                time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie counts as exited)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def _children_by_parent_flag(parent_pids: list[int]) -> list[int]:
    """Flower helpers (``flower-superexec``) started detached with ``--parent-pid P``."""
    found = []
    wanted = {str(p) for p in parent_pids}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv]
        for i, arg in enumerate(args[:-1]):
            if arg == "--parent-pid" and args[i + 1] in wanted:
                found.append(int(entry.name))
    return found


def wait_for_port(port: int, proc: subprocess.Popen, timeout_s: float) -> None:
    """Waits until ``127.0.0.1:port`` accepts connections.

    Raises:
        EngineError: the process exited or the port stayed closed for ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EngineError(f"process exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise EngineError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:g} s")


@contextmanager
def local_cluster(n_nodes: int, home: Path, startup_timeout_s: float = 60.0) -> Iterator[Cluster]:
    """A SuperLink and ``n_nodes`` SuperNodes on loopback, stopped on exit (also on error)."""
    cluster = Cluster(home=home, superlink_port=free_port())
    home.mkdir(parents=True, exist_ok=True)
    try:
        link = cluster.start(
            "superlink",
            [
                "flower-superlink",
                "--insecure",
                "--disable-runtime-dependency-installation",
                "--host",
                "127.0.0.1",
                "--port",
                str(cluster.superlink_port),
            ],
        )
        try:
            wait_for_port(cluster.superlink_port, link, startup_timeout_s)
        except EngineError as exc:
            raise EngineError(f"SuperLink did not start: {exc}\n{cluster.tail()}") from None
        for config in node_configs(n_nodes):
            pid = config["partition-id"]
            cluster.start(
                f"supernode-{pid}",
                [
                    "flower-supernode",
                    "--insecure",
                    "--superlink",
                    f"127.0.0.1:{cluster.superlink_port}",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(free_port()),
                    "--node-config",
                    f"partition-id={pid} num-partitions={n_nodes}",
                ],
            )
        yield cluster
    finally:
        cluster.stop()


def run_deployment(
    config: UserConfig, n_nodes: int, timeout_s: float = 3600.0, workdir: Path | None = None
) -> None:
    """Starts a local SuperLink and ``n_nodes`` SuperNodes, runs ``flwr run``, stops them.

    Raises:
        EngineError: a process failed to start, or ``flwr run`` failed or timed out.
    """
    with tempfile.TemporaryDirectory(prefix="fedhar-deploy-", dir=workdir) as tmp:
        root = Path(tmp)
        with local_cluster(n_nodes, root / "flwr-home") as cluster:
            write_flower_config(cluster.home, "fedhar", f"127.0.0.1:{cluster.superlink_port}")
            app = load_project().directory
            overrides = " ".join(f"{key}={_toml_string(value)}" for key, value in config.items())
            log = cluster.home / "flwr-run.log"
            with log.open("w") as fh:
                try:
                    done = subprocess.run(
                        [str(Path(sys.executable).parent / "flwr"), "run", str(app), "fedhar",
                         "--stream", "--run-config", overrides],
                        stdout=fh, stderr=subprocess.STDOUT, env=cluster.env(),
                        timeout=timeout_s, check=False,
                    )  # fmt: skip
                except subprocess.TimeoutExpired:
                    raise EngineError(
                        f"flwr run did not finish within {timeout_s:g} s\n{cluster.tail()}"
                    ) from None
            text = log.read_text(errors="replace")
            if done.returncode != 0 or "Exit Code" in text and "ERROR" in text:
                raise EngineError(f"flwr run failed (exit {done.returncode}):\n{text[-3000:]}")


def _toml_string(value: object) -> str:
    """``value`` as a TOML basic string (``flwr run --run-config`` parses TOML)."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
