"""The fleet study (fedhar.studies.fleet) on a small synthetic fleet: every F1 is measured on
the user's own windows, jobs really train and resume after cut-offs, the guard judges them,
and the study is deterministic and resumable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fedhar.cli import main
from fedhar.schema.base import SchemaError
from fedhar.studies import fleet
from fedhar.studies.fleet import run_fleet
from fedhar.wearable.charging import RandomCharging

SCENARIO = """
name: fleet_syn
seed: 0
data: {dataset: synthetic, classes: [walking, jogging, sitting, standing], window: 40,
       stride: 20, options: {n_users: 6, seconds_per_activity: 60}}
fleet:
  folds: 2
  users: ["1", "2"]
  label_every_s: 1800
  model: {channels: [8, 8, 16], kernel: 7, small_width: 0.5}
  pretrain: {epochs: 2}
  job: {epochs: 2}
  schedule: [[0, sitting], [8, walking], [12, jogging], [14, standing], [20, sitting]]
study:
  days: 4
  capacity_mah: [0.5, 5]
  charging:
    never: {name: never}
  personalization:
    always_full: {name: always_full}
    never: {name: never}
  threshold:
    static_max: {name: static, params: {th: 1.0}}
    stepwise: {name: stepwise, params: {steps: [[0.0, 0.0], [0.5, 1.0]], hysteresis: 0.05}}
  guard: [false, true]
"""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fleet") / "fleet.yaml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture(scope="module")
def study(scenario: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("fleet_out")
    return out, run_fleet(scenario, out, log=lambda _: None, jobs=1)


def test_every_f1_is_measured_and_jobs_really_train(study: tuple[Path, dict]) -> None:
    out, result = study
    rows = result["rows"]
    assert len(rows) == 2 * 2 * 2 * 2 * 2  # policies x thresholds x capacities x guard x users
    assert result["accuracy_source"] == "measured"
    for r in rows:
        assert r["accuracy_source"] == "measured" and len(r["f1_by_day"]) == 4
        assert 0.0 <= r["mean_f1"] <= 1.0
    full = [r for r in rows if r["personalization"] == "always_full"]
    assert all(r["full_jobs"] >= 1 for r in full)
    assert all(r["energy_j"]["training"] > 0 for r in full)
    never = [r for r in rows if r["personalization"] == "never"]
    assert all(r["final_model"] == "none" and r["energy_j"]["training"] == 0 for r in never)
    # a personalized device ends on a model other than the general one, trained on its data
    assert any(r["final_model"].startswith("full-") for r in full if not r["guard"])
    # the guard judged every job and said why
    guarded = [v for r in full if r["guard"] for v in r["verdicts"]]
    assert guarded and all(v["n_check"] > 0 or not v["deployed"] for v in guarded)
    for v in guarded:
        if v["n_check"]:
            assert v["deployed"] == (v["candidate_score"] > v["deployed_score"])
    assert all(isinstance(v["reason"], str) and v["reason"] for v in guarded)
    assert sum(r["rejected_jobs"] for r in full if r["guard"]) == sum(
        not v["deployed"] for v in guarded
    )
    assert all(r["rejected_jobs"] == 0 for r in full if not r["guard"])
    # 0.5 mAh does not last: cut-offs stop jobs, which resume from their last epoch
    small = [r for r in full if r["capacity_mah"] == 0.5]
    assert any(r["depletions"] > 0 for r in small)
    memo = json.loads((out / "memo.json").read_text())
    assert memo["jobs_shared"] > 0 and memo["jobs_trained"] > 0
    assert (out / "study.csv").read_text().count("\n") == len(rows) + 1


def test_harm_is_judged_against_the_general_model(study: tuple[Path, dict]) -> None:
    _, result = study
    for r in result["rows"]:
        assert r["harmed"] == (r["f1_final"] < r["f1_general"])
    harm = result["harm"]
    assert set(harm) == {r["policy"] for r in result["rows"]}
    assert all(h["harmed_configs"] == 0 for p, h in harm.items() if p.startswith("never"))


def test_same_seed_same_bytes_whatever_the_workers(
    scenario: Path, study: tuple[Path, dict], tmp_path: Path
) -> None:
    out, _ = study
    run_fleet(scenario, tmp_path / "two", log=lambda _: None, jobs=2)
    assert (tmp_path / "two" / "study.json").read_bytes() == (out / "study.json").read_bytes()


def test_resume_finishes_what_was_not_written(
    scenario: Path, study: tuple[Path, dict], tmp_path: Path
) -> None:
    out, _ = study
    part = tmp_path / "part"
    run_fleet(scenario, part, log=lambda _: None, jobs=1)
    lines = (part / "rows.jsonl").read_text().splitlines(keepends=True)
    (part / "rows.jsonl").write_text("".join(lines[:-5]))  # killed before the last five
    (part / "study.json").unlink()
    run_fleet(scenario, part, resume=True, log=lambda _: None, jobs=1)
    assert (part / "study.json").read_bytes() == (out / "study.json").read_bytes()


def test_changing_a_users_data_changes_only_that_users_f1(
    scenario: Path, study: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, result = study
    original = fleet.user_windows

    def shuffled(scn, ws, classes, user, norm):
        data = original(scn, ws, classes, user, norm)
        if user != "2":
            return data
        y = np.random.default_rng(0).permutation(data.y_test)
        return type(data)(data.user, data.x_train, data.y_train, data.x_test, y, data.arrival)

    monkeypatch.setattr(fleet, "user_windows", shuffled)
    changed = run_fleet(scenario, tmp_path / "changed", log=lambda _: None, jobs=1)
    before = {r["key"]: r["mean_f1"] for r in result["rows"]}
    for r in changed["rows"]:
        if r["user"] == "2":
            assert r["mean_f1"] != pytest.approx(before[r["key"]], abs=1e-9)
        else:
            assert r["mean_f1"] == before[r["key"]]


def test_bad_scenarios_name_the_key(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SCENARIO.replace("[20, sitting]", "[20, lying]"))
    with pytest.raises(SchemaError, match="fleet.schedule"):
        run_fleet(bad, tmp_path / "o", log=lambda _: None)
    bad.write_text(SCENARIO.replace('users: ["1", "2"]', 'users: ["1", "99"]'))
    assert main(["study", str(bad), "--out", str(tmp_path / "o2")]) == 2
    assert "fleet.users" in capsys.readouterr().err
    bad.write_text(SCENARIO.replace("folds: 2", "folds: 7"))
    with pytest.raises(SchemaError, match="fleet.folds"):
        run_fleet(bad, tmp_path / "o3", log=lambda _: None)


def test_cli_writes_the_report(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    assert main(["study", str(scenario), "--out", str(out), "--jobs", "1"]) == 0
    for name in (
        "study.json",
        "study.csv",
        "users.csv",
        "report.html",
        "pareto.png",
        "f1_days.png",
        "soc.png",
    ):
        assert (out / name).is_file(), name
    html = (out / "report.html").read_text()
    assert "measured" in html and "guard" in html
    assert json.loads((out / "study.json").read_text())["users"] == ["1", "2"]


def test_shared_and_unshared_memos_give_the_same_bytes(
    scenario: Path, study: tuple[Path, dict], tmp_path: Path
) -> None:
    # the shared memo and the never-personalizing guard twins simulated once change no byte
    out, result = study
    alone = run_fleet(scenario, tmp_path / "alone", log=lambda _: None, jobs=1, share=False)
    assert (tmp_path / "alone" / "study.json").read_bytes() == (out / "study.json").read_bytes()
    twins = [r for r in alone["rows"] if r["personalization"] == "never"]
    assert {r["guard"] for r in twins} == {False, True}


def test_each_user_charges_at_its_own_times() -> None:
    habit = RandomCharging(probability=0.5, min_hours=0.5, max_hours=2.0)
    seeds = [fleet.charging_seed(7, u) for u in ("1", "2", "3")]
    assert len(set(seeds)) == 3 and seeds[0] == fleet.charging_seed(7, "1")
    days = range(30)
    plans = [[habit.sessions(d, s) for d in days] for s in seeds]
    assert plans[0] != plans[1] and plans[1] != plans[2]


def test_a_job_stopped_by_a_cut_off_finishes_after_charging(tmp_path: Path) -> None:
    path = tmp_path / "revive.yaml"
    path.write_text(
        SCENARIO.replace('users: ["1", "2"]', 'users: ["1"]')
        .replace("capacity_mah: [0.5, 5]", "capacity_mah: [0.1]")
        .replace(
            "never: {name: never}\n  personalization:",
            "brief: {name: random, params: {probability: 1.0, min_hours: 0.05, max_hours: 0.1}}"
            "\n  personalization:",
        )
        .replace("  guard: [false, true]", "  guard: [false]")
    )
    rows = run_fleet(path, tmp_path / "out", log=lambda _: None, jobs=1)["rows"]
    full = [r for r in rows if r["personalization"] == "always_full"]
    assert any(r["depletions"] > 0 for r in full)
    # a job a cut-off stopped resumed from its last completed epoch once charged, and finished
    assert any(r["interrupted_jobs"] > 0 and r["epochs_lost"] > 0 for r in full)
