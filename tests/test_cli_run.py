"""The ``fedhar`` CLI: version, help on every command, scenario errors, and ``fedhar run``
giving byte-identical reports, resuming, and refusing to resume another run's report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fedhar import __version__
from fedhar.cli import build_parser, main

TINY = """\
name: tiny
seed: 1
data:
  dataset: synthetic
  options: {n_users: 3, seconds_per_activity: 20}
  classes: [walking, sitting, standing]
  window: 40
  stride: 20
pretrain: {epochs: 2, patience: 2, batch_size: 32, val_fraction: 0.0, augment_rotation_deg: 10}
"""


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDHAR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CI", "1")
    torch.set_num_threads(1)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"fedhar {__version__}"


def test_help_on_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert "run" in sub.choices
    for name in sub.choices:
        assert main([name, "--help"]) == 0, name
        assert f"fedhar {name}" in capsys.readouterr().out


def test_run_help_documents_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "docs/scenario.md" in out and "report.json" in out and "--resume" in out


def _run_bad(tmp_path: Path, text: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``python -m fedhar.cli run BAD.yaml --out X`` of a scenario ``text``, as a user runs it."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "fedhar.cli", "run", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert not (tmp_path / "o").exists()
    return bad, proc


def test_bad_scenario_exit_2_one_line(tmp_path: Path) -> None:
    bad, proc = _run_bad(tmp_path, TINY.replace("pretrain: {epochs: 2", "pretrain: {epochs: two"))
    assert proc.returncode == 2
    assert proc.stderr == f"error: {bad}: pretrain.epochs: expected an integer >= 1, got 'two'\n"


def test_every_scenario_mistake_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """An unknown key, a missing required key and a wrong type: three lines, each naming its
    key path, and no traceback."""
    text = TINY.replace("name: tiny\n", "").replace("window: 40", "window: 40\n  colour: red")
    bad, proc = _run_bad(tmp_path, text.replace("pretrain: {epochs: 2", "pretrain: {epochs: two"))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: {bad}: name: missing required key, expected a non-empty string",
        f"error: {bad}: data.colour: unknown key, expected one of: dataset, data_dir, classes, "
        "channels, recording_device, target_fs, window, stride, train_fraction, options",
        f"error: {bad}: pretrain.epochs: expected an integer >= 1, got 'two'",
    ]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("window: 40", "window: 40\n  colour: red"), "data.colour: unknown key, expected one of:"),
        (("name: tiny\n", ""), "name: missing required key, expected a non-empty string"),
    ],
)
def test_scenario_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: tuple[str, str], expected: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace(*edit))
    assert main(["run", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}: {expected}" in err


def test_run_is_byte_identical_and_resumable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY)
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["run", str(scenario), "--out", str(a)]) == 0
    out = capsys.readouterr().out
    assert "mean macro-F1 [none] over 3 users" in out
    assert main(["run", str(scenario), "--out", str(b), "--no-cache"]) == 0
    assert (a / "report.json").read_bytes() == (b / "report.json").read_bytes()
    assert (a / "report.csv").read_bytes() == (b / "report.csv").read_bytes()

    report = json.loads((a / "report.json").read_text())
    assert [c["user"] for c in report["clients"]] == ["1", "2", "3"]
    client = report["clients"][0]
    assert set(client) >= {"user", "fold", "n_train", "n_test", "status", "modes"}
    assert client["fold"] == "loso-1" and set(client["modes"]) == {"none"}
    assert 0.0 <= client["modes"]["none"]["f1"] <= 1.0
    assert {"accuracy", "balanced_accuracy", "confusion"} <= set(client["modes"]["none"])
    assert {"mean", "std", "min", "max", "n_users"} <= set(report["summary"]["none"])
    assert "wall_seconds" not in json.dumps(report)

    # Resume a report missing one client: only that client's fold is pretrained (from cache).
    report["clients"] = report["clients"][:2]
    (b / "report.json").write_text(json.dumps(report))
    assert main(["run", str(scenario), "--out", str(b), "--resume"]) == 0
    run = json.loads((b / "run.json").read_text())
    assert run["pretrain_cache_hits"] + run["pretrain_cache_misses"] == 1
    assert (a / "report.json").read_bytes() == (b / "report.json").read_bytes()

    # A report of another scenario is not resumed.
    scenario.write_text(TINY.replace("seed: 1", "seed: 2"))
    assert main(["run", str(scenario), "--out", str(b), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out holds the results of another run (seed 1" in err


def test_federated_pretraining_run_reports_its_rounds_and_bytes(tmp_path: Path) -> None:
    """``pretrain.method: federated`` end to end: the report's ``pretrain`` block holds each
    fold's rounds and bytes, the same with 1 or 2 jobs and after a resume."""
    scenario = tmp_path / "fed.yaml"
    scenario.write_text(
        TINY.replace("val_fraction: 0.0", "val_fraction: 0.0, method: federated, "
                     "federated: {rounds: 2, local_epochs: 1}")
    )  # fmt: skip
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["run", str(scenario), "--out", str(a), "--jobs", "1"]) == 0
    assert main(["run", str(scenario), "--out", str(b), "--jobs", "2", "--no-cache"]) == 0
    assert (a / "report.json").read_bytes() == (b / "report.json").read_bytes()
    report = json.loads((a / "report.json").read_text())
    block = report["pretrain"]
    assert block["method"] == "federated" and set(block["folds"]) == {"loso-1", "loso-2", "loso-3"}
    fold = block["folds"]["loso-1"]
    assert fold["rounds_run"] == 2 and fold["train_users"] == ["2", "3"]
    assert [r["n_participants"] for r in fold["by_round"]] == [2, 2]
    assert fold["bytes_down"] == sum(r["bytes_down"] for r in fold["by_round"]) > 0
    assert block["totals"]["rounds_run"] == 6
    assert block["totals"]["bytes_up"] == sum(
        f["bytes_up"] + f["stats_bytes_up"] for f in block["folds"].values()
    )
    report["clients"] = report["clients"][:2]
    (b / "report.json").write_text(json.dumps(report))
    assert main(["run", str(scenario), "--out", str(b), "--resume"]) == 0
    assert (a / "report.json").read_bytes() == (b / "report.json").read_bytes()
