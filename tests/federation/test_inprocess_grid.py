"""The in-process engine drives a real ClientApp through Flower's Grid interface."""

from __future__ import annotations

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fedhar.engines.inprocess import InProcessGrid, run_inprocess

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
