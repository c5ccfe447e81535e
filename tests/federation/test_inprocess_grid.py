"""The in-process engine drives a real ClientApp through Flower's Grid interface, in this
process or in worker processes that give the same replies in the same order."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fedhar.engines.app import EngineError
from fedhar.engines.inprocess import ClientAppRef, InProcessGrid, run_inprocess
from fedhar.wire.flower_compat import SUPERLINK_NODE_ID, set_task_identity

echo = ClientApp()


@echo.query()
def _query(msg: Message, context: Context) -> Message:
    pid = int(context.node_config["partition-id"])
    if pid == 2:
        raise RuntimeError("partition 2 is broken")
    seen = context.state.metric_records.get("seen", MetricRecord({"n": 0}))
    context.state["seen"] = MetricRecord({"n": int(seen["n"]) + 1})
    content = RecordDict(
        {"out": ConfigRecord({"pid": pid, "seen": int(context.state["seen"]["n"])})}
    )
    return Message(content, reply_to=msg)


def _grid(seed: int = 0) -> InProcessGrid:
    configs = [{"partition-id": i, "num-partitions": 3} for i in range(3)]
    return InProcessGrid(echo, configs, {"k": "v"}, seed=seed)


def _ask(grid: Grid) -> list[tuple[int, object]]:
    msgs = [Message(RecordDict(), n, "query", group_id="1") for n in grid.get_node_ids()]
    out = []
    for reply in grid.send_and_receive(msgs):
        if reply.has_error():
            out.append((reply.metadata.src_node_id, reply.error.reason))
        else:
            rec = reply.content.config_records["out"]
            out.append((reply.metadata.src_node_id, (rec["pid"], rec["seen"])))
    return sorted(out, key=lambda t: str(t))


def test_replies_state_and_errors() -> None:
    grid = _grid()
    server = ServerApp()
    results: list[list[tuple[int, object]]] = []

    @server.main()
    def _main(g: Grid, context: Context) -> None:
        results.append(_ask(g))
        results.append(_ask(g))

    grid_nodes = list(grid.get_node_ids())
    assert len(set(grid_nodes)) == 3
    run_inprocess(server, echo, [{"partition-id": i, "num-partitions": 3} for i in range(3)], {})
    first, second = results
    assert [v for _, v in first if isinstance(v, tuple)] == [(0, 1), (1, 1)]
    assert [v for _, v in second if isinstance(v, tuple)] == [(0, 2), (1, 2)]
    errors = [v for _, v in first if isinstance(v, str)]
    assert len(errors) == 1 and "partition 2 is broken" in errors[0]


def test_same_seed_same_node_ids_and_message_ids() -> None:
    a, b = _grid(3), _grid(3)
    assert list(a.get_node_ids()) == list(b.get_node_ids())
    assert list(a.get_node_ids()) != list(_grid(4).get_node_ids())
    ids_a = a.push_messages([Message(RecordDict(), n, "query") for n in a.get_node_ids()])
    ids_b = b.push_messages([Message(RecordDict(), n, "query") for n in b.get_node_ids()])
    assert list(ids_a) == list(ids_b)


def test_replies_arrive_one_pull_at_a_time() -> None:
    grid = _grid()
    ids = list(grid.push_messages([Message(RecordDict(), n, "query") for n in grid.get_node_ids()]))
    assert len(list(grid.pull_messages(ids))) == 1
    assert len(list(grid.pull_messages(ids))) == 1


WORKER_APP = """
import os

from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

app = ClientApp()


@app.query()
def _query(msg: Message, context: Context) -> Message:
    pid = int(context.node_config["partition-id"])
    if msg.content.config_records["ask"]["die"] == pid:
        os._exit(3)
    if pid == 2:
        raise RuntimeError("partition 2 is broken")
    seen = context.state.metric_records.get("seen", MetricRecord({"n": 0}))
    context.state["seen"] = MetricRecord({"n": int(seen["n"]) + 1})
    out = ConfigRecord({"pid": pid, "seen": int(context.state["seen"]["n"]), "os": os.getpid()})
    return Message(RecordDict({"out": out}), reply_to=msg)
"""


def _exchange(grid: InProcessGrid, die: int = -1) -> list[tuple[str, str, object]]:
    """Two rounds of queries; each reply as (message id, reply-to id, content or error)."""
    out: list[tuple[str, str, object]] = []
    for _ in range(2):
        ask = RecordDict({"ask": ConfigRecord({"die": die})})
        msgs = [Message(ask, n, "query", group_id="1") for n in grid.get_node_ids()]
        for reply in grid.send_and_receive(msgs):
            body: object = (
                reply.error.reason
                if reply.has_error()
                else dict(reply.content.config_records["out"])
            )
            out.append((reply.metadata.message_id, reply.metadata.reply_to_message_id, body))
    return out


def test_worker_processes_give_the_same_replies_in_the_same_order(tmp_path: Path) -> None:
    (tmp_path / "worker_echo.py").write_text(WORKER_APP)
    app = ClientAppRef("worker_echo:app", tmp_path)
    configs = [{"partition-id": i, "num-partitions": 6} for i in range(6)]
    runs = {}
    for jobs in (1, 3):
        grid = InProcessGrid(app, configs, {}, seed=1, jobs=jobs)
        try:
            runs[jobs] = _exchange(grid)
        finally:
            grid.close()
    pids = {
        jobs: {body.pop("os") for _, _, body in run if isinstance(body, dict)}
        for jobs, run in runs.items()
    }
    assert runs[1] == runs[3]
    assert len(pids[1]) == 1 and len(pids[3]) == 3  # this process and two workers
    seen = [body["seen"] for _, _, body in runs[3] if isinstance(body, dict)]
    assert seen == [1] * 5 + [2] * 5  # node state lasts across rounds in the workers
    assert (
        sum(isinstance(body, str) and "partition 2 is broken" in body for _, _, body in runs[3])
        == 2
    )


def test_a_worker_that_dies_ends_the_run_with_its_exit_code(tmp_path: Path) -> None:
    (tmp_path / "worker_echo.py").write_text(WORKER_APP)
    configs = [{"partition-id": i, "num-partitions": 2} for i in range(2)]
    grid = InProcessGrid(ClientAppRef("worker_echo:app", tmp_path), configs, {}, jobs=2)
    try:
        with pytest.raises(EngineError, match="exit code 3"):
            _exchange(grid, die=1)
    finally:
        grid.close()


def test_worker_processes_need_an_importable_client_app() -> None:
    with pytest.raises(TypeError, match="ClientAppRef"):
        InProcessGrid(echo, [{"partition-id": 0}, {"partition-id": 1}], {}, jobs=2)


BULKY_APP = """
import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

app = ClientApp()


@app.query()
def _query(msg: Message, context: Context) -> Message:
    data = msg.content.array_records["in"]["x"].numpy()
    return Message(RecordDict({"out": ArrayRecord({"x": Array(data + 1)})}), reply_to=msg)
"""


def test_many_large_messages_to_a_worker_do_not_wedge_the_pipes(tmp_path: Path) -> None:
    """Six hundred 64 KiB messages queued for a worker before any reply is read: more than
    both pipes hold, so an engine writing while the worker waits to write would never end."""
    (tmp_path / "bulky_app.py").write_text(BULKY_APP)
    configs = [{"partition-id": i, "num-partitions": 2} for i in range(2)]
    grid = InProcessGrid(ClientAppRef("bulky_app:app", tmp_path), configs, {}, jobs=2)
    remote = list(grid.get_node_ids())[1]
    sums: list[float] = []

    def exchange() -> None:
        set_task_identity(grid.run.run_id, SUPERLINK_NODE_ID)  # Message() reads it
        x = np.zeros(16384, dtype=np.float32)
        msgs = [
            Message(RecordDict({"in": ArrayRecord({"x": Array(x + i)})}), remote, "query")
            for i in range(600)
        ]
        for reply in grid.send_and_receive(msgs):
            sums.append(float(reply.content.array_records["out"]["x"].numpy()[0]))

    thread = threading.Thread(target=exchange, daemon=True)
    try:
        thread.start()
        thread.join(180 if os.environ.get("CI") else 90)
        assert not thread.is_alive(), "the exchange with the worker did not finish"
        assert sums == [float(i + 1) for i in range(600)]
    finally:
        grid.close()
