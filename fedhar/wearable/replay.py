"""A user's real windows replayed along a daily schedule, classified by the adaptive model.

Window ``k`` is sensed at ``k · window_s`` seconds. The schedule gives its activity; the
window replayed is the next one, cyclically, of the user's windows of that class (all the
user's windows when the user has none of it). The classifier of the device's current model
(general, TL- or Full-personalized) decides every window; since it is a pure function of the
window and the threshold, each pool window is classified once per (model, threshold) and
every replay of it reuses that decision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from fedhar.data.types import WindowSet
from fedhar.wearable.schedule import DAY_S, DailySchedule

Classify = Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]]
"""``classify(x [N, C, T] float32, th) -> (pred [N] int64, easy [N] bool)``."""


@dataclass
class Replay:
    """One user's windows, their schedule and the models that classify them.

    Attributes:
        windows: the user's windows (``x [N, C, T]``, ``y [N]``).
        classes: class names; the schedule's activities must be among them.
        schedule: the user's day.
        classifiers: one :data:`Classify` per model the device may serve, by model name: the
            general model ``none``, then ``tl`` and ``full`` (or the names a
            :class:`~fedhar.wearable.simulation.JobRunner` gives its models).
        batch_size: windows per classifier call.
        decide_all: instead of ``classifiers``, a function giving the decisions
            ``(pred [N], easy [N])`` on every window of ``windows`` by a model (by name) at a
            threshold; for callers that keep each model's outputs on the windows.
    """

    windows: WindowSet
    classes: Sequence[str]
    schedule: DailySchedule
    classifiers: Mapping[str, Classify]
    batch_size: int = 512
    decide_all: Callable[[str, float], tuple[np.ndarray, np.ndarray]] | None = None
    _decisions: dict[tuple[str, float], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        if self.decide_all is None and "none" not in self.classifiers:
            raise ValueError("classifiers: expected the general model's, under 'none'")
        if len(self.windows) == 0:
            raise ValueError("windows: expected at least one window to replay")
        y = np.asarray(self.windows.y)
        everything = np.arange(len(y))
        pools = [np.flatnonzero(y == c) for c in range(len(self.classes))]
        pools = [p if p.size else everything for p in pools]
        self._pool_start = np.cumsum([0] + [p.size for p in pools[:-1]]).astype(np.int64)
        self._pool_len = np.array([p.size for p in pools], dtype=np.int64)
        self._pool_flat = np.concatenate(pools)
        self.schedule.class_at(np.zeros(1), self.classes)  # validates the activity names
        lookup = {name: i for i, name in enumerate(self.classes)}
        self._starts_s = np.array([h * 3600.0 for h, _ in self.schedule.blocks])
        self._labels = np.array([lookup[a] for _, a in self.schedule.blocks], dtype=np.int64)
        self._y = np.asarray(self.windows.y)
        self._picks: dict[tuple[int, int, float], np.ndarray] = {}
        self._easy: dict[tuple[int, int, float, str, float], int] = {}

    def _decide_all(self, model: str, th: float) -> tuple[np.ndarray, np.ndarray]:
        key = (model, th)
        if key not in self._decisions and self.decide_all is not None:
            self._decisions[key] = self.decide_all(model, th)
        if key not in self._decisions:
            classify = self.classifiers[model]
            x = self.windows.x
            preds, easies = [], []
            for start in range(0, len(self.windows), self.batch_size):
                pred, easy = classify(x[start : start + self.batch_size], th)
                preds.append(np.asarray(pred, dtype=np.int64))
                easies.append(np.asarray(easy, dtype=bool))
            self._decisions[key] = (np.concatenate(preds), np.concatenate(easies))
        return self._decisions[key]

    def picks(self, k0: int, k1: int, window_s: float) -> np.ndarray:
        """``[k1 - k0]`` indices into :attr:`windows` of the windows sensed as ``k0 .. k1 - 1``."""
        key = (k0, k1, window_s)
        if key not in self._picks:  # the same ticks recur in every configuration of a user
            k = np.arange(k0, k1, dtype=np.int64)
            block = np.searchsorted(self._starts_s, np.mod(k * window_s, DAY_S), "right") - 1
            cls = self._labels[block]  # as DailySchedule.class_at, with the lookup built once
            self._picks[key] = self._pool_flat[self._pool_start[cls] + k % self._pool_len[cls]]
        return self._picks[key]

    def easy_in(self, index: np.ndarray, model: str, th: float) -> int:
        """How many of the windows ``index`` (into :attr:`windows`) ``model`` decides with its
        small width at threshold ``th``."""
        return int(np.count_nonzero(self._decide_all(model, th)[1][index]))

    def easy_at(self, k0: int, k1: int, window_s: float, model: str, th: float) -> int:
        """:meth:`easy_in` of windows ``k0 .. k1 - 1``, kept for the next configuration."""
        key = (k0, k1, window_s, model, th)
        if key not in self._easy:
            self._easy[key] = self.easy_in(self.picks(k0, k1, window_s), model, th)
        return self._easy[key]

    def confusion(self, runs: Mapping[tuple[str, float], Sequence[np.ndarray]]) -> np.ndarray:
        """``[K, K]`` int64 counts (true class, predicted class) of the windows ``runs`` lists
        (arrays of indices into :attr:`windows`) by the ``(model, threshold)`` that decided
        them."""
        k = len(self.classes)
        counts = np.zeros(k * k, dtype=np.int64)
        for (model, th), parts in runs.items():
            index = np.concatenate(parts)
            counts += np.bincount(
                self._y[index] * k + self._decide_all(model, th)[0][index], minlength=k * k
            )
        return counts.reshape(k, k)
