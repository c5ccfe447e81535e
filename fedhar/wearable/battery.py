"""Battery models: coulomb counting and the kinetic battery model (KiBaM), with a cut-off
and constant-current, constant-voltage (CC-CV) charging that ends at a termination current.

Charge is kept in coulombs (C) and converted to energy at the nominal voltage (J = C · V).
A positive current (A) discharges the battery; a negative one charges it. Between load
changes the current is constant, so both models advance in closed form.

KiBaM (Manwell & McGowan, 1993) splits the charge ``q`` into an available well ``y1``
(fraction ``c`` of the capacity) that feeds the load and a bound well ``y2`` that refills
it at a rate ``k · (h2 - h1)`` with heights ``h1 = y1 / c`` and ``h2 = y2 / (1 - c)``.
It shows the rate-capacity effect (a high current empties ``y1`` before ``q`` is spent)
and recovery (``y1`` refills at rest). Coulomb counting is the ideal battery: all of ``q``
is available.

The default ``c``, ``k`` and charger constants come from the ``cell:`` and ``charger:``
sections of ``fedhar/wearable/data/parts.yaml``, which name their data sheets (``c``, ``k``
fitted by :mod:`fedhar.wearable.kibam_fit`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import yaml

PARTS_FILE = Path(__file__).with_name("data") / "parts.yaml"
"""The parts file whose ``cell:`` and ``charger:`` sections give the defaults below."""


@dataclass(frozen=True)
class CellDefaults:
    """Default cell and charger constants, read from the parts file.

    Attributes:
        kibam_c: KiBaM available-well share, in (0, 1).
        kibam_k_per_s: KiBaM rate constant in 1/s.
        cv_soc: state of charge where the constant-voltage phase starts.
        termination_fraction: charge ends when the CV-phase current falls to this share of
            the constant (fast-charge) current.
        recharge_soc: a terminated charger restarts when the state of charge falls below this.
    """

    kibam_c: float
    kibam_k_per_s: float
    cv_soc: float
    termination_fraction: float
    recharge_soc: float


def load_cell_defaults(path: str | Path = PARTS_FILE) -> CellDefaults:
    """The ``cell.kibam`` and ``charger`` constants of a parts file."""
    with open(path) as fh:
        parts = yaml.safe_load(fh)
    try:
        kibam, charger = parts["cell"]["kibam"], parts["charger"]
        return CellDefaults(
            kibam_c=float(kibam["c"]),
            kibam_k_per_s=float(kibam["k_per_s"]),
            cv_soc=float(charger["cv_soc"]),
            termination_fraction=float(charger["termination_fraction"]),
            recharge_soc=float(charger["recharge_soc"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: cell.kibam / charger: missing or malformed {exc}") from exc


DEFAULTS = load_cell_defaults()
"""The shipped parts file's cell and charger constants (see :func:`load_cell_defaults`)."""

BATTERY_MODELS = ("coulomb", "kibam")


@dataclass(frozen=True)
class BatterySpec:
    """A battery and its charger.

    Attributes:
        capacity_mah: rated capacity in mAh.
        voltage_v: nominal voltage in V; energy = charge · voltage.
        model: ``"coulomb"`` or ``"kibam"``.
        cutoff_soc: loads are cut off when the available charge falls to this fraction of
            its full level (0 = drained).
        restart_soc: a cut-off device restarts when the available charge climbs back to
            this fraction of its full level; must exceed ``cutoff_soc``.
        kibam_c: KiBaM available-well fraction of the capacity, in (0, 1).
        kibam_k_per_s: KiBaM well-to-well rate constant in 1/s.
        charge_current_ma: constant charging current in mA (the CC phase).
        cv_soc: state of charge where the constant-voltage (CV) phase starts, in (0, 1]; 1
            charges at constant current to full.
        termination_fraction: the charge ends when the CV-phase current falls to this share
            of ``charge_current_ma``, in (0, 1).
        recharge_soc: after termination the charger stays off until the state of charge
            falls below this, in (0, :attr:`termination_soc`).
    """

    capacity_mah: float
    voltage_v: float = 3.7
    model: str = "coulomb"
    cutoff_soc: float = 0.0
    restart_soc: float = 0.05
    kibam_c: float = DEFAULTS.kibam_c
    kibam_k_per_s: float = DEFAULTS.kibam_k_per_s
    charge_current_ma: float = 30.0
    cv_soc: float = DEFAULTS.cv_soc
    termination_fraction: float = DEFAULTS.termination_fraction
    recharge_soc: float = DEFAULTS.recharge_soc

    def __post_init__(self) -> None:
        if self.capacity_mah <= 0:
            raise ValueError(f"capacity_mah: expected > 0, got {self.capacity_mah}")
        if self.voltage_v <= 0:
            raise ValueError(f"voltage_v: expected > 0, got {self.voltage_v}")
        if self.model not in BATTERY_MODELS:
            raise ValueError(f"model: expected one of {BATTERY_MODELS}, got {self.model!r}")
        if not 0.0 <= self.cutoff_soc < self.restart_soc <= 1.0:
            raise ValueError(
                "cutoff_soc, restart_soc: expected 0 <= cutoff_soc < restart_soc <= 1, "
                f"got {self.cutoff_soc}, {self.restart_soc}"
            )
        if not 0.0 < self.kibam_c < 1.0:
            raise ValueError(f"kibam_c: expected in (0, 1), got {self.kibam_c}")
        if self.kibam_k_per_s <= 0:
            raise ValueError(f"kibam_k_per_s: expected > 0, got {self.kibam_k_per_s}")
        if self.charge_current_ma < 0:
            raise ValueError(f"charge_current_ma: expected >= 0, got {self.charge_current_ma}")
        if not 0.0 < self.cv_soc <= 1.0:
            raise ValueError(f"cv_soc: expected in (0, 1], got {self.cv_soc}")
        if not 0.0 < self.termination_fraction < 1.0:
            raise ValueError(
                f"termination_fraction: expected in (0, 1), got {self.termination_fraction}"
            )
        if not 0.0 < self.recharge_soc < self.termination_soc:
            raise ValueError(
                "recharge_soc: expected in (0, termination_soc = "
                f"{self.termination_soc:.4g}), got {self.recharge_soc}"
            )

    @property
    def capacity_c(self) -> float:
        """Capacity in coulombs."""
        return self.capacity_mah * 3.6

    @property
    def capacity_j(self) -> float:
        """Capacity in joules at the nominal voltage."""
        return self.capacity_c * self.voltage_v

    @property
    def termination_soc(self) -> float:
        """State of charge where the CV-phase current reaches the termination current:
        ``1 - termination_fraction · (1 - cv_soc)`` (1 for pure constant current)."""
        return 1.0 - self.termination_fraction * (1.0 - self.cv_soc)

    @property
    def cv_time_constant_s(self) -> float:
        """Time constant of the CV-phase current decay in s, ``Q · (1 - cv_soc) / I_cc``
        (Q in C, I_cc in A); ``math.inf`` without a charge current."""
        if self.charge_current_ma <= 0:
            return math.inf
        return self.capacity_c * (1.0 - self.cv_soc) / (self.charge_current_ma / 1000.0)

    def charge_time_s(self, from_soc: float = 0.0) -> float:
        """Seconds from ``from_soc`` to termination with the whole charger current going
        into the cell (no load): the CC part ``Q · (cv_soc - from_soc) / I_cc``, then the
        CV decay from the current at the larger of ``from_soc`` and ``cv_soc`` down to
        ``termination_fraction · I_cc``, ``tau · ln(I_start / I_term)``."""
        if not 0.0 <= from_soc <= 1.0:
            raise ValueError(f"from_soc: expected in [0, 1], got {from_soc}")
        if from_soc >= self.termination_soc:
            return 0.0
        if self.charge_current_ma <= 0:
            return math.inf
        cc_a = self.charge_current_ma / 1000.0
        t_cc = self.capacity_c * max(0.0, self.cv_soc - from_soc) / cc_a
        if self.cv_soc >= 1.0:
            return t_cc
        start = max(from_soc, self.cv_soc)
        i_start = (1.0 - start) / (1.0 - self.cv_soc)  # current at the start of CV, / I_cc
        return t_cc + self.cv_time_constant_s * math.log(i_start / self.termination_fraction)

    @property
    def available_fraction(self) -> float:
        """Share of the capacity in the available well when full (1 for coulomb counting)."""
        return self.kibam_c if self.model == "kibam" else 1.0


@dataclass
class Battery:
    """Charge state of one battery; plain data (see :meth:`to_dict`).

    Attributes:
        spec: the battery.
        available_c: charge in the available well in C (all the charge for coulomb counting).
        bound_c: charge in the bound well in C (always 0 for coulomb counting).
    """

    spec: BatterySpec
    available_c: float
    bound_c: float

    @classmethod
    def full(cls, spec: BatterySpec, soc: float = 1.0) -> Battery:
        """A battery at state of charge ``soc`` with its wells in equilibrium."""
        if not 0.0 <= soc <= 1.0:
            raise ValueError(f"initial soc: expected in [0, 1], got {soc}")
        q = soc * spec.capacity_c
        c = spec.available_fraction
        return cls(spec, available_c=c * q, bound_c=(1.0 - c) * q)

    @property
    def charge_c(self) -> float:
        """Total charge in C."""
        return self.available_c + self.bound_c

    @property
    def soc(self) -> float:
        """State of charge: total charge over capacity, in [0, 1]."""
        return self.charge_c / self.spec.capacity_c

    @property
    def available_soc(self) -> float:
        """Available charge over its full level, in [0, 1]; the cut-off compares this."""
        return self.available_c / (self.spec.available_fraction * self.spec.capacity_c)

    def available_after(self, current_a: float, dt_s: float) -> float:
        """Available charge in C after ``dt_s`` seconds at constant ``current_a``."""
        if self.spec.model == "coulomb":
            return self.available_c - current_a * dt_s
        c, k = self.spec.kibam_c, self.spec.kibam_k_per_s
        kp = k / (c * (1.0 - c))
        delta0 = self.bound_c / (1.0 - c) - self.available_c / c
        delta_inf = current_a / (c * kp)
        return (
            self.available_c
            - current_a * c * dt_s
            + k * (delta0 - delta_inf) * (-math.expm1(-kp * dt_s)) / kp
        )

    def step(self, current_a: float, dt_s: float) -> None:
        """Advances the wells by ``dt_s`` seconds of constant ``current_a`` (A, > 0 drains)."""
        if dt_s <= 0:
            return
        q = self.charge_c - current_a * dt_s
        self.available_c = self.available_after(current_a, dt_s)
        self.bound_c = q - self.available_c

    def time_to_available(self, level_c: float, current_a: float) -> float:
        """Seconds until the available charge crosses ``level_c`` (C) at constant current.

        Returns ``math.inf`` when it never does. Crossing down needs a drain; crossing up
        needs a charge or, for KiBaM, recovery from the bound well.
        """
        y0 = self.available_c
        if y0 == level_c:
            return 0.0
        falling = level_c < y0
        if self.spec.model == "coulomb":
            if (falling and current_a <= 0) or (not falling and current_a >= 0):
                return math.inf
            return (y0 - level_c) / current_a

        def crossed(t: float) -> bool:
            y = self.available_after(current_a, t)
            return y <= level_c if falling else y >= level_c

        # The available well moves monotonically after at most one turning point, and its
        # long-run slope is -current · c; bracket by doubling, then bisect to 1 ms.
        hi = 1.0
        while not crossed(hi):
            hi *= 2.0
            if hi > 1e12:
                return math.inf
        lo = 0.0 if hi == 1.0 else hi / 2.0
        while hi - lo > 1e-3:
            mid = 0.5 * (lo + hi)
            if crossed(mid):
                hi = mid
            else:
                lo = mid
        return hi

    def charge_current_a(self) -> float:
        """Charger current in A at the present state of charge (CC-CV with termination).

        Constant current ``I_cc`` up to ``cv_soc``; then the cell sits at the charger's
        regulation voltage and the current decays. First-order model of that CV phase: the
        cell is an open-circuit voltage linear in the state of charge behind a series
        resistance R, so ``I = (V_reg - OCV(soc)) / R`` falls linearly with the state of
        charge, ``I = I_cc · (1 - soc) / (1 - cv_soc)`` (continuous at ``cv_soc``, zero at
        full); as ``d soc / dt = I / Q`` that is an exponential decay in time with time
        constant :attr:`BatterySpec.cv_time_constant_s` (the R·C of R and the cell's
        charge-per-volt), the usual first-order picture of a CV phase. The charger
        terminates when the current reaches ``termination_fraction · I_cc``, at
        :attr:`BatterySpec.termination_soc`, and gives 0 from there on; the restart below
        ``recharge_soc`` is the charger's business (:mod:`fedhar.wearable.simulation`).
        """
        spec = self.spec
        cc = spec.charge_current_ma / 1000.0
        soc = self.soc
        if soc >= spec.termination_soc:
            return 0.0
        if soc <= spec.cv_soc:
            return cc
        return cc * (1.0 - soc) / (1.0 - spec.cv_soc)

    def to_dict(self) -> dict[str, float]:
        """The charge state as plain data (the spec comes from configuration)."""
        return {"available_c": self.available_c, "bound_c": self.bound_c}

    @classmethod
    def from_dict(cls, spec: BatterySpec, data: dict[str, float]) -> Battery:
        """Inverse of :meth:`to_dict`."""
        return cls(spec, available_c=float(data["available_c"]), bound_c=float(data["bound_c"]))
