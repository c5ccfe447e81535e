"""Plain data types that flow from the dataset loaders to windowing, splits and training."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass
class Segment:
    """One contiguous recording of one activity by one user.

    Attributes:
        user: user id as a string (``"1600"``, ``"7"``).
        label: class index into :attr:`HarDataset.classes`.
        signal: ``[T, C]`` float32 samples in the dataset's units (m/s² or g; see channels).
        fs: nominal sample rate in Hz after any resampling.
        t: ``[T]`` float64 sample times in seconds, relative to the segment start; gaps
            longer than the windowing limit split windows.
        source: file (and line range) the samples came from, for messages.
    """

    user: str
    label: int
    signal: np.ndarray
    fs: float
    t: np.ndarray
    source: str = ""


@dataclass
class Issue:
    """One malformed or suspicious record found while loading."""

    file: str
    line: int
    reason: str


@dataclass
class LoadReport:
    """What a loader read, kept, skipped and why. Nothing is dropped silently."""

    files: list[str] = field(default_factory=list)
    records_ok: int = 0
    records_skipped: int = 0
    issues: list[Issue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def skip(self, file: str, line: int, reason: str) -> None:
        """Counts one skipped record and remembers where and why."""
        self.records_skipped += 1
        self.issues.append(Issue(file, line, reason))


@dataclass
class HarDataset:
    """A loaded HAR dataset: every user's per-activity segments.

    Attributes:
        name: ``wisdm``, ``wisdm2019``, ``hapt`` or ``synthetic``.
        classes: class names; ``Segment.label`` indexes this list.
        channels: channel names, e.g. ``["acc_x", "acc_y", "acc_z"]``.
        fs: common sample rate in Hz of every segment.
        segments: all segments, ordered by user then time.
        report: the load report.
    """

    name: str
    classes: list[str]
    channels: list[str]
    fs: float
    segments: list[Segment]
    report: LoadReport = field(default_factory=LoadReport)

    def with_channels(self, indices: list[int]) -> HarDataset:
        """The same recordings with only the channels ``indices`` (into :attr:`channels`), in
        that order."""
        segments = [replace(s, signal=s.signal[:, indices]) for s in self.segments]
        names = [self.channels[i] for i in indices]
        return replace(self, channels=names, segments=segments)

    @property
    def users(self) -> list[str]:
        """Sorted unique user ids (numeric ids sort numerically)."""
        ids = {s.user for s in self.segments}
        return sorted(ids, key=lambda u: (0, int(u)) if u.isdigit() else (1, u))


@dataclass
class WindowSet:
    """Fixed-length windows.

    Attributes:
        x: ``[N, C, T]`` float32 windows.
        y: ``[N]`` int64 class indices.
        users: ``[N]`` user ids (numpy ``str`` array).
        order: ``[N]`` int64 chronological rank of each window within its (user, class) pair;
            chronological splits use it.
        start: ``[N]`` int64 index of each window's first sample in its (user, class) stream,
            that is the user's segments of that class laid end to end in time order (windows
            of different segments never share a sample index). ``None`` when unknown, e.g.
            for windows not built by :func:`fedhar.data.preprocess.make_windows`; the
            chronological split needs it to drop windows that straddle the split point.
    """

    x: np.ndarray
    y: np.ndarray
    users: np.ndarray
    order: np.ndarray
    start: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, mask_or_index: np.ndarray) -> WindowSet:
        """Rows selected by a boolean mask or an index array."""
        return WindowSet(
            self.x[mask_or_index],
            self.y[mask_or_index],
            self.users[mask_or_index],
            self.order[mask_or_index],
            None if self.start is None else self.start[mask_or_index],
        )
