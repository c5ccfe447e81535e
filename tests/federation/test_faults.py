"""Faults: a client that raises, a NaN update, a model too big for the device. Each is
recorded with its reason and the run completes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from flwr.app import Array, Context, Message
from flwr.clientapp import ClientApp

from clients.client_app import app as real_client_app
from fedhar.engines.inprocess import run_inprocess
from fedhar.engines.runner import node_configs, run_config
from fedhar.results.journal import read_rows
from fedhar.wire.codec import RAW_STYPE
from fedhar.wire.protocol import UPDATE
from server.server_app import app as server_app

from .conftest import write_scenario


def _rows(out: Path) -> dict[str, dict]:
    return {r["user"]: r for r in read_rows(out / "clients.jsonl")}


def _faulty(fail_partition: int, message: str) -> ClientApp:
    """The real ClientApp, except that the node of ``fail_partition`` raises ``message`` in
    ``train``."""
    faulty = ClientApp()

    @faulty.query()
    def _query(msg: Message, context: Context) -> Message:
        return real_client_app(msg, context)

    @faulty.train()
    def _train(msg: Message, context: Context) -> Message:
        if int(context.node_config["partition-id"]) == fail_partition:
            raise RuntimeError(message)
        return real_client_app(msg, context)

    return faulty


def test_raising_client_is_reported_and_the_run_completes(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path)
    faulty = _faulty(1, "sensor bus fault on the device")
    out = tmp_path / "out"
    run_inprocess(server_app, faulty, node_configs(3), run_config(scenario, out, None, False))
    rows = _rows(out)
    assert [rows[u]["status"] for u in ("1", "2", "3")] == ["ok", "failed", "ok"]
    assert "sensor bus fault on the device" in rows["2"]["reason"]
    assert rows["1"]["modes"].keys() == {"none", "tl", "full"}


def test_nan_update_is_rejected_and_recorded(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, modes="[none, full]", rounds=2, aggregation="fedavg")
    corrupt = ClientApp()

    @corrupt.query()
    def _query(msg: Message, context: Context) -> Message:
        return real_client_app(msg, context)

    @corrupt.train()
    def _train(msg: Message, context: Context) -> Message:
        reply = real_client_app(msg, context)
        if int(context.node_config["partition-id"]) == 0:
            update = reply.content.array_records[UPDATE]
            scale = np.frombuffer(update["scale"].data, dtype="<f4").copy()
            scale[:3] = np.nan
            update["scale"] = Array(
                dtype="float32", shape=scale.shape, stype=RAW_STYPE, data=scale.tobytes()
            )
        return reply

    out = tmp_path / "out"
    run_inprocess(server_app, corrupt, node_configs(3), run_config(scenario, out, None, False))
    rows = read_rows(out / "clients.jsonl")
    assert [(r["round"], r["user"], r["status"]) for r in rows] == [
        (1, "1", "rejected"), (1, "2", "ok"), (1, "3", "ok"),
        (2, "1", "rejected"), (2, "2", "ok"), (2, "3", "ok"),
    ]  # fmt: skip
    assert "non-finite update" in rows[0]["reason"] and "NaN/Inf" in rows[0]["reason"]
    assert "f1" not in rows[0]


def test_diverging_training_is_stopped_by_the_device(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, modes="[none, full]", lr=1e30)
    out = tmp_path / "out"
    run_inprocess(
        server_app, real_client_app, node_configs(3), run_config(scenario, out, None, False)
    )
    rows = _rows(out)
    for row in rows.values():
        assert row["status"] == "failed"
        assert "FT_ERR_NUMERIC" in row["reason"]


def test_model_too_big_for_the_device_is_declined_with_bytes(
    tmp_path: Path, small_sram_profile: Path
) -> None:
    scenario = write_scenario(tmp_path)
    out = tmp_path / "out"
    nodes = node_configs(3)
    nodes[0] = {**nodes[0], "mcu-profile": str(small_sram_profile)}
    run_inprocess(server_app, real_client_app, nodes, run_config(scenario, out, None, False))
    rows = _rows(out)
    assert rows["1"]["status"] == "declined"
    reason = rows["1"]["reason"]
    assert "does not fit" in reason and "device small_sram has 49152 bytes" in reason
    needed = int(reason.split(" needs ")[1].split(" bytes")[0])
    assert needed > 49152
    assert rows["2"]["status"] == rows["3"]["status"] == "ok"


def test_resume_retries_a_failed_user_and_keeps_the_others(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path)
    out = tmp_path / "out"
    run_inprocess(
        server_app,
        _faulty(1, "radio link lost"),
        node_configs(3),
        run_config(scenario, out, None, False),
    )
    first = read_rows(out / "clients.jsonl")
    assert [r["status"] for r in first] == ["ok", "failed", "ok"]
    run_inprocess(
        server_app, real_client_app, node_configs(3), run_config(scenario, out, None, True)
    )
    rows = read_rows(out / "clients.jsonl")
    assert rows[:3] == first  # the others were not run again
    assert [(r["round"], r["user"], r["status"]) for r in rows[3:]] == [(1, "2", "ok")]
    assert _rows(out)["2"]["modes"].keys() == {"none", "tl", "full"}


def test_resume_keeps_a_declined_user(tmp_path: Path, small_sram_profile: Path) -> None:
    scenario = write_scenario(tmp_path)
    out = tmp_path / "out"
    nodes = node_configs(3)
    nodes[0] = {**nodes[0], "mcu-profile": str(small_sram_profile)}
    for resume in (False, True):
        run_inprocess(server_app, real_client_app, nodes, run_config(scenario, out, None, resume))
    rows = read_rows(out / "clients.jsonl")
    assert [(r["user"], r["status"]) for r in rows] == [("1", "declined"), ("2", "ok"), ("3", "ok")]
