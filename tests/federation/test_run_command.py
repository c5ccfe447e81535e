"""``fedhar run`` end to end on the default engine: report contents, determinism, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clients.client_app import app as client_app
from fedhar.cli import main
from fedhar.engines.inprocess import run_inprocess
from fedhar.engines.runner import node_configs, run_config
from fedhar.enums import Mode, Status
from fedhar.results.journal import JournalError
from fedhar.results.record import ClientRecord
from server.server_app import app as server_app

from .conftest import write_scenario


def test_run_reports_every_mode_and_is_byte_identical(tmp_path: Path, capsys) -> None:
    scenario = write_scenario(tmp_path, n_users=3, modes="[none, tl, full, no_pretrain]")
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["run", str(scenario), "--out", str(a)]) == 0
    assert "wall time" in capsys.readouterr().out
    assert main(["run", str(scenario), "--out", str(b)]) == 0
    assert (a / "report.json").read_bytes() == (b / "report.json").read_bytes()
    report = json.loads((a / "report.json").read_text())
    assert [c["user"] for c in report["clients"]] == ["1", "2", "3"]
    for c in map(ClientRecord.from_dict, report["clients"]):
        assert c.status == Status.OK
        assert list(c.modes) == list(Mode)
        assert all(r.f1_deployed is not None for r in c.modes.values())
        assert c.modes[Mode.NONE].memory_bytes == {} and c.modes[Mode.NONE].ops == {}
        full, tl = c.modes[Mode.FULL], c.modes[Mode.TL]
        assert full.memory_bytes["total"] > tl.memory_bytes["total"] > 0
        assert full.ops["macs"] > tl.ops["macs"] > 0
        assert full.energy_j > tl.energy_j > 0
        assert sum(map(sum, full.confusion)) == c.n_test
        assert c.payload_bytes_down > 0
    for mode in ("tl", "full", "no_pretrain"):
        assert 0.0 <= report["summary"][mode]["improved"] <= 1.0
        assert report["summary"][mode]["mean_deployed"] is not None
    for name in ("report.html", "report.csv", "f1_by_user.png", "gain_vs_energy.png", "run.json"):
        assert (a / name).stat().st_size > 0, name
    assert "wall_seconds" in json.loads((a / "run.json").read_text())


def test_resume_skips_logged_clients_and_redoes_a_torn_one(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, n_users=3)
    out = tmp_path / "out"
    assert main(["run", str(scenario), "--out", str(out)]) == 0
    log = out / "clients.jsonl"
    lines = log.read_text().splitlines()
    assert len(lines) == 4  # the run's identity, then one line per client
    assert json.loads(lines[0])["identity"]["scenario"] == "tiny-federation"
    # As if killed after two clients, in the middle of writing the third one's line.
    log.write_text("\n".join(lines[:3]) + "\n" + lines[3][:25])
    first = json.loads((out / "report.json").read_text())
    assert main(["run", str(scenario), "--out", str(out), "--resume"]) == 0
    assert log.read_text().splitlines() == lines
    assert json.loads((out / "report.json").read_text()) == first


def test_resume_refuses_the_log_of_another_scenario(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = write_scenario(tmp_path, n_users=2)
    run_inprocess(server_app, client_app, node_configs(2), run_config(first, out, None, False))
    logged = (out / "clients.jsonl").read_bytes()
    (tmp_path / "b").mkdir()
    other = write_scenario(tmp_path / "b", n_users=2, epochs=2)
    with pytest.raises(JournalError) as err:
        run_inprocess(server_app, client_app, node_configs(2), run_config(other, out, None, True))
    assert str(err.value).startswith(f"{out / 'clients.jsonl'}: cannot resume")
    assert "scenario_sha256" in str(err.value)
    assert (out / "clients.jsonl").read_bytes() == logged
