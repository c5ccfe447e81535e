"""A battery-policy study that replays real windows through a real adaptive classifier
(``fedhar adaptive`` on a small synthetic dataset): F1 and the easy share are measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from fedhar.adaptive.artifact import load_classifier
from fedhar.cli import main
from fedhar.schema.adaptive import load_adaptive_scenario
from fedhar.schema.base import SchemaError
from fedhar.studies.adaptive import load_windows, split_users
from fedhar.studies.battery import run_study
from fedhar.wearable.modes import ModesTable
from fedhar.wearable.schedule import DailySchedule

ADAPTIVE = """
name: syn
seed: 0
data: {dataset: synthetic, classes: [walking, jogging, sitting, standing], window: 40,
       stride: 20, options: {n_users: 8, seconds_per_activity: 40}}
adaptive:
  grid_channels: [[4, 8, 8], [8, 8, 16]]
  grid_kernels: [7]
  search_epochs: 3
  epochs: 4
  personalize_users: 1
  personalize_epochs: 3
  thresholds: 10
"""

SCHEDULE = [[0, "sitting"], [8, "walking"], [12, "jogging"], [14, "standing"], [20, "sitting"]]

STUDY = """
replay:
  adaptive_dir: {adaptive_dir}
  adaptive_scenario: adaptive.yaml
  schedule: {schedule}
battery:
  modes: {{clock_hz: 1.0e8}}
study:
  days: 2
  seed: 3
  capacity_mah: [60]
  charging: {{never: {{name: never}}}}
  personalization:
    always_full: {{name: always_full}}
    never: {{name: never}}
  threshold:
    th0: {{name: static, params: {{th: 0.0}}}}
    th1: {{name: static, params: {{th: 1.0}}}}
"""

DAY = 86400.0
WINDOW_S = 10.0


@pytest.fixture(scope="module")
def adaptive_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output of a real ``fedhar adaptive`` run on synthetic data (one personalized user)."""
    root = tmp_path_factory.mktemp("adaptive")
    (root / "adaptive.yaml").write_text(ADAPTIVE)
    assert main(["adaptive", str(root / "adaptive.yaml"), "--out", str(root / "out")]) == 0
    return root / "out"


def write_study(directory: Path, adaptive_dir: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "adaptive.yaml").write_text(ADAPTIVE)
    path = directory / "study.yaml"
    path.write_text(STUDY.format(adaptive_dir=adaptive_dir, schedule=json.dumps(SCHEDULE)))
    return path


def rows_by_policy(result: dict[str, object]) -> dict[str, dict[str, object]]:
    return {r["policy"]: r for r in result["rows"]}  # type: ignore[index, union-attr]


def model_on_schedule(
    adaptive_dir: Path, scenario: Path, th: float, days: int, model: Path, day: int | None = None
) -> tuple[float, float]:
    """Macro F1 and easy share of ``model`` on the windows the schedule replays (all ``days``,
    or only day ``day``, 0-based), computed here without the simulator: window ``k`` at
    ``k · 10 s`` is the next window, cyclically, of the user's TS_i windows of the scheduled
    class."""
    s, cfg = load_adaptive_scenario(scenario)
    ds, ws = load_windows(s, None)
    user = next(p.name for p in (adaptive_dir / "users").iterdir())
    x, y = split_users(ds, ws, s, cfg).users[user][1]
    k = np.arange(int(days * DAY / WINDOW_S))
    cls = DailySchedule.from_pairs(SCHEDULE).class_at(k * WINDOW_S, ds.classes)
    index = np.empty_like(k)
    for c in np.unique(cls):
        pool = np.flatnonzero(y == c)
        index[cls == c] = pool[k[cls == c] % pool.size]
    if day is not None:
        index = index[(k * WINDOW_S // DAY).astype(int) == day]
    clf, _ = load_classifier(model)
    pred, easy = clf.classify(np.ascontiguousarray(x[index], dtype=np.float32), th)
    return float(f1_score(y[index], pred, average="macro")), float(easy.mean())


def test_replay_study_measures_f1_and_easy_share(adaptive_dir: Path, tmp_path: Path) -> None:
    scenario = write_study(tmp_path / "a", adaptive_dir)
    result = run_study(scenario, tmp_path / "out_a", log=lambda _: None)
    rows = rows_by_policy(result)
    assert len(rows) == 4
    for row in rows.values():
        assert row["accuracy_source"] == "replay"
        assert 0.0 <= row["mean_f1"] <= 1.0
        assert row["days_to_first_depletion"] is None
        assert len(row["f1_by_day"]) == 2
        assert "no TL model" in row["replay_models"]["tl"]
    # Threshold physics: margin > ~0 commits nearly every window to M_s, a high threshold
    # fewer, and the hard windows cost more inference energy.
    assert rows["never+th0"]["easy_share"] > 0.9
    assert rows["never+th1"]["easy_share"] < rows["never+th0"]["easy_share"]
    assert rows["never+th0"]["energy_j"]["inference"] < rows["never+th1"]["energy_j"]["inference"]
    # The general model's row is the macro F1 and easy share of that model on the replayed
    # windows at the Pareto mode nearest the policy's threshold.
    th = ModesTable.from_csv(adaptive_dir / "modes.csv").nearest(1.0).th
    adaptive = tmp_path / "a" / "adaptive.yaml"
    f1, easy = model_on_schedule(adaptive_dir, adaptive, th, 2, adaptive_dir / "model.pt")
    assert rows["never+th1"]["mean_f1"] == pytest.approx(f1, abs=1e-9)
    assert rows["never+th1"]["easy_share"] == pytest.approx(easy, abs=1e-12)
    # The Full job finishes on day 1: day 2 runs the personalized model only, and its F1 is that
    # model's on day 2's windows; the never-personalizing device keeps the general model.
    assert rows["always_full+th1"]["full_jobs"] >= 1
    personal = next((adaptive_dir / "users").iterdir()) / "model.pt"
    f1_day2, _ = model_on_schedule(adaptive_dir, adaptive, th, 2, personal, day=1)
    assert rows["always_full+th1"]["f1_by_day"][1] == pytest.approx(f1_day2, abs=1e-9)
    assert rows["always_full+th1"]["f1_by_day"][1] != rows["never+th1"]["f1_by_day"][1]


def test_replay_study_is_deterministic_and_honours_the_adaptive_dir_flag(
    adaptive_dir: Path, tmp_path: Path
) -> None:
    scenario = write_study(tmp_path / "b", tmp_path / "missing")
    with pytest.raises(SchemaError) as err:
        run_study(scenario, tmp_path / "out0", log=lambda _: None)
    message = str(err.value)
    assert str(tmp_path / "missing" / "model.pt") in message
    assert "fedhar adaptive" in message and "--adaptive-dir" in message
    first = run_study(
        scenario, tmp_path / "out1", log=lambda _: None, adaptive_dir=str(adaptive_dir)
    )
    second = run_study(
        scenario, tmp_path / "out2", log=lambda _: None, adaptive_dir=str(adaptive_dir)
    )
    assert first["rows"] == second["rows"]
