"""The synthetic generator: determinism, physics, and that users differ enough to matter."""

from __future__ import annotations

import numpy as np
import pytest

from fedhar.data.preprocess import make_windows
from fedhar.data.registry import load_dataset
from fedhar.data.synthetic import GRAVITY, generate


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = generate(4, 10.0, seed=7), generate(4, 10.0, seed=7), generate(4, 10.0, seed=8)
    for sa, sb in zip(a.segments, b.segments, strict=True):
        np.testing.assert_array_equal(sa.signal, sb.signal)
    assert not np.array_equal(a.segments[0].signal, c.segments[0].signal)


def test_adding_users_or_dropping_classes_leaves_existing_data_unchanged() -> None:
    small, large = generate(2, 5.0, seed=1), generate(5, 5.0, seed=1)
    np.testing.assert_array_equal(small.segments[-1].signal, large.segments[11].signal)
    subset = generate(2, 5.0, seed=1, classes=["sitting", "walking"])
    assert subset.classes == ["sitting", "walking"]
    sitting = [s for s in subset.segments if s.label == 0][0]
    np.testing.assert_array_equal(sitting.signal, small.segments[3].signal)


def test_shapes_units_and_report() -> None:
    ds = load_dataset("synthetic", n_users=3, seconds_per_activity=30.0)
    assert ds.users == ["1", "2", "3"]
    assert ds.classes == ["walking", "jogging", "stairs", "sitting", "standing", "lying"]
    assert all(s.signal.shape == (600, 3) and s.signal.dtype == np.float32 for s in ds.segments)
    assert "SYNTHETIC" in ds.report.notes[0]
    assert ds.report.records_ok == 3 * 6 * 600


def test_postures_carry_gravity_in_different_directions() -> None:
    ds = generate(6, 20.0, seed=0)
    for user in ds.users:
        means = {ds.classes[s.label]: s.signal.mean(axis=0) for s in ds.segments if s.user == user}
        for posture in ("sitting", "standing", "lying"):
            assert np.linalg.norm(means[posture]) == pytest.approx(GRAVITY, rel=0.05)
        cos = np.dot(means["sitting"], means["standing"]) / GRAVITY**2
        assert cos < 0.6  # sitting tilts the thigh by about 75 degrees


def test_gait_frequency_is_in_the_human_range_and_jogging_is_faster() -> None:
    ds = generate(6, 30.0, seed=0)
    peaks: dict[str, list[float]] = {"walking": [], "jogging": [], "stairs": []}
    for seg in ds.segments:
        name = ds.classes[seg.label]
        if name in peaks:
            x = np.linalg.norm(seg.signal, axis=1)
            spectrum = np.abs(np.fft.rfft(x - x.mean()))
            freqs = np.fft.rfftfreq(x.size, 1 / ds.fs)
            band = (freqs > 1.0) & (freqs < 4.0)
            peaks[name].append(float(freqs[band][np.argmax(spectrum[band])]))
    assert all(1.2 <= f <= 2.5 for f in peaks["walking"])
    assert all(2.0 <= f <= 3.6 for f in peaks["jogging"])
    assert np.mean(peaks["jogging"]) > np.mean(peaks["walking"]) > np.mean(peaks["stairs"])


def test_users_differ_more_than_windows_of_one_user() -> None:
    """Per-user mounting rotation: a user's standing mean lies far from other users'."""
    ds = generate(8, 20.0, seed=0)
    ws = make_windows(ds, 100, 50)
    standing = ds.classes.index("standing")
    centres = {}
    spreads = []
    for user in ds.users:
        x = ws.x[(ws.users == user) & (ws.y == standing)].mean(axis=2)
        centres[user] = x.mean(axis=0)
        spreads.append(np.linalg.norm(x - centres[user], axis=1).mean())
    between = [np.linalg.norm(centres[a] - centres[b]) for a in ds.users for b in ds.users if a < b]
    assert np.median(between) > 5 * np.mean(spreads)


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="n_users"):
        generate(0)
    with pytest.raises(ValueError, match="unknown option"):
        load_dataset("synthetic", users=3)
