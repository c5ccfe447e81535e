"""Policies driven by the battery: the adaptive-inference threshold, and whether and how
deeply to personalize. Both are pluggable by name (:func:`make_threshold_policy`,
:func:`make_personalization_policy`), built from their validated parameters
(:mod:`fedhar.schema.policies`).

Threshold policies return a threshold ``th``; the device runs the modes-table row nearest
to it. A higher ``th`` sends more windows to the large model: more accurate, more energy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from fedhar.enums import WEARABLE_JOBS
from fedhar.schema.policies import PolicySection


class ThresholdPolicy(Protocol):
    """Chooses the score-margin threshold from the state of charge."""

    def choose(self, soc: float, level: int | None) -> tuple[float, int | None]:
        """Returns ``(th, level)``. ``level`` is the policy's own memory (``None`` at
        start); the device keeps it with its state and passes it back."""
        ...


@dataclass(frozen=True)
class StaticThreshold:
    """The same threshold whatever the charge."""

    th: float

    def choose(self, soc: float, level: int | None) -> tuple[float, int | None]:
        return self.th, None


@dataclass(frozen=True)
class LinearThreshold:
    """``th_min`` at or below ``soc_low``, ``th_max`` at or above ``soc_high``, linear between."""

    th_min: float
    th_max: float
    soc_low: float
    soc_high: float

    def choose(self, soc: float, level: int | None) -> tuple[float, int | None]:
        u = min(1.0, max(0.0, (soc - self.soc_low) / (self.soc_high - self.soc_low)))
        return self.th_min + u * (self.th_max - self.th_min), None


@dataclass(frozen=True)
class StepwiseThreshold:
    """Threshold steps by state of charge, with hysteresis.

    Attributes:
        steps: ``(soc_min, th)`` pairs, ``soc_min`` strictly increasing from 0: step ``i``
            applies from ``soc_min[i]``.
        hysteresis: the charge must exceed a step's ``soc_min`` by this much before the
            policy moves up to it; it moves down as soon as the charge falls below the
            current step. This keeps it from chattering around a boundary.
    """

    steps: tuple[tuple[float, float], ...]
    hysteresis: float

    def choose(self, soc: float, level: int | None) -> tuple[float, int | None]:
        if level is None:
            level = max(i for i, (s, _) in enumerate(self.steps) if soc >= s or i == 0)
        while level > 0 and soc < self.steps[level][0]:
            level -= 1
        while level + 1 < len(self.steps) and soc >= self.steps[level + 1][0] + self.hysteresis:
            level += 1
        return self.steps[level][1], level


THRESHOLD_POLICIES: dict[str, type] = {
    "static": StaticThreshold,
    "linear": LinearThreshold,
    "stepwise": StepwiseThreshold,
}
"""Threshold policies by name: the names of :data:`fedhar.schema.policies.THRESHOLD_PARAMS`."""


@dataclass(frozen=True)
class JobView:
    """What a personalization policy sees when a job is waiting.

    Attributes:
        soc: state of charge in [0, 1].
        charging: whether the device is on its charger.
        seconds_left: seconds until the round ends.
        battery_j: energy stored in J.
        capacity_j: battery capacity in J.
        job_j: energy of a whole job by mode (``"full"``, ``"tl"``), J.
        job_s: duration of a whole job by mode, s.
    """

    soc: float
    charging: bool
    seconds_left: float
    battery_j: float
    capacity_j: float
    job_j: Mapping[str, float]
    job_s: Mapping[str, float]


class PersonalizationPolicy(Protocol):
    """Decides whether a waiting job starts now, and in which mode."""

    def choose(self, view: JobView) -> str | None:
        """``"full"`` or ``"tl"`` to start now, ``None`` to wait."""
        ...


@dataclass(frozen=True)
class AlwaysFull:
    """Full personalization as soon as a job arrives."""

    def choose(self, view: JobView) -> str | None:
        return "full"


@dataclass(frozen=True)
class AlwaysTl:
    """Transfer learning (last dense layers) as soon as a job arrives."""

    def choose(self, view: JobView) -> str | None:
        return "tl"


@dataclass(frozen=True)
class Never:
    """No personalization: the general model stays."""

    def choose(self, view: JobView) -> str | None:
        return None


@dataclass(frozen=True)
class ChargingFullElseTl:
    """Craighero et al. 2023 §IV-C: Full while on the charger, TL on battery.

    The job waits for the charger until only ``tl_margin`` times the TL job's duration is
    left in the round, then runs TL on battery.
    """

    tl_margin: float

    def choose(self, view: JobView) -> str | None:
        if view.charging:
            return "full"
        if view.seconds_left <= self.tl_margin * view.job_s["tl"]:
            return "tl"
        return None


@dataclass(frozen=True)
class EnergyBudget:
    """The deepest mode whose job energy fits in the charge above a reserve.

    Full when on the charger; otherwise Full if its energy is at most ``budget_share`` of
    the stored energy above ``reserve_soc``, else TL under the same test, else wait.
    """

    reserve_soc: float
    budget_share: float

    def choose(self, view: JobView) -> str | None:
        if view.charging:
            return "full"
        budget = self.budget_share * (view.battery_j - self.reserve_soc * view.capacity_j)
        for mode in WEARABLE_JOBS:
            if view.job_j[mode] <= budget:
                return mode.value
        return None


PERSONALIZATION_POLICIES: dict[str, type] = {
    "always_full": AlwaysFull,
    "always_tl": AlwaysTl,
    "never": Never,
    "charging_full_else_tl": ChargingFullElseTl,
    "energy_budget": EnergyBudget,
}
"""Personalization policies by name: the names of
:data:`fedhar.schema.policies.PERSONALIZATION_PARAMS`."""


def make_threshold_policy(section: PolicySection) -> ThresholdPolicy:
    """The threshold policy of a validated ``threshold`` section."""
    return THRESHOLD_POLICIES[section.name](**dict(section.params))


def make_personalization_policy(section: PolicySection) -> PersonalizationPolicy:
    """The personalization policy of a validated ``personalization`` section."""
    return PERSONALIZATION_POLICIES[section.name](**dict(section.params))
