"""A user's training windows arriving over simulated days, as the device senses them.

The device stores one labelled window every ``label_every_s`` seconds: the window of the
activity the daily schedule says the user is doing then, namely the user's next TR_i window of
that class that has not been stored yet (TR_i windows of a class are taken in recording
order). A class whose TR_i windows are all stored adds nothing more, and a class the schedule
never visits never arrives. So day 1 holds only what was sensed on day 1, and rare activities
fill in over days.

A guard (:mod:`fedhar.studies.fleet_jobs`) keeps every ``holdout_every``-th stored window as
its validation slice and trains on the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedhar.wearable.schedule import DailySchedule


@dataclass(frozen=True)
class Arrival:
    """When each TR_i window is stored.

    Attributes:
        order: ``[M]`` int64 indices into TR_i, in the order they are stored.
        times_s: ``[M]`` float64 storage times in s, non-decreasing.
    """

    order: np.ndarray
    times_s: np.ndarray

    @classmethod
    def along(
        cls,
        y: np.ndarray,
        classes: Sequence[str],
        schedule: DailySchedule,
        label_every_s: float,
        horizon_s: float,
    ) -> Arrival:
        """The arrival of windows with labels ``y [N]`` (in recording order) along
        ``schedule``, one storage instant every ``label_every_s`` s in ``(0, horizon_s]``."""
        if not label_every_s > 0:
            raise ValueError(f"label_every_s: expected > 0 s, got {label_every_s}")
        y = np.asarray(y, dtype=np.int64)
        instants = np.arange(1, int(horizon_s // label_every_s) + 1) * float(label_every_s)
        activity = schedule.class_at(instants, classes)
        order, times = [], []
        for c in range(len(classes)):
            pool = np.flatnonzero(y == c)
            at = instants[activity == c][: pool.size]
            order.append(pool[: at.size])
            times.append(at)
        flat_t = np.concatenate(times) if times else np.zeros(0)
        flat_o = np.concatenate(order) if order else np.zeros(0, dtype=np.int64)
        rank = np.lexsort((flat_o, flat_t))
        return cls(flat_o[rank].astype(np.int64), flat_t[rank].astype(np.float64))

    def count_at(self, t_s: float) -> int:
        """Windows stored at or before ``t_s`` s."""
        return int(np.searchsorted(self.times_s, t_s, side="right"))

    def split(self, n: int, holdout_every: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` stored windows as ``(train, holdout)`` TR_i indices: every
        ``holdout_every``-th one (the 1st, the ``holdout_every + 1``-th, …) is held out;
        ``holdout_every = 0`` holds out none."""
        first = self.order[:n]
        if holdout_every <= 0:
            return first, first[:0]
        held = np.arange(n) % holdout_every == 0
        return first[~held], first[held]
