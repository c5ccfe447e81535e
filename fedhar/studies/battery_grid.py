"""The battery-policy study's grid: its configurations (:class:`GridPoint`, :func:`grid` of a
:class:`fedhar.schema.study.StudySection`) and the results of one configuration
(:class:`StudyRow`). The study (:mod:`fedhar.studies.battery`) and its report
(:mod:`fedhar.studies.battery_report`) both read them.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedhar.schema.study import StudySection


@dataclass(frozen=True)
class GridPoint:
    """One configuration of the grid."""

    personalization: str
    threshold: str
    capacity_mah: float
    charging: str
    user: str | None = None

    @property
    def policy(self) -> str:
        return f"{self.personalization}+{self.threshold}"

    @property
    def key(self) -> str:
        key = f"{self.policy}|{self.capacity_mah:g}mAh|{self.charging}"
        return key if self.user is None else f"{key}|user {self.user}"


def grid(study: StudySection, users: list[str] | None = None) -> list[GridPoint]:
    """Every configuration, in a fixed order; once per replayed user when ``users`` is
    given."""
    return [
        GridPoint(p, t, c, h, u)
        for p in study.personalization
        for t in study.threshold
        for c in study.capacity_mah
        for h in study.charging
        for u in users or [None]
    ]


@dataclass
class StudyRow:
    """Results of one configuration.

    Attributes:
        key: unique name of the configuration.
        policy: ``personalization+threshold`` labels.
        personalization, threshold: the two policy labels.
        capacity_mah: battery capacity, mAh.
        charging: charging habit label.
        days: simulated days.
        days_to_first_depletion: days until the first cut-off; ``None`` if none happened.
        fraction_time_dead: share of the simulated time spent cut off.
        mean_f1: F1 over the windows classified (alive time only): measured macro F1 of
            the replayed windows, or the modes table's F1 averaged over windows.
        f1_effective: ``mean_f1 · (1 - fraction_time_dead)``: dead time recognizes nothing.
        easy_share: share of windows decided by the small model.
        energy_j: energy drawn by load over the study, J.
        charged_j: energy charged, J.
        full_jobs, tl_jobs: completed personalization jobs.
        epochs_lost: epochs cut off before completing.
        depletions: cut-offs.
        soc_min, soc_end: lowest sampled and final state of charge.
        accuracy_source: ``"replay"`` (F1 and easy share measured on real windows) or
            ``"modes_table"``.
        user: the replayed user (replay only).
        replay_models: the saved model that served each personalization mode (replay only).
        f1_by_day: measured macro F1 of each day's windows, ``None`` for a day without
            windows (replay only).
        easy_share_by_day: measured easy share of each day's windows (replay only).
    """

    key: str
    policy: str
    personalization: str
    threshold: str
    capacity_mah: float
    charging: str
    days: int
    days_to_first_depletion: float | None
    fraction_time_dead: float
    mean_f1: float | None
    f1_effective: float | None
    easy_share: float | None
    energy_j: dict[str, float]
    charged_j: float
    full_jobs: int
    tl_jobs: int
    epochs_lost: int
    depletions: int
    soc_min: float
    soc_end: float
    accuracy_source: str = "modes_table"
    user: str | None = None
    replay_models: dict[str, str] | None = None
    f1_by_day: list[float | None] | None = None
    easy_share_by_day: list[float | None] | None = None
