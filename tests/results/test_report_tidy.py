"""``report.json`` keeps every round (the last marked, energy by load per round and in total)
and ``report.csv`` is tidy: one row per user × mode × round, read by pandas as it is."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from fedhar.enums import Mode, Status
from fedhar.results.record import BatteryRecord, ClientRecord, ModeRecord
from fedhar.results.report import ReportWriter

HEADER = {"scenario": "tidy_check", "seed": 7, "classes": ["a", "b"]}
CONFUSION = [[3, 1], [0, 4]]


def _mode(f1: float, trained: bool) -> ModeRecord:
    if not trained:
        return ModeRecord(f1, f1, f1, CONFUSION, f1_deployed=f1 - 0.01)
    return ModeRecord(
        f1, f1, f1, CONFUSION, f1_deployed=f1 - 0.01,
        memory_bytes={"parameters": 100, "total": 300},
        ops={"macs": 10}, cycles=2e9, seconds=10.0, energy_j=0.5,
        curve={"loss": [0.9, 0.5], "f1": [0.6, 0.8]}, curve_on="train",
    )  # fmt: skip


def _device(user: str, r: int, soc: float) -> ClientRecord:
    modes = {
        Mode.NONE: _mode(0.5, False),
        Mode.FULL: _mode(0.8 + r / 100, True),
        Mode.NO_PRETRAIN: _mode(0.4, True),
    }
    energy = {"sensor": 0.25, "training": 0.5}
    battery = BatteryRecord(soc, energy, {"full": 1, "tl": 0})
    return ClientRecord(user, f"loso-{user}", 8, 8, round=r, modes_round=r, modes=modes,
                        payload_bytes_down=1000, battery=battery)  # fmt: skip


def _general(user: str) -> ClientRecord:
    return ClientRecord(user, f"loso-{user}", 8, 8, modes={Mode.NONE: _mode(0.55, False)})


def _skipped(user: str, r: int) -> ClientRecord:
    return ClientRecord(user, f"loso-{user}", 0, 0, Status.SKIPPED, "low battery", round=r)


@pytest.fixture()
def report(tmp_path: Path) -> Path:
    writer = ReportWriter(tmp_path, HEADER, resume=False)
    for user in ("10", "2"):
        writer.add(_general(user))
    writer.rounds = [_device("2", 1, 0.9), _device("2", 2, 0.7), _device("10", 1, 0.3)]
    writer.rounds.append(_skipped("10", 2))
    writer.write()
    return tmp_path


def test_csv_is_one_row_per_user_mode_and_round(report: Path) -> None:
    table = pd.read_csv(report / "report.csv", dtype={"user": str})
    assert table["f1"].dtype == float and table["cycles"].dtype == float
    table[["mode", "reason"]] = table[["mode", "reason"]].fillna("")
    assert (table["scenario"] == "tidy_check").all() and (table["seed"] == 7).all()
    keys = table[["user", "mode", "round"]]
    assert not keys.duplicated().any()
    # Round 0: the general model (none); each device round: its three modes; the skip: one row.
    assert len(table) == 2 + 3 * 3 + 1
    assert set(table["mode"]) == {"none", "full", "no_pretrain", ""}
    mean = table[table["mode"] != ""].groupby(["mode", "round"])["f1"].mean()
    assert mean["full", 2] == pytest.approx(0.82)
    assert mean["none", 0] == pytest.approx(0.55)
    last = table[table["last"] == 1]
    assert set(zip(last["user"], last["round"], strict=True)) == {("2", 2), ("10", 2)}
    skip = table[(table["user"] == "10") & (table["round"] == 2)].iloc[0]
    assert skip["status"] == "skipped" and skip["reason"] == "low battery"
    assert skip["n_train"] == 8  # the user's size, not the empty skip record's
    device = table[(table["round"] > 0) & (table["status"] == "ok")]
    assert (device["energy_j_training"] == 0.5).all()
    assert set(table.loc[table["mode"] == "no_pretrain", "cycles"]) == {2e9}


def test_json_keeps_every_round_and_the_energy_totals(report: Path) -> None:
    data = json.loads((report / "report.json").read_text())
    assert data["format"] == 5
    rounds = [(r["user"], r["round"], r["last"]) for r in data["rounds"]]
    assert rounds == [("2", 1, False), ("2", 2, True), ("10", 1, False), ("10", 2, True)]
    energy = data["battery"]["energy_j_by_load"]
    assert energy["by_round"] == {
        "1": {"sensor": 0.5, "training": 1.0},
        "2": {"sensor": 0.25, "training": 0.5},
    }
    assert energy["total"] == {"sensor": 0.75, "training": 1.5}
    users = data["battery"]["users"]
    assert users["10"]["skipped_rounds"] == [2] and users["10"]["soc_end"] == {"1": 0.3}
    assert users["2"]["jobs"] == {"full": 2, "tl": 0}
    curve = data["rounds"][0]["modes"]["full"]["curve"]
    assert curve == {"loss": [0.9, 0.5], "f1": [0.6, 0.8]}


def test_resumed_writer_rewrites_the_same_bytes(report: Path) -> None:
    before = {n: (report / n).read_bytes() for n in ("report.json", "report.csv")}
    ReportWriter(report, HEADER, resume=True).write()
    assert {n: (report / n).read_bytes() for n in before} == before
