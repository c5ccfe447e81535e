"""``fedhar run`` of ``scenarios/quickstart_battery.yaml`` on the in-process engine: every
client's battery state of charge and energy by load reach ``report.json``, low batteries are
skipped in round 2 (recorded, with the reason), and the report repeats byte for byte."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from fedhar.cli import main
from fedhar.enums import Mode, Status
from fedhar.results.journal import read_rows
from fedhar.results.record import ClientRecord
from fedhar.schema.scenario import load_scenario
from fedhar.wearable.loads import LOADS

from .conftest import REPO

SCENARIO = REPO / "scenarios" / "quickstart_battery.yaml"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("battery")
    a, b = root / "a", root / "b"
    assert main(["run", str(SCENARIO), "--out", str(a)]) == 0
    assert main(["run", str(SCENARIO), "--out", str(b)]) == 0
    return a, b


def _records(report: Path) -> list[ClientRecord]:
    return [ClientRecord.from_dict(c) for c in json.loads(report.read_text())["clients"]]


def _log(out: Path) -> list[ClientRecord]:
    return [ClientRecord.from_dict(row) for row in read_rows(out / "clients.jsonl")]


def test_report_is_byte_identical(runs: tuple[Path, Path]) -> None:
    a, b = runs
    assert (a / "report.json").read_bytes() == (b / "report.json").read_bytes()
    assert (a / "clients.jsonl").read_bytes() == (b / "clients.jsonl").read_bytes()


def test_every_client_reports_state_of_charge_and_energy_by_load(runs: tuple[Path, Path]) -> None:
    battery = load_scenario(SCENARIO).battery
    assert battery is not None
    capacity_j = battery.capacity_mah * 3.6 * battery.cell.voltage_v
    clients = _records(runs[0] / "report.json")
    assert len(clients) == 6
    for c in clients:
        assert c.battery is not None
        assert 0.0 <= c.battery.soc_end < 1.0
        assert set(c.battery.energy_j_by_load) == set(LOADS)
        assert all(v > 0 for v in c.battery.energy_j_by_load.values())
        assert c.battery.jobs == {"full": 1, "tl": 0}
    # Per round, the state of charge falls by the energy drawn over the capacity (coulomb
    # model); a day on the charger can only raise it. Every device starts full.
    log = _log(runs[0])
    soc = dict.fromkeys((c.user for c in clients), 1.0)
    exact = 0
    for row in sorted((r for r in log if r.battery is not None), key=lambda r: r.round):
        expected = soc[row.user] - sum(row.battery.energy_j_by_load.values()) / capacity_j
        assert row.battery.soc_end >= expected - 1e-9
        exact += row.battery.soc_end == pytest.approx(expected, abs=1e-9)
        soc[row.user] = row.battery.soc_end
    assert exact > 0
    ok = [c for c in clients if c.status == Status.OK]
    assert ok
    for c in ok:
        # The device's training load is the C library's measured Full job (one per day).
        training = c.battery.energy_j_by_load["training"]
        assert training == pytest.approx(c.modes[Mode.FULL].energy_j, rel=1e-5)
    # report.csv: one row per user, mode and round; every device round's rows carry its battery.
    rows = list(csv.DictReader((runs[0] / "report.csv").open()))
    device = {(r.user, r.round): r for r in log if r.battery is not None}
    battery_rows = [r for r in rows if r["soc_end"]]
    assert {(r["user"], int(r["round"])) for r in battery_rows} == set(device)
    for r in battery_rows:
        logged = device[r["user"], int(r["round"])]
        assert float(r["soc_end"]) == pytest.approx(logged.battery.soc_end, abs=1e-6)
        # A skipped device lives its day without a job: it trains nothing.
        assert (float(r["energy_j_training"]) > 0) == (logged.status == Status.OK)


def test_report_keeps_every_round_and_the_run_totals(runs: tuple[Path, Path]) -> None:
    report = json.loads((runs[0] / "report.json").read_text())
    log = _log(runs[0])
    assert len(report["rounds"]) == len(log) == 12
    last = {(r["user"], r["round"]) for r in report["rounds"] if r["last"]}
    assert last == {(str(u), 2) for u in range(1, 7)}
    battery = report["battery"]
    for load in LOADS:
        per_round = [e[load] for e in battery["energy_j_by_load"]["by_round"].values()]
        logged = sum(r.battery.energy_j_by_load[load] for r in log if r.battery is not None)
        assert battery["energy_j_by_load"]["total"][load] == pytest.approx(logged, abs=1e-5)
        assert sum(per_round) == pytest.approx(logged, abs=1e-5)
    skipped = {r.user for r in log if r.status == Status.SKIPPED}
    assert {u for u, b in battery["users"].items() if b["skipped_rounds"] == [2]} == skipped
    # A skipped user's figures come from round 1, and the record says so.
    for c in _records(runs[0] / "report.json"):
        assert c.round == 2
        assert c.modes_round == (1 if c.user in skipped else 2)


def test_low_battery_clients_are_skipped_with_the_reason(runs: tuple[Path, Path]) -> None:
    threshold = load_scenario(SCENARIO).battery.skip_below_soc
    log = _log(runs[0])
    first = {r.user: r for r in log if r.round == 1}
    second = {r.user: r for r in log if r.round == 2}
    assert set(first) == set(second) == {str(u) for u in range(1, 7)}
    assert all(r.status == Status.OK for r in first.values())
    low = {u for u, r in first.items() if r.battery.soc_end < threshold}
    assert low and low != set(first)
    for user, row in second.items():
        if user in low:
            assert row.status == Status.SKIPPED
            assert "low battery" in row.reason
            # Its device still lived the day (no download, no job) and reported.
            assert row.battery.jobs == {"full": 0, "tl": 0}
            assert row.battery.energy_j_by_load["training"] == 0
        else:
            assert row.status == Status.OK
            assert row.battery.soc_end < first[user].battery.soc_end
    report = {c.user: c for c in _records(runs[0] / "report.json")}
    for user in low:
        assert report[user].status == Status.SKIPPED
        assert report[user].battery.soc_end == pytest.approx(first[user].battery.soc_end, abs=1e-6)
        # A skipped device still holds its round-1 model: its figures stay in the report.
        assert list(report[user].modes) == [Mode.NONE, Mode.TL, Mode.FULL]
        full = report[user].modes[Mode.FULL].energy_j
        assert full == pytest.approx(first[user].modes[Mode.FULL].energy_j)


def test_device_files_are_found_from_the_run_snapshot(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIO)
    assert scenario.battery is not None
    rows = scenario.battery.modes.rows or []
    folder = tmp_path / "scenarios"
    folder.mkdir()
    lines = ["th,f1,p_easy,cycles_avg,energy_uj_avg,pareto"]
    lines += [f"{r.th},{r.f1},{r.p_easy},{r.cycles_avg},{r.energy_uj_avg},True" for r in rows]
    (folder / "modes.csv").write_text("\n".join(lines) + "\n")
    raw = scenario.model_dump(mode="json")
    raw["battery"]["modes"].update(csv="modes.csv", rows=None)
    raw["personalization"]["modes"] = ["none", "tl"]
    raw["federation"]["rounds"] = 1
    path = folder / "battery.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 0
    clients = _records(out / "report.json")
    assert all(c.status == Status.OK and c.battery.jobs == {"full": 1, "tl": 0} for c in clients)
    # Full was not run on the device, so its job keeps the section's (parts) price.
    for c in clients:
        assert c.battery.energy_j_by_load["training"] != c.modes[Mode.TL].energy_j


def test_unknown_policy_is_a_one_line_scenario_error(tmp_path: Path, capsys) -> None:
    raw = yaml.safe_load(SCENARIO.read_text())
    raw["battery"]["charging"] = {"name": "sometimes"}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {path}: battery.charging.name: expected one of 'never', 'nightly', 'random', "
        "got 'sometimes'"
    )
