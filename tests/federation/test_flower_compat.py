"""Fails loudly when an upgrade of Flower moves an internal that ``fedhar.wire.flower_compat``
relies on (message ids, task identity, Run records, wire size)."""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, RecordDict

from fedhar.wire.flower_compat import (
    SUPERLINK_NODE_ID,
    make_run,
    set_message_id,
    set_task_identity,
    wire_bytes,
)


def test_task_identity_feeds_new_messages() -> None:
    set_task_identity(run_id=42, node_id=SUPERLINK_NODE_ID)
    msg = Message(RecordDict({"c": ConfigRecord({"a": 1})}), 7, "train", group_id="1")
    assert msg.metadata.run_id == 42
    assert msg.metadata.src_node_id == SUPERLINK_NODE_ID
    assert msg.metadata.dst_node_id == 7


def test_message_id_is_stamped_and_deterministic() -> None:
    set_task_identity(run_id=1, node_id=SUPERLINK_NODE_ID)
    a = Message(RecordDict(), 3, "query")
    b = Message(RecordDict(), 3, "query")
    assert set_message_id(a, 5) == set_message_id(b, 5) == a.metadata.message_id
    reply = Message(RecordDict(), reply_to=a)
    assert reply.metadata.reply_to_message_id == a.metadata.message_id
    assert reply.metadata.dst_node_id == SUPERLINK_NODE_ID


def test_run_record() -> None:
    run = make_run(9)
    assert run.run_id == 9


def test_wire_bytes_counts_every_nested_object() -> None:
    small = ArrayRecord({"a": Array(np.zeros(10, np.int8))})
    big = ArrayRecord({"a": Array(np.zeros(10_000, np.int8))})
    assert wire_bytes(big) - wire_bytes(small) >= 9_990
    assert wire_bytes(small) > small.count_bytes()
