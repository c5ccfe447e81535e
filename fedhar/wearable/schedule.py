"""A daily activity schedule: which activity the user does at each time of day."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DAY_S = 86400.0


@dataclass(frozen=True)
class DailySchedule:
    """Activities by time of day; each block lasts until the next one starts, and the last
    wraps around midnight.

    Attributes:
        blocks: ``(start_h, activity)`` pairs with strictly increasing start hours in
            [0, 24); activity is a class name of the dataset.
    """

    blocks: tuple[tuple[float, str], ...]

    def __post_init__(self) -> None:
        if not self.blocks:
            raise ValueError("schedule: expected at least one (start_h, activity) block")
        starts = [h for h, _ in self.blocks]
        if any(not 0.0 <= h < 24.0 for h in starts):
            raise ValueError(f"schedule: start hours must lie in [0, 24), got {starts}")
        if any(b <= a for a, b in zip(starts[:-1], starts[1:], strict=True)):
            raise ValueError(f"schedule: start hours must increase strictly, got {starts}")

    @classmethod
    def from_pairs(cls, pairs: Sequence[Sequence[object]]) -> DailySchedule:
        """From ``[[start_h, activity], ...]`` as read from YAML."""
        return cls(tuple((float(h), str(a)) for h, a in pairs))  # type: ignore[arg-type]

    @property
    def activities(self) -> list[str]:
        """Distinct activity names in order of first appearance."""
        return list(dict.fromkeys(a for _, a in self.blocks))

    def class_at(self, t_s: np.ndarray, classes: Sequence[str]) -> np.ndarray:
        """Class index (into ``classes``) of the activity at each time.

        Args:
            t_s: ``[N]`` times in s of simulated time (day 0 starts at 0).
            classes: the dataset's class names.

        Returns:
            ``[N]`` int64 class indices.
        """
        lookup = {name: i for i, name in enumerate(classes)}
        unknown = [a for a in self.activities if a not in lookup]
        if unknown:
            raise ValueError(f"schedule: activities {unknown} are not classes; expected {classes}")
        starts_s = np.array([h * 3600.0 for h, _ in self.blocks])
        labels = np.array([lookup[a] for _, a in self.blocks], dtype=np.int64)
        block = np.searchsorted(starts_s, np.mod(t_s, DAY_S), side="right") - 1
        return labels[block]  # block -1 (before the first start) wraps to the last block
