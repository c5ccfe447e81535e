"""Real windows replayed along a schedule and decided by a real (scikit-learn) adaptive
classifier: accuracy and easy share are measured, not taken from a table."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from fedhar.data.types import WindowSet
from fedhar.schema.policies import policy
from fedhar.wearable.policies import make_personalization_policy
from fedhar.wearable.replay import Replay
from fedhar.wearable.schedule import DailySchedule
from fedhar.wearable.simulation import Wearable

from .helpers import config

CLASSES = ["Sitting", "Walking", "Jogging"]
DAY = 86400.0


def windows(rng: np.random.Generator, amplitudes: list[float], n_per_class: int = 60) -> WindowSet:
    """``[N, 3, 40]`` accelerometer-like windows: an oscillation whose amplitude is the
    class's (user-specific: a calm jogger jogs like others walk fast)."""
    xs, ys = [], []
    t = np.arange(40) / 20.0
    for label, amp in enumerate(amplitudes):
        for _ in range(n_per_class):
            phase = rng.uniform(0, 2 * np.pi, size=(3, 1))
            x = amp * np.sin(2 * np.pi * 2.0 * t + phase)
            xs.append(x + rng.normal(0, 0.6, size=(3, 40)))
            ys.append(label)
    n = len(ys)
    return WindowSet(
        np.asarray(xs, dtype=np.float32),
        np.asarray(ys, dtype=np.int64),
        np.array(["u"] * n),
        np.arange(n, dtype=np.int64),
    )


def features(x: np.ndarray, channels: int) -> np.ndarray:
    """Per-channel mean and standard deviation of ``x [N, C, T]`` for the first channels."""
    part = x[:, :channels]
    return np.concatenate([part.mean(axis=2), part.std(axis=2)], axis=1)


def adaptive(train: WindowSet):
    """A two-stage classifier: a small model on one channel, a large one on all three;
    windows whose small-model score margin exceeds ``th`` are easy."""
    small = LogisticRegression(max_iter=500).fit(features(train.x, 1), train.y)
    large = LogisticRegression(max_iter=500).fit(features(train.x, 3), train.y)

    def classify(x: np.ndarray, th: float) -> tuple[np.ndarray, np.ndarray]:
        proba = small.predict_proba(features(x, 1))
        top2 = np.sort(proba, axis=1)[:, -2:]
        easy = (top2[:, 1] - top2[:, 0]) > th
        pred = np.where(easy, proba.argmax(axis=1), large.predict(features(x, 3)))
        return pred.astype(np.int64), easy

    return classify


def make_replay(rng: np.random.Generator) -> Replay:
    user = windows(rng, [0.05, 0.7, 1.5])
    others = windows(rng, [0.05, 1.0, 2.5])
    general = adaptive(others)
    return Replay(
        windows=user,
        classes=CLASSES,
        schedule=DailySchedule.from_pairs(
            [[0, "Sitting"], [7, "Walking"], [8, "Sitting"], [18, "Jogging"], [19, "Sitting"]]
        ),
        classifiers={"none": general, "tl": adaptive(user), "full": adaptive(user)},
    )


def test_replayed_windows_follow_the_schedule_and_personalization_lifts_measured_f1():
    rng = np.random.default_rng(0)
    replay = make_replay(rng)
    cfg = config(capacity_mah=100.0, personalization="always_full", threshold_params={"th": 0.5})
    device = Wearable(cfg, replay=replay)
    day1 = device.advance(DAY)
    day2 = device.advance(2 * DAY)
    assert day1.inferences == day2.inferences == 8640
    confusion = np.array(device.state.totals.confusion)
    per_class = confusion.sum(axis=1) / confusion.sum()
    assert per_class == pytest.approx([22 / 24, 1 / 24, 1 / 24], abs=1e-3)
    assert day1.full_jobs == 1 and day1.model == "full"
    # The job finished early on day 1, so day 2 runs the personalized model only.
    assert day2.f1 > 0.9
    never = replace(
        cfg, personalization=make_personalization_policy(policy("personalization", "never"))
    )
    general = Wearable(never, replay=replay)
    assert general.advance(DAY).f1 < day2.f1 - 0.05


def test_threshold_changes_the_measured_easy_share_and_the_energy():
    rng = np.random.default_rng(1)
    replay = make_replay(rng)
    shares, energy = [], []
    for th in (0.0, 1.0):
        cfg = config(capacity_mah=100.0, personalization="never", threshold_params={"th": th})
        report = Wearable(cfg, replay=replay).advance(DAY)
        shares.append(report.easy_share)
        energy.append(report.energy_j["inference"])
    assert shares[0] > 0.5 > shares[1]
    assert energy[0] < energy[1]
    assert 0.0 < shares[0] < 1.0 or shares[1] == 0.0
