"""``fedhar study``: scenario validation, output files, resume and determinism."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from fedhar.cli import main
from fedhar.studies.battery import load_study_scenario
from fedhar.wearable.scenario import DeviceSection

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
    path = small_scenario(tmp_path, **{"device.battery.modle": "kibam"})
    assert main(["study", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    assert "device.battery.modle: unknown key; expected one of" in err
    assert "'model'" in err


def test_bad_policy_parameter_exits_2_naming_the_grid_entry(tmp_path, capsys):
    path = small_scenario(
        tmp_path, **{"study.threshold": {"odd": {"name": "stepwise", "params": {"steps": []}}}}
    )
    assert main(["study", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "study.threshold.odd: steps: expected soc_min strictly increasing" in (
        capsys.readouterr().err
    )


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

    assert main(["study", str(path), "--out", str(out)]) == 2  # never overwrites silently
    lines = (out / "rows.jsonl").read_text().splitlines()
    (out / "rows.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # as if killed mid-run
    capsys.readouterr()
    assert main(["study", str(path), "--out", str(out), "--resume"]) == 0
    log = capsys.readouterr().out
    assert log.count("[4/4]") == 1 and "[1/4]" not in log
    assert json.loads((out / "study.json").read_text()) == first


def test_estimator_priced_training_keeps_table3_energy_ratio_equal_to_time_ratio():
    """Craighero et al. 2023 Table III through the counted path: one MCU power for both
    modes, so energy per epoch scales with time exactly."""
    section = load_study_scenario(SCENARIO).device
    assert section.training.source == "estimator"
    costs, _ = DeviceSection.costs(section, SCENARIO.parent)
    full, tl = costs.personalization["full"], costs.personalization["tl"]
    assert full.joules_per_epoch / tl.joules_per_epoch == pytest.approx(
        full.seconds_per_epoch / tl.seconds_per_epoch, rel=1e-12
    )
    assert 2.5 < full.seconds_per_epoch / tl.seconds_per_epoch < 4.0  # Table III: 3.38
