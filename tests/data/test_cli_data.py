"""``fedhar data info``."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedhar.commands import data


def main(argv: list[str]) -> int:
    """Runs the ``data`` command through a parser holding only it (the full CLI imports every
    command's dependencies; the console-script test below covers the real entry point)."""
    parser = argparse.ArgumentParser(prog="fedhar")
    data.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_synthetic_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "info", "--dataset", "synthetic", "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out)
    assert out.count("\n") == 1
    assert summary["users"] == [str(u) for u in range(1, 13)]
    assert summary["classes"][:2] == ["walking", "jogging"]
    assert summary["windows_per_user"]["1"] == 6 * 23  # 60 s at 20 Hz: 23 windows of 100/50
    assert summary["samples_per_user_class"]["3"]["lying"] == 1200
    assert "SYNTHETIC" in summary["report"]["notes"][0]


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "info", "--dataset", "synthetic", "--window", "40", "--stride", "40"]) == 0
    out = capsys.readouterr().out
    assert "dataset synthetic: 12 users, 6 classes" in out
    assert "30 (1200)" in out  # windows (samples) per user and class
    assert "load report" in out


def test_missing_dataset_exit_2_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "info", "--dataset", "hapt", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path) in err and "labels.txt" in err


def test_bad_window_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "info", "--dataset", "synthetic", "--window", "10"]) == 2
    assert "window length must be an integer in [20, 200]" in capsys.readouterr().err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["data", "info", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "--dataset" in out and "--json" in out and "--data-dir" in out


def test_console_script_missing_wisdm_exits_2(tmp_path: Path) -> None:
    env = {**os.environ, "CI": "1", "FEDHAR_DATA_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "fedhar.cli", "data", "info", "--dataset", "wisdm"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "WISDM_ar_latest.tar.gz" in done.stderr


@pytest.mark.realdata
def test_real_wisdm2019_and_hapt_json(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["data", "info", "--dataset", "wisdm2019", "--data-dir", str(data_dir), "--json"]) == 0
    )
    w = json.loads(capsys.readouterr().out)
    assert len(w["users"]) == 22
    assert w["classes"] == ["walking", "jogging", "stairs", "sitting", "standing"]
    assert w["windows_per_user"]["1609"] == 280 and sum(w["windows_per_user"].values()) == 7763
    assert main(["data", "info", "--dataset", "hapt", "--data-dir", str(data_dir), "--json"]) == 0
    h = json.loads(capsys.readouterr().out)
    assert len(h["users"]) == 30 and h["samples_total"] == 748_406
