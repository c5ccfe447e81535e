"""The in-process engine: Flower's :class:`~flwr.serverapp.Grid` without a SuperLink.

:class:`InProcessGrid` delivers each message straight to the real ``ClientApp`` of its
destination node. Every node keeps its own :class:`~flwr.app.Context` (so its ``state`` lasts
across rounds), node ids are pseudo-random but drawn from a seed, and message ids are counted:
two runs with the same seed exchange the same messages and replies, byte for byte. A
``ClientApp`` that raises yields an error reply, as on Flower's own engines.

With ``jobs`` > 1, node ``i`` runs in worker ``i % jobs``: worker 0 is this process, the others
are spawned processes that import the ClientApp from its :class:`ClientAppRef` and keep their
nodes' contexts. A message to a remote node is sent to its worker when it is pushed, so the
workers train while this process runs its own nodes; replies are still handed to the server
in push order and numbered then, so the server sees the same replies, in the same order, with
the same ids, whatever the number of workers.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import numpy as np
from flwr.app import Context, Error, Message, RecordDict, UserConfig
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.supercore.run import Run

from fedhar.engines.app import EngineError, load_component
from fedhar.wire.flower_compat import (
    CLIENT_APP_RAISED_EXCEPTION,
    SUPERLINK_NODE_ID,
    make_run,
    set_message_id,
    set_task_identity,
)
from fedhar.workers import spawn_context


def _reduce_memoryview(view: memoryview) -> tuple[type[bytes], tuple[bytes]]:
    return bytes, (view.tobytes(),)


# Flower's arrays may hold their bytes as memoryviews; between worker processes they travel as
# bytes (multiprocessing's own pickler only: nothing else in the process changes).
ForkingPickler.register(memoryview, _reduce_memoryview)


@dataclass(frozen=True)
class ClientAppRef:
    """Where a ClientApp lives, so that a worker process can import it.

    Attributes:
        reference: ``module:attribute`` of the ``ClientApp``.
        directory: the app directory the module is imported from.
    """

    reference: str
    directory: Path

    def load(self) -> ClientApp:
        """The ``ClientApp`` object (the module is imported from :attr:`directory`)."""
        module = load_component(self.reference, self.directory)
        return getattr(module, self.reference.split(":", 1)[1])


def call_client(client_app: ClientApp, message: Message, context: Context) -> Message:
    """Runs ``client_app`` on ``message`` as its destination node; an exception becomes an
    error reply (Flower's ``CLIENT_APP_RAISED_EXCEPTION``)."""
    run_id = message.metadata.run_id
    set_task_identity(run_id, message.metadata.dst_node_id)
    try:
        return client_app(message, context)
    except Exception as exc:  # noqa: BLE001 - a crashed client becomes an error reply
        reason = f"{type(exc)}:<'{exc}'>"
        return Message(Error(code=CLIENT_APP_RAISED_EXCEPTION, reason=reason), reply_to=message)
    finally:
        set_task_identity(run_id, SUPERLINK_NODE_ID)


def _serve(
    requests: Connection, replies: Connection, app: ClientAppRef, contexts: list[Context]
) -> None:
    """A worker process: runs the messages it receives on its nodes until it receives None."""
    client_app = app.load()
    by_node = {context.node_id: context for context in contexts}
    while (message := requests.recv()) is not None:
        reply = call_client(client_app, message, by_node[message.metadata.dst_node_id])
        replies.send((message.metadata.message_id, reply))
    replies.close()


class _Worker:
    """A spawned process hosting some nodes.

    Two threads of this process talk to it, so that the engine never waits on a pipe: one
    sends the queued messages, the other collects every reply as it comes. (Without them, a
    worker blocked on a full reply pipe and an engine blocked on a full message pipe would
    wait for each other.)
    """

    def __init__(self, app: ClientAppRef, contexts: list[Context]) -> None:
        spawn = spawn_context()
        requests_in, self._requests = spawn.Pipe(duplex=False)
        self._replies_in, replies_out = spawn.Pipe(duplex=False)
        self._process = spawn.Process(
            target=_serve, args=(requests_in, replies_out, app, contexts), daemon=True
        )
        self._process.start()
        requests_in.close()
        replies_out.close()
        self._outbox: queue.SimpleQueue[Message | None] = queue.SimpleQueue()
        self._replies: dict[str, Message] = {}
        self._ended = False
        self._arrived = threading.Condition()
        self._threads = [
            threading.Thread(target=self._send_loop, daemon=True),
            threading.Thread(target=self._receive_loop, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _send_loop(self) -> None:
        while True:
            message = self._outbox.get()
            try:
                self._requests.send(message)
            except OSError:
                return  # the worker is gone; the receiving side reports it
            if message is None:
                return

    def _receive_loop(self) -> None:
        while True:
            try:
                answered, reply = self._replies_in.recv()
            except (EOFError, OSError):
                with self._arrived:
                    self._ended = True
                    self._arrived.notify_all()
                return
            with self._arrived:
                self._replies[answered] = reply
                self._arrived.notify_all()

    def send(self, message: Message) -> None:
        """Queues ``message`` for the worker (returns at once)."""
        self._outbox.put(message)

    def reply(self, message_id: str) -> Message:
        """The reply to ``message_id``, waiting for it.

        Raises:
            EngineError: the worker process ended before replying.
        """
        with self._arrived:
            while message_id not in self._replies and not self._ended:
                self._arrived.wait()
            if message_id in self._replies:
                return self._replies.pop(message_id)
        self._process.join(5)
        raise EngineError(
            f"a client worker process (pid {self._process.pid}) ended with exit code "
            f"{self._process.exitcode} before replying"
        )

    def close(self) -> None:
        """Stops the process (asks, then terminates it if it does not end in 10 s)."""
        self._outbox.put(None)
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
        for thread in self._threads:
            thread.join(5)
        self._requests.close()
        self._replies_in.close()


class InProcessGrid(Grid):
    """A :class:`Grid` whose nodes are ``ClientApp`` calls in this process.

    Args:
        client_app: the ClientApp every node runs, or where to import it from; with
            ``jobs`` > 1 it must be a :class:`ClientAppRef`.
        node_configs: one node config per node (e.g. ``{"partition-id": 0, ...}``).
        run_config: the run config every node's context holds.
        run_id: id of the run.
        seed: seed of the node ids.
        replies_per_pull: how many pending messages one :meth:`pull_messages` call delivers;
            replies thus arrive a few at a time, as from a real SuperLink.
        jobs: processes running the nodes (this one included); call :meth:`close` after.
    """

    def __init__(
        self,
        client_app: ClientApp | ClientAppRef,
        node_configs: Sequence[UserConfig],
        run_config: UserConfig,
        run_id: int = 1,
        seed: int = 0,
        replies_per_pull: int = 1,
        jobs: int = 1,
    ) -> None:
        if jobs > 1 and not isinstance(client_app, ClientAppRef):
            raise TypeError("jobs > 1 needs a ClientAppRef, which worker processes can import")
        self._client_app = client_app.load() if isinstance(client_app, ClientAppRef) else client_app
        self._run: Run = make_run(run_id)
        rng = np.random.default_rng(seed)
        node_ids = [int(i) for i in rng.choice(2**62, size=len(node_configs), replace=False) + 1]
        self._contexts: dict[int, Context] = {
            node_id: Context(
                run_id=run_id,
                node_id=node_id,
                node_config=dict(config),
                state=RecordDict(),
                run_config=dict(run_config),
            )
            for node_id, config in zip(node_ids, node_configs, strict=True)
        }
        self._workers: list[_Worker] = []
        self._remote: dict[int, _Worker] = {}
        jobs = max(1, min(jobs, len(node_configs)))
        if jobs > 1 and isinstance(client_app, ClientAppRef):
            contexts = list(self._contexts.values())
            for w in range(1, jobs):
                worker = _Worker(client_app, contexts[w::jobs])
                self._workers.append(worker)
                self._remote.update({c.node_id: worker for c in contexts[w::jobs]})
        self._pending: deque[Message] = deque()
        self._replies: dict[str, Message] = {}
        self._counter = 0
        self._replies_per_pull = max(1, replies_per_pull)

    def set_run(self, run: Run) -> None:
        """Sets the run this grid serves."""
        self._run = run

    @property
    def run(self) -> Run:
        """The run this grid serves."""
        return self._run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        """A new instruction message (same as ``Message(content, dst_node_id, ...)``)."""
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        """Ids of every node, in a fixed order."""
        return list(self._contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Queues messages for their nodes; returns their ids.

        Raises:
            ValueError: for a message to a node this grid does not have.
        """
        ids: list[str] = []
        for message in messages:
            if message.metadata.dst_node_id not in self._contexts:
                raise ValueError(f"no node with id {message.metadata.dst_node_id}")
            self._counter += 1
            ids.append(set_message_id(message, self._counter))
            self._pending.append(message)
            worker = self._remote.get(message.metadata.dst_node_id)
            if worker is not None:
                worker.send(message)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """Delivers up to ``replies_per_pull`` of the wanted pending messages, then returns
        (and forgets) every reply available for ``message_ids``."""
        wanted = set(message_ids)
        delivered = 0
        for message in list(self._pending):
            if delivered >= self._replies_per_pull:
                break
            if message.metadata.message_id in wanted:
                self._pending.remove(message)
                self._replies[message.metadata.message_id] = self._deliver(message)
                delivered += 1
        return [self._replies.pop(i) for i in list(self._replies) if i in wanted]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Pushes ``messages`` and returns every reply (delivery is synchronous, so
        ``timeout`` never cuts it short)."""
        ids = set(self.push_messages(messages))
        replies: list[Message] = []
        while ids:
            got = list(self.pull_messages(ids))
            replies.extend(got)
            ids -= {reply.metadata.reply_to_message_id for reply in got}
        return replies

    def _deliver(self, message: Message) -> Message:
        node_id = message.metadata.dst_node_id
        worker = self._remote.get(node_id)
        if worker is not None:
            reply = worker.reply(message.metadata.message_id)
        else:
            reply = call_client(self._client_app, message, self._contexts[node_id])
        self._counter += 1
        set_message_id(reply, self._counter)
        return reply

    def close(self) -> None:
        """Stops the worker processes."""
        for worker in self._workers:
            worker.close()
        self._workers, self._remote = [], {}


def run_inprocess(
    server_app: ServerApp,
    client_app: ClientApp | ClientAppRef,
    node_configs: Sequence[UserConfig],
    run_config: UserConfig,
    seed: int = 0,
    jobs: int = 1,
) -> None:
    """Runs ``server_app`` against ``len(node_configs)`` in-process ``client_app`` nodes, in
    ``jobs`` processes (``client_app`` must then be a :class:`ClientAppRef`). A pull hands over
    up to 16 replies, so that a round of N clients takes N / 16 pulls, each of which the
    server answers with its waiting ids."""
    grid = InProcessGrid(
        client_app, node_configs, run_config, seed=seed, replies_per_pull=16, jobs=jobs
    )
    try:
        set_task_identity(grid.run.run_id, SUPERLINK_NODE_ID)
        context = Context(
            run_id=grid.run.run_id,
            node_id=SUPERLINK_NODE_ID,
            node_config={},
            state=RecordDict(),
            run_config=dict(run_config),
        )
        server_app(grid, context)
    finally:
        grid.close()
