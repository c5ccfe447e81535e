"""Charging habits: when a user puts the wearable on its charger.

A habit lists, for each day, the charging sessions that start that day as
``(start_s, end_s)`` in seconds of simulated time (day ``d`` starts at ``d · 86400``).
Draws are seeded by ``(seed, day)`` so any day can be asked for in any order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

DAY_S = 86400.0


class ChargingHabit(Protocol):
    """A user's charging habit."""

    def sessions(self, day: int, seed: int) -> list[tuple[float, float]]:
        """Charging sessions starting on ``day`` as ``(start_s, end_s)``, sorted."""
        ...


@dataclass(frozen=True)
class NightlyCharging:
    """On the charger overnight, from ``start_h`` to ``end_h`` (next day when earlier),
    on each night with ``probability``."""

    start_h: float = 22.0
    end_h: float = 7.0
    probability: float = 1.0

    def __post_init__(self) -> None:
        _check_hour("start_h", self.start_h)
        _check_hour("end_h", self.end_h)
        _check_probability(self.probability)
        if self.start_h == self.end_h:
            raise ValueError("start_h, end_h: expected a non-empty window, got equal hours")

    def sessions(self, day: int, seed: int) -> list[tuple[float, float]]:
        if np.random.default_rng([seed, day, 1]).random() >= self.probability:
            return []
        start = day * DAY_S + self.start_h * 3600.0
        length_h = (self.end_h - self.start_h) % 24.0
        return [(start, start + length_h * 3600.0)]


@dataclass(frozen=True)
class RandomCharging:
    """Each day, with ``probability``, one session at a uniformly random time lasting
    between ``min_hours`` and ``max_hours``."""

    probability: float = 0.5
    min_hours: float = 0.5
    max_hours: float = 3.0

    def __post_init__(self) -> None:
        _check_probability(self.probability)
        if not 0.0 < self.min_hours <= self.max_hours <= 24.0:
            raise ValueError(
                "min_hours, max_hours: expected 0 < min_hours <= max_hours <= 24, got "
                f"{self.min_hours}, {self.max_hours}"
            )

    def sessions(self, day: int, seed: int) -> list[tuple[float, float]]:
        rng = np.random.default_rng([seed, day, 2])
        draw, start_u, length_u = (float(u) for u in rng.random(3))
        if draw >= self.probability:
            return []
        start = day * DAY_S + start_u * DAY_S
        hours = self.min_hours + length_u * (self.max_hours - self.min_hours)
        return [(start, start + hours * 3600.0)]


@dataclass(frozen=True)
class NeverCharging:
    """Never charged: the battery runs until it is empty."""

    def sessions(self, day: int, seed: int) -> list[tuple[float, float]]:
        return []


CHARGING_HABITS: dict[str, type] = {
    "nightly": NightlyCharging,
    "random": RandomCharging,
    "never": NeverCharging,
}


def make_charging(name: str, **params: float) -> ChargingHabit:
    """A charging habit by name (:data:`CHARGING_HABITS`) with its parameters."""
    if name not in CHARGING_HABITS:
        raise ValueError(f"charging: expected one of {sorted(CHARGING_HABITS)}, got {name!r}")
    try:
        return CHARGING_HABITS[name](**params)
    except TypeError as exc:
        raise ValueError(f"charging {name!r}: bad parameters {sorted(params)}: {exc}") from None


def _check_hour(name: str, value: float) -> None:
    if not 0.0 <= value < 24.0:
        raise ValueError(f"{name}: expected an hour in [0, 24), got {value}")


def _check_probability(value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"probability: expected in [0, 1], got {value}")
