"""The in-process engine: Flower's :class:`~flwr.serverapp.Grid` without a SuperLink.

:class:`InProcessGrid` delivers each message straight to the real ``ClientApp`` of its
destination node, in push order, one client at a time, in this process. Every node keeps its
own :class:`~flwr.app.Context` (so its ``state`` lasts across rounds), node ids are pseudo-random
but drawn from a seed, and message ids are counted: two runs with the same seed exchange the
same messages and replies, byte for byte. A ``ClientApp`` that raises yields an error reply, as
on Flower's own engines.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np
from flwr.app import Context, Error, Message, RecordDict, UserConfig
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.supercore.run import Run

from fedhar.wire.flower_compat import (
    CLIENT_APP_RAISED_EXCEPTION,
    SUPERLINK_NODE_ID,
    make_run,
    set_message_id,
    set_task_identity,
)


class InProcessGrid(Grid):
    """A :class:`Grid` whose nodes are ``ClientApp`` calls in this process.

    Args:
        client_app: the ClientApp every node runs.
        node_configs: one node config per node (e.g. ``{"partition-id": 0, ...}``).
        run_config: the run config every node's context holds.
        run_id: id of the run.
        seed: seed of the node ids.
        replies_per_pull: how many pending messages one :meth:`pull_messages` call delivers;
            replies thus arrive a few at a time, as from a real SuperLink.
    """

    def __init__(
        self,
        client_app: ClientApp,
        node_configs: Sequence[UserConfig],
        run_config: UserConfig,
        run_id: int = 1,
        seed: int = 0,
        replies_per_pull: int = 1,
    ) -> None:
        self._client_app = client_app
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
        set_task_identity(self._run.run_id, node_id)
        try:
            reply = self._client_app(message, self._contexts[node_id])
        except Exception as exc:  # noqa: BLE001 - a crashed client becomes an error reply
            reason = f"{type(exc)}:<'{exc}'>"
            reply = Message(
                Error(code=CLIENT_APP_RAISED_EXCEPTION, reason=reason), reply_to=message
            )
        finally:
            set_task_identity(self._run.run_id, SUPERLINK_NODE_ID)
        self._counter += 1
        set_message_id(reply, self._counter)
        return reply


def run_inprocess(
    server_app: ServerApp,
    client_app: ClientApp,
    node_configs: Sequence[UserConfig],
    run_config: UserConfig,
    seed: int = 0,
) -> None:
    """Runs ``server_app`` against ``len(node_configs)`` in-process ``client_app`` nodes."""
    grid = InProcessGrid(client_app, node_configs, run_config, seed=seed)
    set_task_identity(grid.run.run_id, SUPERLINK_NODE_ID)
    context = Context(
        run_id=grid.run.run_id,
        node_id=SUPERLINK_NODE_ID,
        node_config={},
        state=RecordDict(),
        run_config=dict(run_config),
    )
    server_app(grid, context)
