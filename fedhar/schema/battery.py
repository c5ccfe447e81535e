"""The ``battery:`` section of a study scenario and of a run scenario: the battery-powered
wearable, its cell, its adaptive-inference modes and where its personalization costs come from.

Pure schema: :mod:`fedhar.wearable.build` turns a validated section into a device.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, model_validator

from fedhar.schema.base import KeyProblem, Strict
from fedhar.schema.mcu import ProfileName

TABLE_II_WISDM_F1 = {"none": 0.813, "tl": 0.955, "full": 0.969}
"""Craighero et al. 2023, Table II, WISDM, input (100, 3): mean F1 over the 36 LOSO users."""


class CellSection(Strict):
    """The battery cell and its charger (see `fedhar.wearable.battery.BatterySpec`); the
    capacity comes from the study grid or from the run scenario's `battery.capacity_mah`."""

    voltage_v: float = Field(3.7, gt=0, description="Nominal voltage, in V.")
    model: Literal["coulomb", "kibam"] = Field(
        "kibam",
        description="`coulomb`: an ideal charge counter. `kibam`: the kinetic battery model, "
        "whose charge flows from a bound well into the available one.",
    )
    cutoff_soc: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Loads are cut off when the available charge falls to this fraction of its "
        "full level (0: drained).",
    )
    restart_soc: float = Field(
        0.05,
        gt=0,
        le=1,
        description="A cut-off device restarts when the available charge climbs back to this "
        "fraction of its full level; above `cutoff_soc`.",
    )
    kibam_c: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="KiBaM: available-well share. Unset: the parts file's (`cell:`).",
    )
    kibam_k_per_s: float | None = Field(
        None,
        gt=0,
        description="KiBaM: rate constant, in 1/s. Unset: fitted to the parts file's cell.",
    )
    charge_current_ma: float = Field(30.0, ge=0, description="Charger current, in mA.")
    cv_soc: float | None = Field(
        None,
        gt=0,
        le=1,
        validation_alias=AliasChoices("cv_soc", "taper_soc"),
        description="State of charge where the constant-voltage phase starts; above it the "
        "charge current decays (1: constant current to full). Unset: the parts file's.",
    )
    termination_fraction: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Charging ends when the constant-voltage current falls to this share of "
        "`charge_current_ma`. Unset: the parts file's charger IC.",
    )
    recharge_soc: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="After termination the charger restarts once the state of charge falls "
        "below this; below the termination state of charge. Unset: the parts file's.",
    )

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> CellSection:
        if self.restart_soc <= self.cutoff_soc:
            raise KeyProblem(
                "restart_soc",
                f"expected a number > cutoff_soc ({self.cutoff_soc}), got {self.restart_soc}",
            )
        given = (self.termination_fraction, self.cv_soc, self.recharge_soc)
        if None in given:  # the parts file's values complete it; BatterySpec checks them
            return self
        termination_soc = 1.0 - self.termination_fraction * (1.0 - self.cv_soc)  # type: ignore[operator]
        if self.recharge_soc >= termination_soc:  # type: ignore[operator]
            raise KeyProblem(
                "recharge_soc",
                f"expected a number < the termination state of charge ({termination_soc:.4g}), "
                f"got {self.recharge_soc}",
            )
        return self


class ModeRowSection(Strict):
    """One row of a modes table: the adaptive classifier at one score-margin threshold."""

    th: float = Field(description="Score-margin threshold.")
    f1: float = Field(ge=0, le=1, description="Macro F1 at this threshold.")
    p_easy: float = Field(ge=0, le=1, description="Share of windows the small model decides.")
    cycles_avg: float = Field(ge=0, description="Average MCU cycles per window.")
    energy_uj_avg: float = Field(ge=0, description="Average energy per window, in µJ.")
    pareto: bool = Field(True, description="On the F1-versus-energy Pareto front.")


class ModesSection(Strict):
    """The general model's modes table: a CSV file (`fedhar adaptive` writes `modes.csv`) or
    inline rows. A study with a `replay:` section may give neither: the adaptive run's
    `modes.csv` is used."""

    csv: str | None = Field(None, description="Path of a modes CSV, relative to the scenario file.")
    rows: list[ModeRowSection] | None = Field(None, min_length=1, description="Inline rows.")
    clock_hz: float = Field(
        gt=0, description="MCU clock that turns the cycles into seconds, in Hz."
    )
    f1_reference: dict[Literal["none", "tl", "full"], float] = Field(
        default_factory=lambda: dict(TABLE_II_WISDM_F1),
        description="F1 by personalization mode; each personalized table shrinks every row's "
        "error `1 - f1` by the ratio of the mode's error to the general one (default: "
        "Craighero et al. 2023 Table II, WISDM).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ModesSection:
        if self.csv is not None and self.rows is not None:
            raise KeyProblem("rows", "expected either csv or rows, got both")
        return self


class TrainingSection(Strict):
    """Where personalization costs come from: the parts file's Craighero et al. 2023 Table III
    figures (`parts`), or the analytic estimator's counted operations of `model` priced by the
    MCU `profile` (`estimator`), which also sets the sleep power."""

    source: Literal["parts", "estimator"] = Field("parts", description="Cost source.")
    profile: ProfileName = Field("stm32l496zg", description="MCU profile (`estimator` only).")
    model: Literal["cnn3", "daghero"] = Field("cnn3", description="Model (`estimator` only).")
    input_channels: int = Field(3, ge=1, description="Input channels C.")
    input_length: int = Field(100, ge=1, description="Window length T, in samples.")
    n_classes: int = Field(6, ge=2, description="Output classes.")
    batch: int = Field(32, ge=1, description="Windows per batch.")


class BatterySection(Strict):
    """A battery-powered wearable: cell, adaptive inference, personalization jobs, radio and
    sleep."""

    cell: CellSection = Field(
        default_factory=CellSection,
        validation_alias=AliasChoices("cell", "battery"),
        description="Battery cell and charger.",
    )
    parts: str | None = Field(
        None,
        description="Parts file of sensor, radio and Table III costs, relative to the scenario "
        "file. Unset: `fedhar/wearable/data/parts.yaml` (sources inside).",
    )
    batches_per_epoch: int = Field(7, ge=1, description="Batches of one personalization epoch.")
    epochs: int = Field(5, ge=1, description="Epochs of one personalization job.")
    payload_bytes: int = Field(
        0,
        ge=0,
        description="Bytes of the model downloaded each round (a federation run's devices "
        "receive the bytes their payload puts on the wire instead).",
    )
    update_bytes: dict[Literal["full", "tl"], int] = Field(
        default_factory=lambda: {"full": 0, "tl": 0},
        description="Bytes uploaded after a job, by mode (a federation run's devices send the "
        "bytes of the update they reply with instead, 0 without one).",
    )
    window_s: float = Field(10.0, gt=0, description="Time between classified windows, in s.")
    control_s: float = Field(600.0, gt=0, description="Policy and load update step, in s.")
    charge_step_s: float = Field(300.0, gt=0, description="Charger update step, in s.")
    trace_s: float = Field(3600.0, ge=0, description="State-of-charge trace step, in s (0: off).")
    modes: ModesSection = Field(description="The general model's adaptive-inference modes.")
    training: TrainingSection = Field(
        default_factory=TrainingSection, description="Personalization costs."
    )
