"""Every use of a Flower internal (not in Flower's public API) sits in this one module.

The in-process engine drives the real ``ServerApp`` and ``ClientApp`` without a SuperLink, so
it has to do four things that Flower's runtimes do privately:

* stamp a message id on a pushed message (the SuperLink does it on receipt);
* set the process's task identity, which ``Message(...)`` reads for ``run_id``/``src_node_id``;
* build a :class:`Run` record for :meth:`Grid.set_run`;
* measure a record's size on the wire, as Flower serializes it (all nested inflatable objects).

``tests/federation/test_flower_compat.py`` checks each of them against the installed Flower, so
an upgrade that moves one of these fails there, loudly, and nowhere else.
"""

from __future__ import annotations

from uuid import UUID, uuid5

from flwr.app import Message
from flwr.common.constant import SUPERLINK_NODE_ID, ErrorCode
from flwr.supercore.inflatable.inflatable_object import InflatableObject, get_all_nested_objects
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

__all__ = [
    "CLIENT_APP_RAISED_EXCEPTION",
    "SUPERLINK_NODE_ID",
    "make_run",
    "set_message_id",
    "set_task_identity",
    "wire_bytes",
]

CLIENT_APP_RAISED_EXCEPTION: int = ErrorCode.CLIENT_APP_RAISED_EXCEPTION
"""Flower's error code for a ClientApp that raised; the in-process engine uses it as well."""

_ID_NAMESPACE = UUID("6f1c2a52-3c1e-4d6b-9a57-2f8e0c7d1b10")


def set_message_id(message: Message, counter: int) -> str:
    """Stamps a deterministic message id (a UUID derived from ``counter``) and returns it."""
    message_id = str(uuid5(_ID_NAMESPACE, str(counter)))
    message.metadata.__dict__["_message_id"] = message_id
    return message_id


def set_task_identity(run_id: int, node_id: int) -> None:
    """Tells ``Message(...)`` which run and node the current code runs as."""
    TaskIdentity.task_id = 1
    TaskIdentity.run_id = run_id
    TaskIdentity.node_id = node_id


def make_run(run_id: int) -> Run:
    """An empty :class:`Run` record with id ``run_id``."""
    return Run.create_empty(run_id)


def wire_bytes(obj: InflatableObject) -> int:
    """Bytes Flower puts on the wire for ``obj``: every nested object, serialized, summed."""
    return sum(len(child.deflate()) for child in get_all_nested_objects(obj).values())
