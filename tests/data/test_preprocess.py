"""Windowing, resampling and normalisation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedhar.data.preprocess import Normalizer, make_windows, resample
from fedhar.data.types import HarDataset, Segment


def _segment(user: str, label: int, t: np.ndarray, fs: float = 20.0) -> Segment:
    """A segment whose sample values encode (segment id, sample index) so windows can be
    traced back: channel 0 = sample index, channel 1 = label, channel 2 = time."""
    n = t.shape[0]
    signal = np.stack([np.arange(n), np.full(n, label), t], axis=1).astype(np.float32)
    return Segment(user=user, label=label, signal=signal, fs=fs, t=t)


@st.composite
def datasets(draw: st.DrawFn) -> tuple[HarDataset, float]:
    max_gap = draw(st.sampled_from([0.5, 1.0, 2.0]))
    segments = []
    for user in ["1", "2"]:
        for label in draw(st.lists(st.integers(0, 2), min_size=1, max_size=4)):
            n = draw(st.integers(0, 300))
            steps = np.full(max(n - 1, 0), 0.05)
            for index in draw(st.lists(st.integers(0, max(n - 2, 0)), max_size=3)):
                if n > 1:
                    steps[index] = draw(st.sampled_from([0.4, 0.9, 1.5, 3.0]))
            t = np.concatenate(([0.0], np.cumsum(steps)))[:n]
            segments.append(_segment(user, label, t))
    return HarDataset("test", ["a", "b", "c"], ["i", "label", "t"], 20.0, segments), max_gap


@settings(max_examples=60, deadline=None)
@given(data=datasets(), length=st.integers(20, 60), stride=st.integers(1, 70))
def test_windows_never_cross_segments_or_gaps(
    data: tuple[HarDataset, float], length: int, stride: int
) -> None:
    ds, max_gap = data
    ws = make_windows(ds, length, stride, max_gap_s=max_gap)
    assert ws.x.shape == (len(ws), 3, length) and ws.x.dtype == np.float32
    index, label, t = ws.x[:, 0], ws.x[:, 1], ws.x[:, 2]
    # consecutive samples of one segment: indices step by exactly 1, one label, no gap
    assert np.all(np.diff(index, axis=1) == 1)
    assert np.all(label == label[:, :1]) and np.all(label[:, 0] == ws.y)
    assert np.all(np.diff(t, axis=1) <= max_gap + 1e-6)
    # order is 0..n-1 within each (user, class); start grows with order
    for user in ("1", "2"):
        for cls in range(3):
            rows = np.flatnonzero((ws.users == user) & (ws.y == cls))
            assert sorted(ws.order[rows].tolist()) == list(range(rows.size))
            assert np.all(np.diff(ws.start[rows[np.argsort(ws.order[rows])]]) > 0)
    # the expected count: every gap-free run of r samples yields floor((r - L) / S) + 1
    expected = 0
    for seg in ds.segments:
        edges = np.concatenate(([0], np.flatnonzero(np.diff(seg.t) > max_gap) + 1, [len(seg.t)]))
        for run in np.diff(edges):
            expected += (run - length) // stride + 1 if run >= length else 0
    assert len(ws) == expected


def test_start_indices_lay_segments_end_to_end() -> None:
    t = np.arange(100) * 0.05
    ds = HarDataset("t", ["a"], ["i", "l", "t"], 20.0, [_segment("1", 0, t), _segment("1", 0, t)])
    ws = make_windows(ds, 50, 25)
    assert ws.start.tolist() == [0, 25, 50, 100, 125, 150]
    assert ws.order.tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("length", [19, 201, 50.0, True])
def test_window_length_is_validated(length: object) -> None:
    ds = HarDataset("t", ["a"], ["x"], 20.0, [])
    with pytest.raises(ValueError, match=r"window length must be an integer in \[20, 200\]"):
        make_windows(ds, length, 10)  # type: ignore[arg-type]


def test_stride_is_validated() -> None:
    with pytest.raises(ValueError, match="stride"):
        make_windows(HarDataset("t", ["a"], ["x"], 20.0, []), 50, 0)


def test_no_segments_gives_empty_windows_of_the_right_shape() -> None:
    ws = make_windows(HarDataset("t", ["a"], ["x", "y"], 20.0, []), 40, 20)
    assert ws.x.shape == (0, 2, 40) and len(ws) == 0


def test_resample_25_to_20_hz_keeps_a_2_hz_tone_and_removes_an_11_hz_one() -> None:
    fs = 25.0
    t = np.arange(int(60 * fs)) / fs + np.random.default_rng(0).normal(0, 0.001, int(60 * fs))
    t.sort()
    tone = np.sin(2 * np.pi * 2.0 * t)
    alias = 0.5 * np.sin(2 * np.pi * 11.0 * t)
    seg = Segment("1", 0, np.stack([tone + alias], axis=1).astype(np.float32), fs, t - t[0])
    out = resample(seg, 20.0)
    assert out.fs == 20.0
    np.testing.assert_allclose(np.diff(out.t), 0.05, atol=1e-9)
    spectrum = np.abs(np.fft.rfft(out.signal[:, 0])) / out.signal.shape[0] * 2
    freqs = np.fft.rfftfreq(out.signal.shape[0], 0.05)
    assert spectrum[np.argmin(np.abs(freqs - 2.0))] == pytest.approx(1.0, abs=0.05)
    # 11 Hz would alias to 9 Hz at 20 Hz; the low-pass must have removed most of it
    assert spectrum[np.argmin(np.abs(freqs - 9.0))] < 0.05


def test_resample_keeps_gaps_instead_of_interpolating_across_them() -> None:
    t = np.concatenate([np.arange(50) / 25.0, 10.0 + np.arange(50) / 25.0])
    seg = Segment("1", 0, np.ones((100, 3), np.float32), 25.0, t)
    out = resample(seg, 20.0)
    steps = np.diff(out.t)
    assert np.sum(steps > 1.0) == 1
    assert out.signal.shape[0] == 2 * (int(49 / 25 * 20) + 1)


def test_normalizer_fits_per_channel_and_round_trips() -> None:
    rng = np.random.default_rng(1)
    train = rng.normal([[0.0], [5.0], [-3.0]], [[1.0], [2.0], [0.5]], (200, 3, 50))
    norm = Normalizer().fit(train)
    z = norm.transform(train)
    np.testing.assert_allclose(z.mean(axis=(0, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(0, 2)), 1.0, atol=1e-4)
    again = Normalizer.from_dict(norm.to_dict())
    np.testing.assert_array_equal(again.transform(train[:5]), norm.transform(train[:5]))
    const = Normalizer().fit(np.ones((2, 1, 20)))
    assert const.to_dict() == {"mean": [1.0], "std": [1.0]}
    with pytest.raises(ValueError, match=r"\[N, 3, T\]"):
        norm.transform(np.zeros((1, 2, 50)))
