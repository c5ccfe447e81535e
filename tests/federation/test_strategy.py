"""Aggregation of personalized updates and the resumable per-client log."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedhar.enums import Mode, Status
from fedhar.results.journal import ResultLog
from fedhar.results.record import ClientOutcome, ClientRecord, ModeRecord
from server.strategy import RoundUpdates, not_ok


def _outcome(user: str, n: int, received: float, update: float, status: Status = Status.OK):
    none = ModeRecord(0.5, 0.5, 0.5, [[1, 0], [1, 0]], f1_deployed=0.5)
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
    updates = RoundUpdates(["w"])
    for outcome in outcomes:
        updates.add(outcome)
    new = updates.apply(models)
    np.testing.assert_allclose(new["a"]["w"], -1.0)  # only b's update
    np.testing.assert_allclose(new["b"]["w"], 1.0)  # only a's update
    np.testing.assert_allclose(new["c"]["w"], (1 * 1 - 3 * 1) / 4)  # both, weighted
    for user in "abc":
        np.testing.assert_array_equal(new[user]["b"], 1.0)  # not aggregated
        assert new[user]["b"] is models[user]["b"]  # and shared, not copied


def test_fedavg_sums_in_the_models_order_whatever_order_replies_came() -> None:
    """A resumed run adds its logged updates first; the sums must not depend on that order.

    Deltas of +1e20, -1e20 and +1 sum to 1 in one order and to 0 in the other in float64.
    """
    models = {u: {"w": np.zeros(1, np.float32)} for u in "abcdef"}
    deltas = {"a": 1e20, "b": -1e20, "c": 1.0, "d": 0.0, "e": 0.0, "f": 0.0}
    outcomes = [_outcome(u, 1, 0.0, d) for u, d in deltas.items()]
    forward, backward = RoundUpdates(["w"]), RoundUpdates(["w"])
    for o in outcomes:
        forward.add(o)
    for o in reversed(outcomes):
        backward.add(o)
    a, b = forward.apply(models), backward.apply(models)
    for user in models:
        assert a[user]["w"].tobytes() == b[user]["w"].tobytes()
    np.testing.assert_allclose(a["d"]["w"], 1.0 / 5)  # (1e20 - 1e20 + 1) / 5, in models order


def test_log_resumes_and_keeps_updates(tmp_path: Path) -> None:
    log = ResultLog(tmp_path, resume=False)
    log.append(_outcome("a", 2, 0.5, 1.5))
    log.append(ClientOutcome(not_ok("b", "loso-b", 1, Status.DECLINED, "does not fit")))
    with (tmp_path / "clients.jsonl").open("a") as f:
        f.write('{"round": 1, "user": "c", "sta')  # interrupted mid-line
    again = ResultLog(tmp_path, resume=True)
    assert again.resumed(1, "a")["status"] == "ok"
    assert again.resumed(1, "b")["reason"] == "does not fit"
    assert again.resumed(1, "c") is None
    received, update = again.load_update(1, "a")
    np.testing.assert_array_equal(update["w"], 1.5)
    np.testing.assert_array_equal(received["w"], 0.5)
    assert ResultLog(tmp_path, resume=False).resumed(1, "a") is None
