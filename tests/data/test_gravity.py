"""The UCI HAR gravity / body split and the 3-, 6- and 9-channel HAPT views."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedhar.data.gravity import butterworth_power_gain, split_gravity
from fedhar.data.hapt import CHANNEL_SETS, load_hapt
from fedhar.schema.scenario import HaptChannels

FS = 50.0


def test_constant_plus_fast_sine_splits_into_gravity_and_body() -> None:
    t = np.arange(3000) / FS
    fast = 0.5 * np.sin(2 * np.pi * 5.0 * t)
    total = np.stack([1.0 + fast, -0.3 + fast, 0.2 * np.ones_like(t)], axis=1)
    gravity, body = split_gravity(total, FS)
    middle = slice(500, 2500)  # 10 s clear of each end
    # 5 Hz is 16.7x the cutoff: the forward-backward gain there is G = 1 / (1 + 16.7^6) ~ 5e-8
    assert np.max(np.abs(gravity[middle] - [1.0, -0.3, 0.2])) < 1e-4
    assert np.max(np.abs(body[middle, 0] - fast[middle])) < 1e-4
    assert np.max(np.abs(body[middle, 2])) < 1e-5


def test_slow_sine_is_scaled_by_the_butterworth_power_gain() -> None:
    t = np.arange(5000) / FS
    for f in (0.1, 0.3, 0.6):
        gravity, _ = split_gravity(np.sin(2 * np.pi * f * t)[:, None].repeat(3, axis=1), FS)
        gain = float(butterworth_power_gain(np.array([f]), FS)[0])
        middle = slice(1500, 3500)
        fit = np.linalg.lstsq(
            np.stack([np.sin(2 * np.pi * f * t[middle]), np.cos(2 * np.pi * f * t[middle])], 1),
            gravity[middle, 0],
            rcond=None,
        )[0]
        assert fit[0] == pytest.approx(gain, abs=2e-4)  # in phase: zero-phase filter
        assert abs(fit[1]) < 2e-4
    assert float(butterworth_power_gain(np.array([0.3]), FS)[0]) == pytest.approx(0.5)


def test_nan_rows_stay_nan_and_runs_are_filtered_apart() -> None:
    total = np.ones((400, 3))
    total[200] = np.nan
    gravity, body = split_gravity(total, FS)
    assert np.isnan(gravity[200]).all() and np.isnan(body[200]).all()
    assert np.allclose(gravity[:200], 1.0, atol=1e-6) and np.allclose(gravity[201:], 1.0, atol=1e-6)


def test_schema_names_every_hapt_channel_set() -> None:
    assert set(HaptChannels.__args__) == set(CHANNEL_SETS)


def test_real_uci_har_view_channels_and_split(data_dir: Path) -> None:
    views = {name: load_hapt(data_dir, channels=name, users=["1"]) for name in CHANNEL_SETS}
    for name, ds in views.items():
        assert len(ds.channels) == 3 * len(CHANNEL_SETS[name])
        assert all(s.signal.shape[1] == len(ds.channels) for s in ds.segments)
    nine = views["uci_har"]
    assert len(nine.channels) == 9 and nine.fs == FS
    assert nine.channels[:3] == ["acc_x", "acc_y", "acc_z"]
    assert nine.channels[3:6] == ["body_acc_x", "body_acc_y", "body_acc_z"]
    acc, gyro = views["acc"], views["acc+gyro"]
    for s9, s3, s6 in zip(nine.segments, acc.segments, gyro.segments, strict=True):
        assert np.array_equal(s9.signal[:, :3], s3.signal)
        assert np.array_equal(s9.signal[:, 6:], s6.signal[:, 3:])
    # body + gravity sums back to the total; gravity is the slow part (about 1 g in norm)
    total = np.concatenate([s.signal[:, :3] for s in nine.segments])
    body = np.concatenate([s.signal[:, 3:6] for s in nine.segments])
    gravity = total - body
    assert np.allclose(gravity + body, total, atol=1e-6)
    assert np.median(np.linalg.norm(gravity, axis=1)) == pytest.approx(1.0, abs=0.05)
    assert abs(float(np.mean(body))) < 0.02
