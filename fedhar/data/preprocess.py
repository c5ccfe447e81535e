"""Resampling, fixed-length windowing and per-channel normalisation.

Layouts: a segment's signal is ``[T, C]``; windows are ``[N, C, T]`` (PyTorch's Conv1d layout).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from fedhar.data.types import HarDataset, Segment, WindowSet

WINDOW_LENGTH_RANGE = (20, 200)
_LOWPASS_TAPS = 31


def _runs(t: np.ndarray, max_gap_s: float) -> list[tuple[int, int]]:
    """Half-open index ranges of ``t`` with no step above ``max_gap_s`` seconds."""
    breaks = np.flatnonzero(np.diff(t) > max_gap_s) + 1
    edges = np.concatenate(([0], breaks, [t.shape[0]]))
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def _lowpass(signal: np.ndarray, cutoff_hz: float, fs: float) -> np.ndarray:
    """Zero-phase windowed-sinc (Hamming) low-pass of a ``[T, C]`` signal; edges are
    reflected so the filter does not pull them towards zero."""
    n = signal.shape[0]
    half = _LOWPASS_TAPS // 2
    k = np.arange(-half, half + 1)
    kernel = np.sinc(2.0 * cutoff_hz / fs * k) * np.hamming(_LOWPASS_TAPS)
    kernel /= kernel.sum()
    pad = min(half, n - 1)
    padded = np.pad(signal, ((pad, pad), (0, 0)), mode="reflect") if pad > 0 else signal
    out = np.empty_like(signal, dtype=np.float64)
    for c in range(signal.shape[1]):
        full = np.convolve(padded[:, c], kernel, mode="same")
        out[:, c] = full[pad : pad + n]
    return out


def resample(seg: Segment, target_fs: float, *, max_gap_s: float = 1.0) -> Segment:
    """The segment on a uniform grid at ``target_fs`` Hz.

    Each stretch without a gap above ``max_gap_s`` seconds is resampled on its own grid
    (starting at its first sample time), so gaps are kept in ``t`` and never interpolated
    across. The source rate is the segment's actual timing (``seg.t``), so clock jitter is
    absorbed. When downsampling, a zero-phase low-pass at 0.45 × ``target_fs`` removes
    content that would alias. Linear interpolation between samples.

    Args:
        seg: ``signal [T, C]``, ``t [T]`` seconds.
        target_fs: output rate in Hz, > 0.

    Returns:
        A new segment with ``fs = target_fs``; signal float32 ``[T', C]``.
    """
    if not target_fs > 0:
        raise ValueError(f"target_fs must be > 0 Hz, got {target_fs}")
    pieces_x: list[np.ndarray] = []
    pieces_t: list[np.ndarray] = []
    for a, b in _runs(seg.t, max_gap_s):
        t = seg.t[a:b]
        x = seg.signal[a:b].astype(np.float64)
        duration = t[-1] - t[0]
        grid = t[0] + np.arange(int(np.floor(duration * target_fs + 1e-9)) + 1) / target_fs
        if b - a > 1:
            source_fs = (b - a - 1) / duration if duration > 0 else target_fs
            if target_fs < source_fs:
                x = _lowpass(x, 0.45 * target_fs, source_fs)
            x = np.stack([np.interp(grid, t, x[:, c]) for c in range(x.shape[1])], axis=1)
        pieces_x.append(x)
        pieces_t.append(grid)
    channels = seg.signal.shape[1]
    signal = np.concatenate(pieces_x) if pieces_x else np.empty((0, channels))
    t = np.concatenate(pieces_t) if pieces_t else np.empty(0)
    return replace(
        seg, signal=signal.astype(np.float32), t=(t - t[0] if t.size else t), fs=float(target_fs)
    )


def make_windows(ds: HarDataset, length: int, stride: int, max_gap_s: float = 1.0) -> WindowSet:
    """Cuts every segment into windows of ``length`` samples every ``stride`` samples.

    A window never straddles two segments (so never two activities or users) and never
    contains a step in time above ``max_gap_s`` seconds. Trailing samples that do not fill a
    window are left out.

    Args:
        ds: the dataset; segments ordered by user then time.
        length: samples per window, 20–200 (e.g. 100 = 5 s at 20 Hz).
        stride: samples between window starts, >= 1 (``length // 2`` = 50 % overlap).
        max_gap_s: largest allowed step between consecutive sample times, seconds.

    Returns:
        A :class:`WindowSet` with ``x [N, C, length]`` float32, ``y``, ``users``, ``order``
        (chronological rank within (user, class)) and ``start`` (first-sample index in the
        (user, class) stream; segments are laid end to end).
    """
    lo, hi = WINDOW_LENGTH_RANGE
    if (
        isinstance(length, bool)
        or not isinstance(length, (int, np.integer))
        or not lo <= length <= hi
    ):
        raise ValueError(
            f"window length must be an integer in [{lo}, {hi}] samples, got {length!r}"
        )
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"window stride must be an integer >= 1 sample, got {stride!r}")
    if not max_gap_s > 0:
        raise ValueError(f"max_gap_s must be > 0 seconds, got {max_gap_s!r}")
    n_channels = len(ds.channels)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    users: list[np.ndarray] = []
    orders: list[np.ndarray] = []
    starts: list[np.ndarray] = []
    next_rank: dict[tuple[str, int], int] = {}
    stream_offset: dict[tuple[str, int], int] = {}
    for seg in ds.segments:
        key = (seg.user, seg.label)
        offset = stream_offset.get(key, 0)
        stream_offset[key] = offset + seg.signal.shape[0]
        for a, b in _runs(seg.t, max_gap_s):
            if b - a < length:
                continue
            view = np.lib.stride_tricks.sliding_window_view(seg.signal[a:b], length, axis=0)
            windows = view[::stride]
            n = windows.shape[0]
            rank = next_rank.get(key, 0)
            next_rank[key] = rank + n
            xs.append(np.ascontiguousarray(windows, dtype=np.float32))
            ys.append(np.full(n, seg.label, dtype=np.int64))
            users.append(np.full(n, seg.user))
            orders.append(np.arange(rank, rank + n, dtype=np.int64))
            starts.append(offset + a + stride * np.arange(n, dtype=np.int64))
    if not xs:
        return WindowSet(
            np.empty((0, n_channels, length), np.float32),
            np.empty(0, np.int64),
            np.empty(0, dtype=str),
            np.empty(0, np.int64),
            np.empty(0, np.int64),
        )
    return WindowSet(
        np.concatenate(xs),
        np.concatenate(ys),
        np.concatenate(users).astype(str),
        np.concatenate(orders),
        np.concatenate(starts),
    )


class Normalizer:
    """Per-channel standardisation ``(x - mean) / std`` fitted on training windows only.

    Attributes:
        mean: ``[C]`` float64 per-channel mean, in the data's units.
        std: ``[C]`` float64 per-channel standard deviation (1.0 where a channel is constant).
    """

    def __init__(self, mean: np.ndarray | None = None, std: np.ndarray | None = None) -> None:
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.std = None if std is None else np.asarray(std, dtype=np.float64)

    def fit(self, x: np.ndarray) -> Normalizer:
        """Fits mean and std per channel over all windows and time steps of ``x [N, C, T]``."""
        if x.ndim != 3 or x.shape[0] == 0:
            raise ValueError(
                f"Normalizer.fit expects non-empty windows [N, C, T], got shape {x.shape}"
            )
        values = x.astype(np.float64)
        self.mean = values.mean(axis=(0, 2))
        std = values.std(axis=(0, 2))
        self.std = np.where(std > 1e-12, std, 1.0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``x [N, C, T]`` standardised per channel, float32."""
        if self.mean is None or self.std is None:
            raise ValueError("Normalizer.transform called before fit (or from_dict)")
        if x.ndim != 3 or x.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"Normalizer.transform expects [N, {self.mean.shape[0]}, T], got shape {x.shape}"
            )
        return ((x - self.mean[None, :, None]) / self.std[None, :, None]).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        """Plain data: ``{"mean": [C floats], "std": [C floats]}``."""
        if self.mean is None or self.std is None:
            raise ValueError("Normalizer.to_dict called before fit")
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> Normalizer:
        """The inverse of :meth:`to_dict`."""
        mean = np.asarray(data["mean"], dtype=np.float64)
        std = np.asarray(data["std"], dtype=np.float64)
        if mean.shape != std.shape or mean.ndim != 1:
            raise ValueError(
                f"Normalizer.from_dict: mean {mean.shape} and std {std.shape} must be [C]"
            )
        return cls(mean, std)
