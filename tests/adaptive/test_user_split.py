"""The adaptive study's ``users`` split: whole users train, validate and test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedhar.cli import main
from fedhar.schema.adaptive import load_adaptive_scenario
from fedhar.studies.adaptive import load_windows, split_users

SCENARIO = """
name: syn_users
seed: 0
data: {dataset: synthetic, classes: [walking, jogging, sitting, standing], window: 40,
       stride: 20, options: {n_users: 8, seconds_per_activity: 20}}
adaptive:
  split: users
  test_users: %s
  val_fraction: 0.25
  holdout_users_fraction: 0.5
"""


def _user_rows(ws_users: np.ndarray, x: np.ndarray, part: np.ndarray) -> set[str]:
    """The users whose (normalized) windows make up ``part`` (matched row by row on ``x``)."""
    index = {row.tobytes(): str(u) for row, u in zip(x, ws_users, strict=True)}
    return {index[row.tobytes()] for row in part}


def test_whole_users_train_validate_and_test(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO % "['2', '5']")
    scenario, cfg = load_adaptive_scenario(path)
    ds, ws = load_windows(scenario, None)
    split = split_users(ds, ws, scenario, cfg)
    x = split.normalizer.transform(ws.x)
    train = _user_rows(ws.users, x, split.train[0])
    val = _user_rows(ws.users, x, split.val[0])
    test = _user_rows(ws.users, x, split.test[0])
    assert test == {"2", "5"}
    assert len(val) == 2 and not val & train and not val & test and not train & test
    assert train | val | test == {str(u) for u in ds.users}
    # Every window of a test user is tested, none is lost or duplicated.
    assert len(split.train[1]) + len(split.val[1]) + len(split.test[1]) == len(ws.y)
    # Personalization users are drawn from the test users, never from the training ones.
    assert len(split.users) == 1 and set(split.users) <= test


def test_an_unknown_test_user_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO % "['2', '99']")
    assert main(["adaptive", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "adaptive.test_users: users ['99'] have no windows" in err[0]
    assert "Traceback" not in err[0]
