"""The real windows and real adaptive classifiers a study's ``replay:`` section points at.

The windows of each replayed user are its test windows TS_i, cut and split exactly as the
``fedhar adaptive`` run that trained the models cut and split them (same scenario: dataset,
window, stride, seed, held-out users, time split). The general model (``model.pt``) serves
until the device's first completed personalization job, the user's personalized model
(``users/<id>/model.pt``) after it. ``fedhar adaptive`` fine-tunes every layer, so one
personalized model exists per user: it serves after Full and after TL jobs alike, and the
row says so instead of inventing a TL model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedhar.adaptive.artifact import load_classifier, load_model
from fedhar.data.types import WindowSet
from fedhar.schema.adaptive import load_adaptive_scenario
from fedhar.schema.study import ReplaySection
from fedhar.studies.adaptive import load_windows, split_users
from fedhar.wearable.replay import Replay
from fedhar.wearable.schedule import DailySchedule

ADAPTIVE_HINT = (
    "run `fedhar adaptive` on the scenario of replay.adaptive_scenario first (e.g. "
    "`fedhar adaptive scenarios/wisdm2019_adaptive.yaml --out runs/wisdm2019_adaptive`), or "
    "point replay.adaptive_dir (or `fedhar study --adaptive-dir`) at its output"
)


@dataclass
class UserReplay:
    """One replayed user.

    Attributes:
        user: the held-out user's id.
        replay: its TS_i windows, schedule and classifiers by personalization mode.
        models: which saved model serves each mode (``none``, ``tl``, ``full``).
        n_windows: windows in TS_i.
    """

    user: str
    replay: Replay
    models: dict[str, str]
    n_windows: int


def resolve_adaptive_dir(section: ReplaySection, base_dir: Path, override: str | None) -> Path:
    """The adaptive output directory: ``override`` (command line) if given, else the
    section's ``adaptive_dir`` relative to ``base_dir``."""
    if override is not None:
        return Path(override)
    if section.adaptive_dir is None:
        raise ValueError(
            f"replay.adaptive_dir: not set and no --adaptive-dir given; {ADAPTIVE_HINT}"
        )
    path = Path(section.adaptive_dir)
    return path if path.is_absolute() else base_dir / path


def check_adaptive_dir(adaptive_dir: Path) -> None:
    """Raises ``ValueError`` naming the path and the fix when the run's files are missing."""
    for name in ("model.pt", "modes.csv"):
        if not (adaptive_dir / name).is_file():
            raise ValueError(f"replay: {adaptive_dir / name} does not exist; {ADAPTIVE_HINT}")


def load_user_replays(
    section: ReplaySection, base_dir: Path, adaptive_dir: Path
) -> list[UserReplay]:
    """Every replayed user's windows and classifiers; raises ``ValueError`` naming the file
    and the fix when the models are missing or were not trained on the scenario's windows."""
    check_adaptive_dir(adaptive_dir)
    scenario_path = Path(section.adaptive_scenario)
    if not scenario_path.is_absolute():
        scenario_path = base_dir / scenario_path
    scenario, cfg = load_adaptive_scenario(scenario_path)
    ds, ws = load_windows(scenario, section.data_dir)
    split = split_users(ds, ws, scenario, cfg)
    general, general_norm = load_classifier(adaptive_dir / "model.pt")
    net, _, _ = load_model(adaptive_dir / "model.pt")
    expected = (net.spec.input_channels, net.spec.input_length)
    if ws.x.shape[1:] != expected:
        raise ValueError(
            f"replay: {scenario_path} cuts windows of shape (C, T) = {ws.x.shape[1:]}, but "
            f"{adaptive_dir / 'model.pt'} expects {expected}; use the scenario that trained it"
        )
    trained = general_norm.to_dict()
    if not all(np.allclose(trained[k], split.normalizer.to_dict()[k], rtol=1e-6) for k in trained):
        raise ValueError(
            f"replay: {adaptive_dir / 'model.pt'} was not trained on the windows of "
            f"{scenario_path} (its input normalizer differs); use the scenario that trained it"
        )
    users_dir = adaptive_dir / "users"
    users = section.users or sorted(
        p.name for p in users_dir.glob("*") if (p / "model.pt").is_file()
    )
    if not users:
        raise ValueError(f"replay: no personalized model under {users_dir}; {ADAPTIVE_HINT}")
    schedule = DailySchedule.from_pairs(section.schedule)
    result = []
    for user in users:
        if user not in split.users:
            raise ValueError(
                f"replay.users: {user!r} is not a held-out user of {scenario_path}; "
                f"expected one of {sorted(split.users)}"
            )
        path = users_dir / user / "model.pt"
        if not path.is_file():
            raise ValueError(f"replay.users: {path} does not exist; {ADAPTIVE_HINT}")
        mine, _ = load_classifier(path)
        x, y = split.users[user][1]
        n = len(y)
        windows = WindowSet(
            np.ascontiguousarray(x, dtype=np.float32),
            np.asarray(y, dtype=np.int64),
            np.full(n, user),
            np.arange(n, dtype=np.int64),
        )
        replay = Replay(
            windows=windows,
            classes=list(ds.classes),
            schedule=schedule,
            classifiers={"none": general.classify, "tl": mine.classify, "full": mine.classify},
            batch_size=section.batch_size,
        )
        personal = str(path)
        models = {
            "none": str(adaptive_dir / "model.pt"),
            "full": personal,
            "tl": f"{personal} (the Full fine-tune: fedhar adaptive trains no TL model)",
        }
        result.append(UserReplay(user, replay, models, n))
    return result
