"""Runs the federation (the same ServerApp and ClientApp) on one of three engines.

* ``inprocess`` (default): :class:`fedhar.engines.inprocess.InProcessGrid`; no servers,
  deterministic.
* ``ray``: Flower's simulation runtime (``flwr.simulation.run_simulation``), Ray actors.
* ``deployment``: a ``flower-superlink`` and one ``flower-supernode`` per user, started on
  loopback (:mod:`fedhar.engines.cluster`: insecure or over TLS), and ``flwr run`` of the app
  project (:mod:`fedhar.engines.app`: the repository) with this run's config. Runtime
  dependency installation is disabled, telemetry is off and ``FLWR_HOME`` is private to the
  run. The engine watches the SuperLink: when it dies the run fails
  (:class:`FederationFailed`) at once. Every process of the run is stopped at the end, also on
  failure and whichever process died first.

The in-process and Ray engines import the components named in the app project's
``[tool.flwr.app.components]``.

Every engine gets the same run config (:func:`run_config`); results land in ``OUT``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from flwr.app import UserConfig

from fedhar.engines.app import EngineError, load_component, load_project
from fedhar.engines.cluster import Cluster, Transport, local_cluster
from fedhar.engines.processes import command_of
from fedhar.results.journal import clear_ended, federation_ended

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
        FederationFailed: the ServerApp did not reach the federation's end (on any engine).
        EngineError: the engine failed to start or to finish.
    """
    clear_ended(str(config["out"]))
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
    if not federation_ended(str(config["out"])):
        raise FederationFailed(SERVER_STOPPED)


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


SERVER_STOPPED = "the ServerApp stopped before the federation's end"


class FederationFailed(EngineError):
    """The federation stopped before its end: its SuperLink died during the run, or its
    ServerApp stopped before the last round (a deployment's ``flwr run`` may still exit 0)."""


def submit(cluster: Cluster, config: UserConfig, timeout_s: float) -> None:
    """Runs the app on ``cluster`` with ``flwr run`` and waits until it ends, watching the
    SuperLink (the SuperNodes may come and go: the ServerApp records their users).

    Raises:
        FederationFailed: the SuperLink exited during the run, or the ServerApp before the
            federation's end (its end mark, :func:`~fedhar.results.journal.federation_ended`).
        EngineError: ``flwr run`` failed, or did not end within ``timeout_s``.
    """
    cluster.write_config("fedhar")
    app = load_project().directory
    overrides = " ".join(f"{key}={_toml_string(value)}" for key, value in config.items())
    run = cluster.start(
        "flwr-run",
        ["flwr", "run", str(app), "fedhar", "--stream", "--run-config", overrides],
    )
    link = cluster.named["superlink"]
    deadline = time.monotonic() + timeout_s
    server_seen = False
    while run.poll() is None and link.poll() is None:
        if time.monotonic() > deadline:
            raise EngineError(f"flwr run did not finish within {timeout_s:g} s")
        # Flower notices a dead ServerApp only after its heartbeat times out (about a minute)
        # and then lets ``flwr run`` exit 0; the end mark tells a crash from the end at once.
        server_up = any("flwr-serverapp" in command_of(pid) for pid in cluster.run.members())
        if server_seen and not server_up and not federation_ended(str(config["out"])):
            time.sleep(1.0)  # a ServerApp also stops when its SuperLink dies: name the cause
            if link.poll() is None:
                raise FederationFailed(SERVER_STOPPED)
        server_seen = server_seen or server_up
        time.sleep(0.5)
    if link.poll() is None and run.returncode != 0:
        link_gone = time.monotonic() + 5.0  # flwr run may see a dying SuperLink first
        while link.poll() is None and time.monotonic() < link_gone:
            time.sleep(0.1)
    if link.poll() is not None:
        raise FederationFailed(f"the SuperLink exited with code {link.returncode} during the run")
    text = cluster.log("flwr-run").read_text(errors="replace")
    if run.returncode != 0 or "Exit Code" in text and "ERROR" in text:
        raise EngineError(f"flwr run failed (exit {run.returncode}): {cluster.reason('flwr-run')}")


def run_deployment(
    config: UserConfig,
    n_nodes: int,
    timeout_s: float = 3600.0,
    workdir: Path | None = None,
    transport: Transport | None = None,
) -> None:
    """Starts a local SuperLink and ``n_nodes`` SuperNodes (over ``transport``; default
    insecure), runs ``flwr run``, stops every process of the run. When it fails, the Flower
    logs are kept in ``OUT/deployment-logs/`` and the error names them.

    Raises:
        FederationFailed: the SuperLink exited during the run.
        EngineError: a process failed to start, or ``flwr run`` failed or timed out.
    """
    with tempfile.TemporaryDirectory(prefix="fedhar-deploy-", dir=workdir) as tmp:
        home = Path(tmp) / "flwr-home"
        try:
            with local_cluster(n_nodes, home, transport=transport) as cluster:
                submit(cluster, config, timeout_s)
        except EngineError as exc:
            kept = Path(str(config["out"])) / "deployment-logs"
            kept.mkdir(parents=True, exist_ok=True)
            for log in home.glob("*.log"):
                shutil.copyfile(log, kept / log.name)
            exc.args = (f"{exc.args[0]} (Flower logs: {kept})",)
            raise


def _toml_string(value: object) -> str:
    """``value`` as a TOML basic string (``flwr run --run-config`` parses TOML)."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
