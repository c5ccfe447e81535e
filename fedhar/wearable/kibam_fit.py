"""Fits the kinetic battery model (KiBaM) to a cell's delivered capacity at constant current.

A cell discharged from full (wells in equilibrium) at a constant current ``I`` delivers
``I · t_cut``, where ``t_cut`` is when the available well empties: the closed form of
:meth:`fedhar.wearable.battery.Battery.available_after`, found by
:meth:`~fedhar.wearable.battery.Battery.time_to_available`. The fit chooses the
available-well share ``c`` and the rate constant ``k`` (1/s) that minimise the sum of squared
relative errors of the delivered capacity over the published rates.

The search is deterministic and needs no optimiser library: a grid over ``c`` and ``log k``,
then golden-section refinement of ``log k`` (and, for a free ``c``, of ``c``) around the best
grid point. Rates are C-rates (current over capacity, in 1/h), so the fit does not depend on
the capacity itself.

Identifiability: while a discharge lasts much longer than ``1 / k'`` (``k' = k / (c (1 - c))``)
the wells stay in quasi-equilibrium and the charge left behind at cut-off is
``(1 - c)^2 · I / k``; rates in that regime pin down only ``k / (1 - c)^2``, and ``c`` needs a
rate fast enough to leave that regime. :func:`c_profile` shows how flat the objective is in
``c``; :func:`fit` with a fixed ``c`` fits ``k`` alone.

``python -m fedhar.wearable.kibam_fit`` fits the ``cell:`` section of the parts file and
prints the values and the per-rate errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from fedhar.wearable.battery import PARTS_FILE, Battery, BatterySpec

C_GRID = tuple(round(0.02 * i, 2) for i in range(1, 50))
"""Grid of available-well shares for a free ``c``: 0.02 to 0.98."""

LOG10_K_GRID = tuple(-7.0 + 0.05 * i for i in range(141))
"""Grid of ``log10(k / (1/s))``: k from 1e-7 to 1 per second."""

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class RatePoint:
    """One published constant-current discharge.

    Attributes:
        c_rate: discharge current over the rated capacity, in 1/h (1 C empties the rated
            capacity in one hour).
        delivered_fraction: delivered capacity over the rated capacity.
    """

    c_rate: float
    delivered_fraction: float

    def __post_init__(self) -> None:
        if self.c_rate <= 0:
            raise ValueError(f"c_rate: expected > 0 1/h, got {self.c_rate}")
        if not 0.0 < self.delivered_fraction <= 1.5:
            raise ValueError(
                f"delivered_fraction: expected in (0, 1.5], got {self.delivered_fraction}"
            )


@dataclass(frozen=True)
class CellData:
    """The published discharges of one cell (the parts file's ``cell:`` section).

    Attributes:
        part: the cell.
        source: where the numbers come from.
        capacity_mah: rated capacity in mAh.
        cutoff_v: discharge cut-off voltage in V.
        temperature_c: test temperature in °C.
        points: the published rates.
    """

    part: str
    source: str
    capacity_mah: float
    cutoff_v: float
    temperature_c: float
    points: tuple[RatePoint, ...]


@dataclass(frozen=True)
class KibamFit:
    """A fitted KiBaM.

    Attributes:
        c: available-well share.
        k_per_s: rate constant in 1/s.
        objective: sum of squared relative delivered-capacity errors.
        errors: relative error (model / published - 1) at each rate, in the points' order.
    """

    c: float
    k_per_s: float
    objective: float
    errors: tuple[float, ...]

    @property
    def k_per_min(self) -> float:
        """Rate constant in 1/min."""
        return self.k_per_s * 60.0

    @property
    def k_equilibrium_per_s(self) -> float:
        """``k / (1 - c)^2`` in 1/s: the combination slow rates determine."""
        return self.k_per_s / (1.0 - self.c) ** 2


def delivered_fraction(c: float, k_per_s: float, c_rate: float) -> float:
    """Share of the rated capacity a full KiBaM cell delivers at ``c_rate`` (1/h) before its
    available well empties, through :class:`~fedhar.wearable.battery.Battery`."""
    spec = BatterySpec(capacity_mah=100.0, model="kibam", kibam_c=c, kibam_k_per_s=k_per_s)
    battery = Battery.full(spec)
    current_a = c_rate * spec.capacity_mah / 1000.0
    return current_a * battery.time_to_available(0.0, current_a) / spec.capacity_c


def _errors(c: float, k_per_s: float, points: Sequence[RatePoint]) -> tuple[float, ...]:
    return tuple(
        delivered_fraction(c, k_per_s, p.c_rate) / p.delivered_fraction - 1.0 for p in points
    )


def _objective(c: float, log10_k: float, points: Sequence[RatePoint]) -> float:
    return sum(e * e for e in _errors(c, 10.0**log10_k, points))


def _golden(f, lo: float, hi: float, iterations: int = 60) -> float:
    """Deterministic golden-section minimum of ``f`` on ``[lo, hi]``."""
    a, b = lo, hi
    x1, x2 = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    f1, f2 = f(x1), f(x2)
    for _ in range(iterations):
        if f1 <= f2:
            b, x2, f2 = x2, x1, f1
            x1 = b - _GOLDEN * (b - a)
            f1 = f(x1)
        else:
            a, x1, f1 = x1, x2, f2
            x2 = a + _GOLDEN * (b - a)
            f2 = f(x2)
    return 0.5 * (a + b)


def _best_log10_k(c: float, points: Sequence[RatePoint]) -> float:
    values = [_objective(c, lk, points) for lk in LOG10_K_GRID]
    i = min(range(len(values)), key=values.__getitem__)
    lo = LOG10_K_GRID[max(i - 1, 0)]
    hi = LOG10_K_GRID[min(i + 1, len(LOG10_K_GRID) - 1)]
    return _golden(lambda lk: _objective(c, lk, points), lo, hi)


def _result(c: float, log10_k: float, points: Sequence[RatePoint]) -> KibamFit:
    k = 10.0**log10_k
    errors = _errors(c, k, points)
    return KibamFit(c=c, k_per_s=k, objective=sum(e * e for e in errors), errors=errors)


def fit(points: Sequence[RatePoint], c: float | None = None) -> KibamFit:
    """Least-squares KiBaM for ``points``: both ``c`` and ``k``, or ``k`` alone at a fixed
    ``c``. Deterministic: the same points give the same fit."""
    if not points:
        raise ValueError("points: expected at least one rate, got none")
    if c is not None:
        if not 0.0 < c < 1.0:
            raise ValueError(f"c: expected in (0, 1), got {c}")
        return _result(c, _best_log10_k(c, points), points)
    if len(points) < 2:
        raise ValueError(f"points: fitting c and k needs >= 2 rates, got {len(points)}")
    profile = [(cg, _best_log10_k(cg, points)) for cg in C_GRID]
    objectives = [_objective(cg, lk, points) for cg, lk in profile]
    i = min(range(len(profile)), key=objectives.__getitem__)
    lo, hi = C_GRID[max(i - 1, 0)], C_GRID[min(i + 1, len(C_GRID) - 1)]
    best_c = _golden(lambda cc: _objective(cc, _best_log10_k(cc, points), points), lo, hi, 30)
    return _result(best_c, _best_log10_k(best_c, points), points)


def c_profile(points: Sequence[RatePoint], cs: Sequence[float] = C_GRID) -> list[KibamFit]:
    """The best fit of ``k`` at each ``c`` of ``cs``: a flat objective means the rates do not
    determine ``c``."""
    return [fit(points, c=c) for c in cs]


def load_cell(path: str | Path = PARTS_FILE) -> CellData:
    """The ``cell:`` section of a parts file."""
    with open(path) as fh:
        cell = yaml.safe_load(fh)["cell"]
    return CellData(
        part=str(cell["part"]),
        source=str(cell["source"]),
        capacity_mah=float(cell["capacity_mah"]),
        cutoff_v=float(cell["cutoff_v"]),
        temperature_c=float(cell["temperature_c"]),
        points=tuple(
            RatePoint(float(r["c_rate"]), float(r["delivered_fraction"])) for r in cell["rates"]
        ),
    )


def _fit_line(name: str, f: KibamFit, points: Sequence[RatePoint]) -> str:
    per_rate = ", ".join(f"{p.c_rate:g} C {e:+.2%}" for p, e in zip(points, f.errors, strict=True))
    return (
        f"{name}: c = {f.c:.4f}, k = {f.k_per_s:.4g} 1/s = {f.k_per_min:.4g} 1/min, "
        f"k/(1-c)^2 = {f.k_equilibrium_per_s:.4g} 1/s; errors {per_rate}"
    )


def main(path: str | Path = PARTS_FILE) -> None:
    """Fits the parts file's cell and prints the fits, the ``c`` profile and the errors."""
    with open(path) as fh:
        held_c = float(yaml.safe_load(fh)["cell"]["kibam"]["c"])
    cell = load_cell(path)
    points = cell.points
    print(f"cell: {cell.part}")
    print(f"source: {cell.source}")
    print(
        f"cut-off {cell.cutoff_v:g} V, {cell.temperature_c:g} degC, rated {cell.capacity_mah:g} "
        "mAh; rates: " + ", ".join(f"{p.c_rate:g} C -> {p.delivered_fraction:.3f}" for p in points)
    )
    joint = fit(points)
    print(_fit_line("joint fit of c and k", joint, points))
    print("profile over c (best k at each c):")
    for f in c_profile(points, (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)):
        print(f"  c = {f.c:.2f}: objective {f.objective:.4e}, k = {f.k_per_s:.4g} 1/s")
    held = fit(points, c=held_c)
    print(_fit_line(f"k fitted at the parts file's c = {held_c:g}", held, points))


if __name__ == "__main__":
    main()
