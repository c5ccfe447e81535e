"""The personalization strategy: one message per client, every reply recorded as it is.

Each round, :meth:`PersonalizationStrategy.train_round` sends every client its own model (the
general model of that client's fold, compressed) and its own :class:`TrainConfig`, then
collects the replies as they arrive. A reply becomes a
:class:`~fedhar.results.record.ClientOutcome`, whose record's status is:

* ``ok``: the client's :class:`~fedhar.results.record.ClientRecord`, unchanged;
* ``declined``: the client refused (does not fit its SRAM, or its policy), with its reason;
* ``failed``: the client raised or never replied, with the reason;
* ``rejected``: the reply holds NaN or Inf (in its metrics or its update); the server keeps
  the reason and drops the numbers;
* ``skipped``: the server did not send the client the round, because the battery's state of
  charge it reported at the end of the previous round was low (:func:`low_battery`), or its
  selection strategy did not choose it (:mod:`server.selection`). A battery-powered client
  skipped still gets a message without a model: its device lives the round and reports.

Optionally, :class:`RoundUpdates` then runs FedAvg over the personalized updates (all layers, or
the shared feature layers only) to give every user a better starting model for the next
round. Aggregation works on updates (personalized minus received weights), weighted by the
clients' TR_i sizes, and leaves each user's own update out of that user's next model, so under
LOSO a user's general model still never saw that user's data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from fedhar.enums import Status
from fedhar.models.quantized import QNet
from fedhar.models.spec import ModelSpec
from fedhar.results.record import ClientOutcome, ClientRecord, from_flower, non_finite
from fedhar.wire.codec import PayloadError, payload_bytes
from fedhar.wire.payload import decode_payload, encode_payload
from fedhar.wire.protocol import (
    CONFIG,
    DECLINED,
    DEVICE,
    INFO,
    METRICS,
    MODEL,
    NODE,
    QUERY,
    TRAIN,
    UPDATE,
    NodeInfo,
    TrainConfig,
)

AGGREGATIONS: tuple[str, ...] = ("none", "fedavg", "fedavg_features")


@dataclass(frozen=True)
class ClientPlan:
    """What the server sends one client in one round.

    Attributes:
        node_id: Flower node id of the client.
        model: float32 ``state_dict`` of the model to send (the strategy's spec's keys and
            shapes).
        config: the client's instructions.
        net: for an integer network payload, the network whose bits and activation scales
            the sent model keeps (None for a float payload).
        device: the state of the client's wearable the server kept from its last reply
            (JSON text, ``""``: fresh); None without a battery.
        skip_reason: for a client that does not take part (``config.participate`` false),
            the reason its record gets (status ``skipped``).
    """

    node_id: int
    model: Mapping[str, np.ndarray]
    config: TrainConfig
    net: QNet | None = None
    device: str | None = None
    skip_reason: str = ""


class PersonalizationStrategy:
    """Sends per-client messages and turns replies into :class:`ClientOutcome` records.

    Args:
        spec: the spec of the float states sent and received
            (:func:`~fedhar.wire.payload.payload_spec` of the model spec).
        payload: a ``federation.payload`` format (see :mod:`fedhar.wire.payload`).
        round_timeout_s: seconds to wait for the replies of one round; a client that has not
            replied by then is recorded as failed.
        poll_interval_s: pause between two pulls that returned nothing, in seconds.
    """

    def __init__(
        self,
        spec: ModelSpec,
        payload: str = "int8",
        round_timeout_s: float = 3600.0,
        poll_interval_s: float = 0.2,
    ) -> None:
        self.spec = spec
        self.payload = payload
        self.round_timeout_s = round_timeout_s
        self.poll_interval_s = poll_interval_s

    def query(
        self, grid: Grid, node_ids: Sequence[int] | None = None
    ) -> tuple[dict[int, NodeInfo], dict[int, str]]:
        """Asks every node (or those of ``node_ids``) who it is.

        Returns:
            node id → :class:`NodeInfo` of the nodes that answered, and node id → reason of
            those that failed.

        Raises:
            RuntimeError: when two nodes claim the same user.
        """
        node_ids = sorted(grid.get_node_ids() if node_ids is None else node_ids)
        messages = [
            Message(RecordDict({CONFIG: ConfigRecord({})}), node_id, QUERY, group_id="query")
            for node_id in node_ids
        ]
        infos: dict[int, NodeInfo] = {}
        failures: dict[int, str] = {}
        by_id = dict(zip(self._push(grid, messages), node_ids, strict=True))
        replies: dict[str, Message | None] = {}
        self._collect(grid, list(by_id), replies.__setitem__)
        for message_id, reply in replies.items():
            node_id = by_id[message_id]
            if reply is None:
                failures[node_id] = f"no reply within {self.round_timeout_s:g} s"
            elif reply.has_error():
                failures[node_id] = _error_text(reply)
            else:
                infos[node_id] = NodeInfo.from_record(reply.content.config_records[NODE])
        owners: dict[str, int] = {}
        for node_id, info in sorted(infos.items()):
            for user in info.users:
                if user in owners:
                    raise RuntimeError(
                        f"nodes {owners[user]} and {node_id} both hold user {user!r}; give "
                        "each node its own partition-id"
                    )
                owners[user] = node_id
        return infos, failures

    def rejoin(self, grid: Grid, node_of: Mapping[str, int]) -> dict[str, int]:
        """``node_of`` (user → node id) with the users of the nodes that joined since: each
        node the grid lists and ``node_of`` does not is asked who it is, and its users are
        mapped to it. A SuperNode restarted after a crash comes back under a new node id, and
        so gets its users back; its old id is no longer used.

        Raises:
            RuntimeError: when two of the new nodes claim the same user.
        """
        known = set(node_of.values())
        new = [n for n in grid.get_node_ids() if n not in known]
        if not new:
            return dict(node_of)
        infos, _ = self.query(grid, new)
        return {**node_of, **{u: node_id for node_id, info in infos.items() for u in info.users}}

    def train_round(
        self,
        grid: Grid,
        round_number: int,
        plans: Sequence[ClientPlan],
        on_outcome: Callable[[ClientOutcome], None],
    ) -> list[ClientRecord]:
        """Sends every plan, hands each reply's outcome to ``on_outcome`` as it arrives, and
        returns the records in the order of ``plans``. Only the records are kept: the
        outcome's weights live as long as ``on_outcome`` keeps them."""
        messages, sent = [], []
        for plan in plans:
            content = RecordDict()
            record = ArrayRecord()
            if plan.config.participate:
                record = encode_payload(plan.model, self.spec, self.payload, plan.net)
                content[MODEL] = record
            config = replace(plan.config, payload_bytes=payload_bytes(record))
            content[CONFIG] = config.to_record()
            if plan.device is not None:
                content[DEVICE] = ConfigRecord({"state": plan.device})
            messages.append(Message(content, plan.node_id, TRAIN, group_id=str(round_number)))
            sent.append(record)
        ids = self._push(grid, messages)
        del messages  # the grid holds what it has not delivered yet
        plan_of = dict(zip(ids, zip(plans, sent, strict=True), strict=True))
        del sent
        records: dict[str, ClientRecord] = {}

        def handle(message_id: str, reply: Message | None) -> None:
            plan, record = plan_of.pop(message_id)
            outcome = self._outcome(round_number, plan, record, reply)
            records[message_id] = outcome.record
            on_outcome(outcome)

        self._collect(grid, ids, handle)
        return [records[i] for i in ids]

    def _outcome(
        self, round_number: int, plan: ClientPlan, sent: ArrayRecord, reply: Message | None
    ) -> ClientOutcome:
        """The outcome of ``reply`` to ``plan``, whose model went out encoded as ``sent``."""
        config = plan.config

        def failed(status: Status, reason: str) -> ClientOutcome:
            return ClientOutcome(not_ok(config.user, config.fold, round_number, status, reason))

        if reply is None:
            return failed(Status.FAILED, f"no reply within {self.round_timeout_s:g} s")
        if reply.has_error():
            status = Status.DECLINED if reply.error.code == DECLINED else Status.FAILED
            return failed(status, _error_text(reply))
        content = reply.content
        metrics = content.metric_records[METRICS]
        bad = non_finite(metrics)
        if bad:
            return failed(Status.REJECTED, f"non-finite metrics: {', '.join(bad)}")
        record = from_flower(metrics, content.config_records[INFO])
        if record.user != config.user or record.round != round_number:
            reason = (
                f"reply names user {record.user!r} round {record.round}, the message was for "
                f"{config.user!r} round {round_number}"
            )
            return failed(Status.REJECTED, reason)
        device = content.config_records.get(DEVICE)
        state = None if device is None else str(device["state"])
        if not config.participate:
            record = replace(record, status=Status.SKIPPED, reason=plan.skip_reason)
            return ClientOutcome(record, device=state)
        if UPDATE not in content.array_records:
            return ClientOutcome(record, device=state)
        try:
            update = decode_payload(content.array_records[UPDATE], self.spec)
        except PayloadError as exc:
            return failed(Status.REJECTED, f"undecodable update: {exc}")
        bad = [k for k, v in update.items() if not np.isfinite(v).all()]
        if bad:
            count = sum(int((~np.isfinite(update[k])).sum()) for k in bad)
            reason = f"non-finite update: {count} NaN/Inf values in {', '.join(bad)}"
            return failed(Status.REJECTED, reason)
        received = decode_payload(sent, self.spec)
        return ClientOutcome(record, received=received, update=update, device=state)

    def _push(self, grid: Grid, messages: list[Message]) -> list[str]:
        ids = list(grid.push_messages(messages))
        if len(ids) != len(messages):
            raise RuntimeError(f"the grid accepted {len(ids)} of {len(messages)} messages")
        return ids

    def _collect(
        self,
        grid: Grid,
        ids: list[str],
        handle: Callable[[str, Message | None], None],
    ) -> None:
        """Pulls replies until every message has one or the round times out, handing each to
        ``handle`` (``None``: no reply in time) as it comes; nothing else keeps them."""
        waiting = set(ids)
        position = {message_id: i for i, message_id in enumerate(ids)}
        deadline = time.monotonic() + self.round_timeout_s
        while waiting and time.monotonic() < deadline:
            got = list(grid.pull_messages([i for i in ids if i in waiting]))
            for reply in sorted(got, key=lambda m: position[m.metadata.reply_to_message_id]):
                message_id = reply.metadata.reply_to_message_id
                if message_id in waiting:
                    waiting.discard(message_id)
                    handle(message_id, reply)
            if not got:
                time.sleep(self.poll_interval_s)
        for message_id in ids:
            if message_id in waiting:
                handle(message_id, None)


def not_ok(user: str, fold: str, round_number: int, status: Status, reason: str) -> ClientRecord:
    """The record of a client that gave no figures in ``round_number``."""
    return ClientRecord(user, fold, 0, 0, status=status, reason=reason, round=round_number)


def low_battery(
    round_number: int, previous: ClientRecord | None, skip_below_soc: float | None
) -> str:
    """Why the server skips a client in ``round_number``: the state of charge (fraction) its
    device reported in the round just before is below ``skip_below_soc``; ``""`` to send it
    the round. A client that did not report in the previous round (skipped, declined, failed,
    or no battery) is sent the round, so that a skipped client reports again."""
    if skip_below_soc is None or previous is None or previous.battery is None:
        return ""
    soc = previous.battery.soc_end
    if previous.round != round_number - 1 or soc >= skip_below_soc:
        return ""
    return (
        f"low battery: state of charge {soc:.3f} at the end of round {previous.round} is below "
        f"battery.skip_below_soc {skip_below_soc:g}"
    )


class RoundUpdates:
    """One round's accepted updates, kept as deltas of the aggregated keys only.

    :meth:`add` takes each outcome as it is logged, so a round holds one float32 delta of the
    aggregated layers per client instead of the received and personalized models (10,000
    clients are 0.4 GB per full model copy). :meth:`apply` then runs the leave-one-out FedAvg.

    Args:
        keys: ``state_dict`` keys to aggregate (all, or the feature layers').
    """

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = list(keys)
        self._taken: dict[str, list[tuple[float, dict[str, np.ndarray]]]] = {}

    def add(self, outcome: ClientOutcome) -> None:
        """Keeps ``Δ = update − received`` (float32) of an ``ok`` outcome with an update, with
        its weight ``n`` (the client's TR size); other outcomes take no part. A user may give
        two (its own late one of the round before, and this round's): both count."""
        o = outcome
        if o.record.status != Status.OK or o.update is None or o.received is None:
            return
        delta = {k: o.update[k] - o.received[k] for k in self.keys}
        self._taken.setdefault(o.record.user, []).append((float(o.record.n_train), delta))

    def apply(
        self, models: Mapping[str, Mapping[str, np.ndarray]]
    ) -> dict[str, dict[str, np.ndarray]]:
        """FedAvg of the kept updates, leaving each user's own update out.

        For every user ``i`` in ``models``: ``new_i[k] = models[i][k] + Σ_{j≠i} n_j Δ_j[k] /
        Σ_{j≠i} n_j`` for the aggregated keys; the other keys are the same arrays as in
        ``models[i]``. A user with no other update keeps its model. The sums run over the
        users in the order of ``models`` (in float64), whatever order the replies came in, so
        a resumed run aggregates to the same bytes. The kept deltas are used up: each is
        freed once its user's model is made.

        Args:
            models: user → float32 ``state_dict`` the server holds for that user.
        """
        taken = [(u, t) for u in models for t in self._taken.get(u, [])]
        total_n = sum(n for _, (n, _) in taken)
        total: dict[str, np.ndarray] = {}
        for _, (n, delta) in taken:
            for k in self.keys:
                total[k] = total.get(k, 0.0) + n * delta[k].astype(np.float64)
        out: dict[str, dict[str, np.ndarray]] = {}
        del taken
        for user, model in models.items():
            own = self._taken.pop(user, [])
            n_i = sum(n for n, _ in own)
            others = total_n - n_i
            new = dict(model)
            if others > 0:
                for k in self.keys:
                    summed = total[k] - sum((n * d[k] for n, d in own), 0.0)
                    new[k] = (np.asarray(model[k], dtype=np.float32) + summed / others).astype(
                        np.float32
                    )
            out[user] = new
        return out


def _error_text(reply: Message) -> str:
    return reply.error.reason or f"error code {reply.error.code}"
