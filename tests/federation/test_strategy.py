"""Aggregation of personalized updates and the resumable per-client log."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedhar.enums import Mode, Status
from fedhar.results.journal import ResultLog
from fedhar.results.record import ClientOutcome, ClientRecord, ModeRecord
from server.strategy import aggregate, not_ok


def _outcome(user: str, n: int, received: float, update: float, status: Status = Status.OK):
    none = ModeRecord(0.5, 0.5, 0.5, [[1, 0], [1, 0]], f1_int8=0.5)
    record = ClientRecord(
        user, "loso-" + user, n, 2, status=status, round=1, modes={Mode.NONE: none}
    )
    return ClientOutcome(
        record,
        received={"w": np.full(2, received, np.float32)},
        update={"w": np.full(2, update, np.float32)},
    )


def test_leave_one_out_fedavg_of_updates() -> None:
    models = {u: {"w": np.zeros(2, np.float32), "b": np.ones(1, np.float32)} for u in "abc"}
    outcomes = [
        _outcome("a", 1, 0.0, 1.0),  # delta +1, weight 1
        _outcome("b", 3, 0.0, -1.0),  # delta -1, weight 3
        _outcome("c", 5, 0.0, 9.0, status=Status.REJECTED),  # takes no part
    ]
    new = aggregate(models, outcomes, ["w"])
    np.testing.assert_allclose(new["a"]["w"], -1.0)  # only b's update
    np.testing.assert_allclose(new["b"]["w"], 1.0)  # only a's update
    np.testing.assert_allclose(new["c"]["w"], (1 * 1 - 3 * 1) / 4)  # both, weighted
    for user in "abc":
        np.testing.assert_array_equal(new[user]["b"], 1.0)  # not aggregated


def test_log_resumes_and_keeps_updates(tmp_path: Path) -> None:
    log = ResultLog(tmp_path, resume=False)
    log.append(_outcome("a", 2, 0.5, 1.5))
    log.append(ClientOutcome(not_ok("b", "loso-b", 1, Status.DECLINED, "does not fit")))
    with (tmp_path / "clients.jsonl").open("a") as f:
        f.write('{"round": 1, "user": "c", "sta')  # interrupted mid-line
    again = ResultLog(tmp_path, resume=True)
    assert again.done(1, "a")["status"] == "ok"
    assert again.done(1, "b")["reason"] == "does not fit"
    assert again.done(1, "c") is None
    received, update = again.load_update(1, "a")
    np.testing.assert_array_equal(update["w"], 1.5)
    np.testing.assert_array_equal(received["w"], 0.5)
    assert ResultLog(tmp_path, resume=False).rows == []
