"""A local Flower deployment: a SuperLink and SuperNodes on loopback, insecure or over TLS.

:func:`local_cluster` starts a ``flower-superlink`` and one ``flower-supernode`` per node, each
in a session of its own and marked as processes of the run (:mod:`fedhar.engines.processes`),
with a private ``FLWR_HOME``, runtime dependency installation disabled and Flower's telemetry
off (unless the caller's environment turns it on). It waits, bounded, until every SuperNode
has connected: Flower's SuperNode retries forever when it cannot reach the SuperLink (one
started ``--insecure`` against a TLS SuperLink does so silently), so a node that has not
connected in time, or that exited, fails the start with one line naming it and the reason its
log gives. On exit, also on error, every process of the run is stopped, whichever died first.

:class:`Transport` says how the nodes reach the SuperLink: insecure, or TLS with a CA, a
server certificate and its key; with TLS, SuperNode authentication can be turned on, and each
node's public key is then registered with the SuperLink (``flwr supernode register``) before
the node starts, so the SuperLink refuses any node whose key it was not given.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fedhar.engines.app import EngineError
from fedhar.engines.processes import RunProcesses

CONNECTED = re.compile(r"SuperNode ID: (\d+)")
"""The line a SuperNode logs once it is connected to the SuperLink, with its node id."""

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def slow_factor() -> float:
    """How much longer every wait of a local deployment lasts in CI (``CI`` set): 3."""
    return 3.0 if os.environ.get("CI") else 1.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Transport:
    """How SuperNodes and ``flwr run`` reach the SuperLink.

    Attributes:
        ca: the CA certificate (PEM) that signed the SuperLink's certificate; None: insecure.
        cert: the SuperLink's certificate (PEM; its SAN names 127.0.0.1 for a local cluster).
        key: the SuperLink certificate's private key (PEM).
        node_keys: with TLS, one OpenSSH private key per node (NIST EC curve), its public key
            beside it as ``<key>.pub``: SuperNode authentication is then on, and node ``i``
            authenticates with ``node_keys[i]``. Empty: no node authentication.
    """

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    node_keys: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        tls = (self.ca, self.cert, self.key)
        if any(p is None for p in tls) and any(p is not None for p in tls):
            raise ValueError("a TLS transport needs ca, cert and key")
        if self.node_keys and self.ca is None:
            raise ValueError("SuperNode authentication needs TLS (ca, cert and key)")

    @property
    def name(self) -> str:
        """``TLS`` or ``insecure``."""
        return "TLS" if self.ca is not None else "insecure"

    def superlink_args(self) -> list[str]:
        """The SuperLink's transport flags."""
        if self.ca is None:
            return ["--insecure"]
        args = ["--ssl-ca-certfile", str(self.ca), "--ssl-certfile", str(self.cert)]
        args += ["--ssl-keyfile", str(self.key)]
        return [*args, "--enable-supernode-auth"] if self.node_keys else args

    def supernode_args(self, index: int) -> list[str]:
        """Node ``index``'s transport flags."""
        if self.ca is None:
            return ["--insecure"]
        args = ["--root-certificates", str(self.ca)]
        if self.node_keys:
            args += ["--auth-supernode-private-key", str(self.node_keys[index])]
        return args

    def connection_toml(self) -> str:
        """The transport lines of a ``[superlink.<name>]`` table of ``config.toml``."""
        if self.ca is None:
            return "insecure = true\n"
        return f'root-certificates = "{self.ca}"\n'


@dataclass
class Cluster:
    """Processes of a local deployment, and where their logs go.

    Attributes:
        home: private ``FLWR_HOME``; every log is ``<home>/<name>.log``.
        superlink_port: port of the SuperLink's HTTP APIs (Fleet, Control, Runtime).
        transport: how the nodes reach the SuperLink.
        run: every process of the run.
        named: the process started under each name (``superlink``, ``supernode-<p>``, ...).
    """

    home: Path
    superlink_port: int
    transport: Transport = field(default_factory=Transport)
    run: RunProcesses = field(default_factory=RunProcesses)
    named: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def address(self) -> str:
        """The SuperLink's ``host:port``."""
        return f"127.0.0.1:{self.superlink_port}"

    @property
    def processes(self) -> list[subprocess.Popen]:
        """Every process started, in order."""
        return self.run.started

    def env(self) -> dict[str, str]:
        """Environment for Flower processes: private home, no dependency installation,
        this interpreter's ``bin`` first on ``PATH`` (Flower starts ``flower-superexec``),
        marked as the run's, telemetry off unless the caller's environment sets it."""
        env = dict(os.environ)
        env["FLWR_HOME"] = str(self.home)
        env["FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION"] = "1"
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        return self.run.env(env)

    def log(self, name: str) -> Path:
        """The log file of the process started as ``name``."""
        return self.home / f"{name}.log"

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        """Starts one Flower executable (from this interpreter's ``bin``) as ``name``."""
        exe = str(Path(sys.executable).parent / args[0])
        proc = self.run.start([exe, *args[1:]], self.log(name), self.env())
        self.named[name] = proc
        return proc

    def start_supernode(
        self, partition_id: int, n_nodes: int, name: str = "", transport: list[str] | None = None
    ) -> str:
        """Starts a SuperNode holding partition ``partition_id`` of ``n_nodes``, with the
        cluster's transport flags for that node (or ``transport``); returns its name
        (default ``supernode-<partition_id>``; a restart of a name gets a fresh log)."""
        name = name or f"supernode-{partition_id}"
        flags = self.transport.supernode_args(partition_id) if transport is None else transport
        self.start(
            name,
            ["flower-supernode", *flags, "--superlink", self.address, "--host", "127.0.0.1",
             "--port", str(free_port()), "--node-config",
             f"partition-id={partition_id} num-partitions={n_nodes}"],
        )  # fmt: skip
        return name

    def write_config(self, name: str) -> Path:
        """Writes ``FLWR_HOME/config.toml`` naming this cluster's SuperLink as ``name``."""
        path = self.home / "config.toml"
        path.write_text(
            f'[superlink]\ndefault = "{name}"\n\n[superlink.{name}]\n'
            f'address = "{self.address}"\n{self.transport.connection_toml()}'
        )
        return path

    def flwr(self, args: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        """Runs the ``flwr`` CLI against this cluster (its ``FLWR_HOME``), marked as the
        run's; output captured."""
        return subprocess.run(
            [str(Path(sys.executable).parent / "flwr"), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            start_new_session=True,
        )

    def node_id(self, name: str) -> int | None:
        """The node id the SuperNode ``name`` logged on connecting, if it has."""
        text = self.log(name).read_text(errors="replace") if self.log(name).exists() else ""
        found = CONNECTED.findall(text)
        return int(found[-1]) if found else None

    def wait_for_nodes(self, names: list[str], timeout_s: float) -> None:
        """Waits until every SuperNode in ``names`` has connected.

        Raises:
            EngineError: one exited first, or one has not connected within ``timeout_s``
                (one line naming it, the transport and its log's last words).
        """
        deadline = time.monotonic() + timeout_s
        waiting = list(names)
        while waiting:
            waiting = [n for n in waiting if self.node_id(n) is None]
            for name in waiting:
                proc = self.named[name]
                if proc.poll() is not None:
                    raise EngineError(
                        f"{name} exited with code {proc.returncode} before connecting to the "
                        f"{self.transport.name} SuperLink at {self.address}: {self.reason(name)}"
                    )
            if not waiting:
                return
            if time.monotonic() > deadline:
                name = waiting[0]
                raise EngineError(
                    f"{name} did not connect to the {self.transport.name} SuperLink at "
                    f"{self.address} within {timeout_s:g} s (its log ends: "
                    f"{self.reason(name)!r}); a SuperNode on another transport than the "
                    "SuperLink's (--insecure against TLS, or TLS against an insecure "
                    "SuperLink) retries forever"
                )
            time.sleep(0.2)

    def reason(self, name: str) -> str:
        """The error lines of ``name``'s log on one line, else its last line."""
        path = self.log(name)
        lines = [_ANSI.sub("", x).strip() for x in path.read_text(errors="replace").splitlines()]
        lines = [x for x in lines if x]
        if "ERROR" in " ".join(lines):
            first = next(i for i, x in enumerate(lines) if "ERROR" in x)
            picked = []
            for line in lines[first:]:
                if line.startswith("For more information") or line.startswith("INFO:"):
                    break
                picked.append(line)
            return "; ".join(picked)
        return lines[-1] if lines else "(empty log)"

    def register_node_keys(self, timeout_s: float) -> None:
        """Registers every node's public key with the SuperLink (node authentication).

        Raises:
            EngineError: ``flwr supernode register`` failed.
        """
        self.write_config("fedhar")
        for key in self.transport.node_keys:
            done = self.flwr(["supernode", "register", f"{key}.pub", "fedhar"], timeout_s)
            if done.returncode != 0:
                last = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
                raise EngineError(f"cannot register the SuperNode key {key}.pub: {last[0]}")

    def tail(self, lines: int = 15) -> str:
        """The last lines of every log, for diagnostics."""
        parts = []
        for name in self.named:
            log = self.log(name)
            text = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
            parts.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stops every process of the run, whichever died first."""
        self.run.stop(timeout_s)


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
def local_cluster(
    n_nodes: int,
    home: Path,
    startup_timeout_s: float | None = None,
    transport: Transport | None = None,
) -> Iterator[Cluster]:
    """A SuperLink and ``n_nodes`` connected SuperNodes on loopback, every process of the run
    stopped on exit (also on error). ``startup_timeout_s`` bounds each wait (default
    60 s, times :func:`slow_factor`).

    Raises:
        EngineError: the SuperLink did not start, a key could not be registered, or a
            SuperNode did not connect in time.
    """
    timeout_s = startup_timeout_s or 60.0 * slow_factor()
    home.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(home=home, superlink_port=free_port(), transport=transport or Transport())
    try:
        link = cluster.start(
            "superlink",
            ["flower-superlink", *cluster.transport.superlink_args(),
             "--disable-runtime-dependency-installation", "--host", "127.0.0.1",
             "--port", str(cluster.superlink_port)],
        )  # fmt: skip
        try:
            wait_for_port(cluster.superlink_port, link, timeout_s)
        except EngineError as exc:
            raise EngineError(
                f"the SuperLink did not start: {exc}; see {cluster.log('superlink')}"
            ) from None
        if cluster.transport.node_keys:
            cluster.register_node_keys(timeout_s)
        names = [cluster.start_supernode(p, n_nodes) for p in range(n_nodes)]
        cluster.wait_for_nodes(names, timeout_s)
        yield cluster
    finally:
        cluster.stop()
