"""Charging habits: when a user puts the wearable on its charger.

A habit lists, for each day, the charging sessions that start that day as
``(start_s, end_s)`` in seconds of simulated time (day ``d`` starts at ``d · 86400``).
Draws are seeded by ``(seed, day)`` so any day can be asked for in any order. A habit is built
from its validated parameters (:mod:`fedhar.schema.policies`) by :func:`make_charging`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fedhar.schema.policies import PolicySection

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

    start_h: float
    end_h: float
    probability: float

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

    probability: float
    min_hours: float
    max_hours: float

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
    "never": NeverCharging,
    "nightly": NightlyCharging,
    "random": RandomCharging,
}
"""Charging habits by name: the names of :data:`fedhar.schema.policies.CHARGING_PARAMS`, each
built from its parameters."""


def make_charging(section: PolicySection) -> ChargingHabit:
    """The charging habit of a validated ``charging`` section."""
    return CHARGING_HABITS[section.name](**dict(section.params))
