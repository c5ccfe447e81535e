"""``fedhar study``: scenario validation, output files, resume and determinism."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from fedhar.cli import main
from fedhar.schema.base import SchemaError
from fedhar.studies.battery import load_study_scenario
from fedhar.wearable.build import device_costs

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "battery_policies.yaml"


def small_scenario(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load(SCENARIO.read_text())
    data["study"].update(
        {
            "days": 3,
            "capacity_mah": [0.5],
            "charging": {
                "nightly": {"name": "nightly", "params": {"probability": 0.5}},
                "never": {"name": "never"},
            },
            "personalization": {
                "always_full": {"name": "always_full"},
                "charging_full_else_tl": {"name": "charging_full_else_tl"},
            },
            "threshold": {"static": {"name": "static", "params": {"th": 0.5}}},
            "plot_capacity_mah": 0.5,
            "plot_charging": "never",
        }
    )
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_scenario_is_valid():
    scenario = load_study_scenario(SCENARIO)
    assert len(scenario.study.personalization) == 5


def test_unknown_key_exits_2_naming_file_key_path_and_expectation(tmp_path, capsys):
    path = small_scenario(tmp_path, **{"battery.cell.modle": "kibam"})
    assert main(["study", str(path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        f"error: {path}: battery.cell.modle: unknown key, expected one of: voltage_v, model, "
        "cutoff_soc, restart_soc, kibam_c, kibam_k_per_s, charge_current_ma, cv_soc, "
        "termination_fraction, recharge_soc\n"
    )


def test_every_mistake_of_a_study_scenario_is_reported_at_once(tmp_path, capsys):
    path = small_scenario(
        tmp_path,
        **{
            "battery.cell.modle": "kibam",
            "battery.window_s": 0,
            "study.days": "three",
            "study.charging.never": {"name": "weekly"},
            "study.threshold": {"odd": {"name": "stepwise", "params": {"steps": []}}},
        },
    )
    with pytest.raises(SchemaError) as info:
        load_study_scenario(path)
    assert info.value.lines == [
        f"{path}: battery.cell.modle: unknown key, expected one of: voltage_v, model, "
        "cutoff_soc, restart_soc, kibam_c, kibam_k_per_s, charge_current_ma, cv_soc, "
        "termination_fraction, recharge_soc",
        f"{path}: battery.window_s: expected a finite number > 0, got 0",
        f"{path}: study.days: expected an integer >= 1, got 'three'",
        f"{path}: study.charging.never.name: expected one of 'never', 'nightly', 'random', "
        "got 'weekly'",
        f"{path}: study.threshold.odd.params.steps: expected a non-empty list whose items are "
        "each a list [a finite number, a finite number], got an empty list",
    ]
    assert main(["study", str(path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.count("\n") == 5


def test_plotted_labels_must_be_in_the_grid(tmp_path):
    path = small_scenario(tmp_path, **{"study.plot_charging": "weekly"})
    with pytest.raises(SchemaError) as info:
        load_study_scenario(path)
    assert info.value.lines == [
        f"{path}: study.plot_charging: expected one of ['never', 'nightly'], got 'weekly'"
    ]


def test_old_device_key_still_loads(tmp_path):
    data = yaml.safe_load(small_scenario(tmp_path).read_text())
    data["device"] = data.pop("battery")
    data["device"]["battery"] = data["device"].pop("cell")
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(data))
    assert load_study_scenario(old) == load_study_scenario(small_scenario(tmp_path))


def test_study_writes_its_files_and_resumes_without_redoing_work(tmp_path, capsys):
    path = small_scenario(tmp_path)
    out = tmp_path / "out"
    assert main(["study", str(path), "--out", str(out)]) == 0
    for name in ("study.json", "study.csv", "report.html", "soc.png", "pareto.png", "energy.png"):
        assert (out / name).stat().st_size > 0
    with open(out / "study.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    for column in (
        "policy",
        "capacity_mah",
        "charging",
        "days_to_first_depletion",
        "fraction_time_dead",
        "mean_f1",
        "energy_j_training",
        "full_jobs",
        "tl_jobs",
    ):
        assert column in rows[0]
    first = json.loads((out / "study.json").read_text())
    never = [r for r in first["rows"] if r["charging"] == "never"]
    assert all(r["days_to_first_depletion"] is not None for r in never)  # 0.5 mAh dies in 3 days
    assert "data:image/png;base64," in (out / "report.html").read_text()
    # The study says what priced its personalization jobs, in study.json and on the page.
    training = first["cost_sources"]["training"]
    assert training and f"Personalization cost: {training}" in (out / "report.html").read_text()

    assert main(["study", str(path), "--out", str(out)]) == 2  # never overwrites silently
    lines = (out / "rows.jsonl").read_text().splitlines()
    (out / "rows.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # as if killed mid-run
    capsys.readouterr()
    assert main(["study", str(path), "--out", str(out), "--resume"]) == 0
    log = capsys.readouterr().out
    assert log.count("[4/4]") == 1 and "[1/4]" not in log
    assert json.loads((out / "study.json").read_text()) == first


def test_study_resume_refuses_a_journal_of_another_scenario(tmp_path, capsys):
    path = small_scenario(tmp_path)
    out = tmp_path / "out"
    assert main(["study", str(path), "--out", str(out)]) == 0
    before = (out / "rows.jsonl").read_bytes()
    small_scenario(tmp_path, **{"study.days": 2})
    capsys.readouterr()
    assert main(["study", str(path), "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{out / 'rows.jsonl'}: cannot resume, written for another run" in err
    assert (out / "rows.jsonl").read_bytes() == before


def test_estimator_priced_training_keeps_table3_energy_ratio_equal_to_time_ratio():
    """Craighero et al. 2023 Table III through the counted path: one MCU power for both
    modes, so energy per epoch scales with time exactly."""
    section = load_study_scenario(SCENARIO).battery
    assert section.training.source == "estimator"
    costs, _ = device_costs(section, SCENARIO.parent)
    full, tl = costs.personalization["full"], costs.personalization["tl"]
    assert full.joules_per_epoch / tl.joules_per_epoch == pytest.approx(
        full.seconds_per_epoch / tl.seconds_per_epoch, rel=1e-12
    )
    assert 2.5 < full.seconds_per_epoch / tl.seconds_per_epoch < 4.0  # Table III: 3.38
