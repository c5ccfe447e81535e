"""The adaptive-inference modes table: one row per score-margin threshold ``th`` with its
F1, share of easy windows, average cycles and average energy (issue 5 writes it), and the
personalized versions of a table."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from fedhar.enums import WEARABLE_MODELS

MODE_COLUMNS = ("th", "f1", "p_easy", "cycles_avg", "energy_uj_avg")


@dataclass(frozen=True)
class Mode:
    """One operating mode of the adaptive model.

    Attributes:
        th: score-margin threshold; windows with a margin above it are easy.
        f1: macro F1 in [0, 1] at this threshold.
        p_easy: share of windows the small model decides, in [0, 1].
        cycles_avg: average MCU cycles per window.
        energy_uj_avg: average energy per window in µJ.
        pareto: whether the mode lies on the F1-versus-energy Pareto front.
    """

    th: float
    f1: float
    p_easy: float
    cycles_avg: float
    energy_uj_avg: float
    pareto: bool = True


def _parse_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no", ""):
        return False
    raise ValueError(f"expected a boolean (true/false/1/0), got {value!r}")


@dataclass(frozen=True)
class ModesTable:
    """Modes sorted by threshold."""

    modes: tuple[Mode, ...]

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, object]], source: str = "rows") -> ModesTable:
        """Builds a table from mappings with the columns :data:`MODE_COLUMNS` (and an
        optional ``pareto``); ``source`` names the origin in error messages."""
        modes = []
        for i, row in enumerate(rows, start=1):
            missing = [c for c in MODE_COLUMNS if c not in row]
            if missing:
                raise ValueError(f"{source}: row {i}: missing column(s) {missing}")
            try:
                values = {c: float(row[c]) for c in MODE_COLUMNS}  # type: ignore[arg-type]
                pareto = _parse_bool(row.get("pareto", True))
            except ValueError as exc:
                raise ValueError(f"{source}: row {i}: {exc}") from None
            for c in ("f1", "p_easy"):
                if not 0.0 <= values[c] <= 1.0:
                    raise ValueError(f"{source}: row {i}: {c} expected in [0, 1], got {values[c]}")
            if values["energy_uj_avg"] < 0 or values["cycles_avg"] < 0:
                raise ValueError(f"{source}: row {i}: cycles_avg and energy_uj_avg must be >= 0")
            modes.append(Mode(pareto=pareto, **values))
        if not modes:
            raise ValueError(f"{source}: expected at least one mode row")
        return cls(tuple(sorted(modes, key=lambda m: m.th)))

    @classmethod
    def from_csv(cls, path: str | Path) -> ModesTable:
        """Reads a modes CSV with a header row."""
        with open(path, newline="") as fh:
            return cls.from_rows(csv.DictReader(fh), source=str(path))

    def candidates(self) -> tuple[Mode, ...]:
        """The Pareto modes (all modes when none is flagged)."""
        front = tuple(m for m in self.modes if m.pareto)
        return front or self.modes

    def nearest(self, th: float) -> Mode:
        """The Pareto mode whose threshold is closest to ``th`` (ties go to the lower)."""
        return min(self.candidates(), key=lambda m: (abs(m.th - th), m.th))

    def personalized(self, mode: str, f1_reference: Mapping[str, float]) -> ModesTable:
        """This (general-model) table after a ``mode`` personalization.

        Each row's error ``1 - f1`` shrinks by the ratio of the personalized to the general
        error in ``f1_reference`` (e.g. :data:`fedhar.schema.battery.TABLE_II_WISDM_F1`),
        which keeps F1 in [0, 1] and the order of the modes.
        """
        if mode not in WEARABLE_MODELS:
            raise ValueError(
                f"mode: expected one of {[m.value for m in WEARABLE_MODELS]}, got {mode!r}"
            )
        ratio = (1.0 - f1_reference[mode]) / (1.0 - f1_reference["none"])
        return ModesTable(tuple(replace(m, f1=1.0 - (1.0 - m.f1) * ratio) for m in self.modes))
