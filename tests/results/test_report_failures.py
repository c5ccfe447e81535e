"""A report after failures: one user set behind every mean, and a federation that failed says
so (its reason, the users it never reached, none of them shown ``ok``)."""

from __future__ import annotations

import json
from pathlib import Path

from fedhar.enums import Mode, Status
from fedhar.results.federation import FederationFailure, merge_federation
from fedhar.results.journal import ResultLog
from fedhar.results.record import ClientOutcome, ClientRecord, ModeRecord
from fedhar.results.report import ReportWriter, summarize


def _mode(f1: float, deployed: float | None) -> ModeRecord:
    return ModeRecord(f1, f1, f1, [[1, 0], [0, 1]], f1_deployed=deployed)


def _general(user: str) -> ClientRecord:
    """A user's record before the federation: the general model's score, mode none only."""
    return ClientRecord(user, "f", 10, 5, modes={Mode.NONE: _mode(0.5, None)})


def _device(user: str, f1: float, round_number: int = 1) -> ClientRecord:
    modes = {Mode.NONE: _mode(0.5, 0.5), Mode.FULL: _mode(f1, f1 - 0.01)}
    return ClientRecord(user, "f", 10, 5, modes=modes, round=round_number, modes_round=1)


def test_every_mean_covers_the_same_users() -> None:
    failed = ClientRecord(
        "3", "f", 10, 5, status=Status.FAILED, reason="x", round=1,
        modes={Mode.NONE: _mode(0.1, None)},
    )  # fmt: skip
    summary = summarize([_device("1", 0.9), _device("2", 0.7), failed])
    assert {s.n_users for s in summary.values()} == {2}
    assert summary[Mode.NONE].mean == 0.5  # the failed user's 0.1 is left out
    assert summary[Mode.NONE].mean_deployed == 0.5
    assert abs(summary[Mode.FULL].mean_deployed - 0.79) < 1e-9


def test_a_failed_federation_is_marked_with_the_users_it_never_reached(tmp_path: Path) -> None:
    writer = ReportWriter(tmp_path, {"scenario": "t", "rounds": 2}, resume=False)
    for user in ("1", "2", "3"):
        writer.add(_general(user))
    log = ResultLog(tmp_path, resume=False)
    log.append(ClientOutcome(_device("1", 0.9, round_number=1)))
    log.append(ClientOutcome(_device("1", 0.9, round_number=2)))
    log.append(ClientOutcome(_device("2", 0.8, round_number=1)))
    reason = "the SuperLink exited with code -9 during the run"
    merge_federation(writer, tmp_path, FederationFailure(reason, ["1", "2", "3"], rounds=2))
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["federation"] == {
        "status": "failed", "reason": reason, "users_not_reached": ["2", "3"],
    }  # fmt: skip
    clients = {c["user"]: c for c in report["clients"]}
    assert clients["1"]["status"] == clients["2"]["status"] == "ok"
    assert clients["2"]["round"] == 1
    assert clients["3"]["status"] == "failed" and reason in clients["3"]["reason"]
    assert report["summary_left_out"] == {"3": "failed"}
    assert report["summary"]["none"]["n_users"] == report["summary"]["full"]["n_users"] == 2


def test_a_completed_federation_says_so(tmp_path: Path) -> None:
    writer = ReportWriter(tmp_path, {"scenario": "t", "rounds": 1}, resume=False)
    writer.add(_general("1"))
    ResultLog(tmp_path, resume=False).append(ClientOutcome(_device("1", 0.9)))
    merge_federation(writer, tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["federation"] == {"status": "completed"}
    assert report["summary_left_out"] == {}
