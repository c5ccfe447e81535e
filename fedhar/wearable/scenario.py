"""The ``device:`` section of a scenario: its schema and the device configuration it builds.

Unknown keys are errors. :func:`describe_errors` turns a pydantic error into lines that
name the file, the key path and what was expected.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from fedhar.mcu import load_profile
from fedhar.models.spec import build_spec
from fedhar.ondevice.estimator import estimate_training
from fedhar.wearable.battery import BatterySpec
from fedhar.wearable.charging import make_charging
from fedhar.wearable.device import DeviceConfig
from fedhar.wearable.loads import (
    PARTS_FILE,
    AdaptiveInferenceCost,
    DeviceCosts,
    PersonalizationCost,
    load_parts,
    personalization_cost_from_profile,
)
from fedhar.wearable.modes import PERSONALIZATION_MODES, TABLE_II_WISDM_F1, ModesTable
from fedhar.wearable.policies import make_personalization_policy, make_threshold_policy


class Strict(BaseModel):
    """Base of every section: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BatterySection(Strict):
    """Battery and charger (see :class:`fedhar.wearable.battery.BatterySpec`); the capacity
    comes from the study grid or the client."""

    voltage_v: float = Field(3.7, gt=0)
    model: Literal["coulomb", "kibam"] = "kibam"
    cutoff_soc: float = Field(0.0, ge=0, lt=1)
    restart_soc: float = Field(0.05, gt=0, le=1)
    kibam_c: float = Field(0.6, gt=0, lt=1)
    kibam_k_per_s: float = Field(1e-4, gt=0)
    charge_current_ma: float = Field(30.0, ge=0)
    taper_soc: float = Field(0.8, gt=0, le=1)

    def spec(self, capacity_mah: float) -> BatterySpec:
        """The battery spec at ``capacity_mah`` mAh."""
        return BatterySpec(capacity_mah=capacity_mah, **self.model_dump())


class ModeRowSection(Strict):
    """One modes-table row (issue 5's columns)."""

    th: float
    f1: float = Field(ge=0, le=1)
    p_easy: float = Field(ge=0, le=1)
    cycles_avg: float = Field(ge=0)
    energy_uj_avg: float = Field(ge=0)
    pareto: bool = True


class ModesSection(Strict):
    """The general model's modes table: a CSV path (relative to the scenario) or inline
    rows; ``clock_hz`` turns its cycles into seconds."""

    csv: str | None = None
    rows: list[ModeRowSection] | None = None
    clock_hz: float = Field(gt=0)
    f1_reference: dict[Literal["none", "tl", "full"], float] = Field(
        default_factory=lambda: dict(TABLE_II_WISDM_F1)
    )

    def table(self, base_dir: Path, default_csv: Path | None = None) -> ModesTable:
        """The general model's table: ``csv`` or ``rows``, or, when both are omitted,
        ``default_csv`` (the modes table of the adaptive run a replay section points at)."""
        if self.csv is None and self.rows is None and default_csv is not None:
            return ModesTable.from_csv(default_csv)
        if (self.csv is None) == (self.rows is None):
            raise ValueError("device.modes: expected exactly one of 'csv' or 'rows'")
        if self.csv is not None:
            path = Path(self.csv)
            return ModesTable.from_csv(path if path.is_absolute() else base_dir / path)
        return ModesTable.from_rows([r.model_dump() for r in self.rows or []], "device.modes.rows")


class TrainingSection(Strict):
    """Where personalization costs come from: the parts file's Table III figures
    (``parts``), or the analytic estimator's counted operations of ``model`` priced by the
    MCU ``profile`` (``estimator``), which also sets the sleep power."""

    source: Literal["parts", "estimator"] = "parts"
    profile: str = "stm32l496zg"
    model: Literal["cnn3", "daghero"] = "cnn3"
    input_channels: int = Field(3, ge=1)
    input_length: int = Field(100, ge=1)
    n_classes: int = Field(6, ge=2)
    batch: int = Field(32, ge=1)

    def priced(self, batches_per_epoch: int) -> tuple[dict[str, PersonalizationCost], float, str]:
        """Cost per epoch by mode, sleep power in W and a source line."""
        spec = build_spec(self.model, self.input_channels, self.input_length, self.n_classes)
        profile = load_profile(self.profile)
        costs = {
            mode: personalization_cost_from_profile(
                profile,
                estimate_training(spec, mode, self.batch).ops_total_per_batch,
                batches_per_epoch,
            )
            for mode in ("full", "tl")
        }
        source = (
            f"fedhar.ondevice.estimator op counts of {self.model} ({self.input_channels}, "
            f"{self.input_length}) priced by MCU profile {profile.name} ({profile.path})"
        )
        return costs, profile.sleep_watts, source


class DeviceSection(Strict):
    """The ``device:`` section."""

    battery: BatterySection = BatterySection()
    parts: str | None = None
    batches_per_epoch: int = Field(7, ge=1)
    epochs: int = Field(5, ge=1)
    payload_bytes: int = Field(0, ge=0)
    update_bytes: dict[Literal["full", "tl"], int] = Field(
        default_factory=lambda: {"full": 0, "tl": 0}
    )
    window_s: float = Field(10.0, gt=0)
    control_s: float = Field(600.0, gt=0)
    charge_step_s: float = Field(300.0, gt=0)
    trace_s: float = Field(3600.0, ge=0)
    modes: ModesSection
    training: TrainingSection = TrainingSection()

    def costs(
        self, base_dir: Path, modes_csv: Path | None = None
    ) -> tuple[DeviceCosts, dict[str, ModesTable]]:
        """The device's costs and its modes tables by model (general, TL, Full). Inference
        costs are fitted to the general table (``modes_csv`` when the section names none);
        the rest comes from the parts file."""
        parts_path = PARTS_FILE if self.parts is None else base_dir / self.parts
        parts = load_parts(self.batches_per_epoch, parts_path)
        general = self.modes.table(base_dir, modes_csv)
        tables = {
            m: general.personalized(m, self.modes.f1_reference) for m in PERSONALIZATION_MODES
        }
        inference = AdaptiveInferenceCost.from_modes(general, self.modes.clock_hz)
        sources = {**parts.sources, "inference": "fitted to the modes table"}
        personalization, sleep_w = parts.personalization, parts.sleep_w
        if self.training.source == "estimator":
            personalization, sleep_w, line = self.training.priced(self.batches_per_epoch)
            sources["training"] = sources["sleep"] = line
        costs = DeviceCosts(
            inference=inference,
            personalization=personalization,
            radio=parts.radio,
            sensor=parts.sensor,
            sleep_w=sleep_w,
            sources=sources,
        )
        return costs, tables


class ReplaySection(Strict):
    """The optional ``replay:`` section: real windows replayed through the real adaptive
    classifier, so that F1 and the easy share are measured rather than read from a table.

    Attributes:
        adaptive_dir: output directory of ``fedhar adaptive`` (relative to the study
            scenario): ``model.pt`` (general model), ``users/<id>/model.pt`` (personalized)
            and ``modes.csv``; ``fedhar study --adaptive-dir`` overrides it.
        adaptive_scenario: the ``fedhar adaptive`` scenario that trained it (relative to the
            study scenario); its dataset, window, stride, seed and held-out users give each
            user's test windows TS_i exactly as the adaptive run split them.
        data_dir: dataset directory (default: the adaptive scenario's, then
            ``FEDHAR_DATA_DIR``).
        users: held-out users to replay, one simulated device each (default: every user with
            a personalized model).
        schedule: ``[[start_h, activity], ...]``: the users' day (activity = class name).
        batch_size: windows per classifier call.
    """

    adaptive_dir: str | None = None
    adaptive_scenario: str
    data_dir: str | None = None
    users: list[str] | None = Field(None, min_length=1)
    schedule: list[tuple[float, str]] = Field(min_length=1)
    batch_size: int = Field(512, ge=1)


class PolicySection(Strict):
    """A policy or habit by registered name with its parameters."""

    name: str
    params: dict[str, object] = Field(default_factory=dict)


def build_device_config(
    section: DeviceSection,
    base_dir: Path,
    *,
    capacity_mah: float,
    charging: PolicySection,
    personalization: PolicySection,
    threshold: PolicySection,
    seed: int,
    modes_csv: Path | None = None,
) -> DeviceConfig:
    """A device configuration from the ``device:`` section and one point of a grid;
    ``modes_csv`` is the general modes table when the section names none."""
    costs, tables = section.costs(base_dir, modes_csv)
    return DeviceConfig(
        battery=section.battery.spec(capacity_mah),
        costs=costs,
        modes=tables,
        threshold=make_threshold_policy(threshold.name, threshold.params),
        personalization=make_personalization_policy(personalization.name, personalization.params),
        charging=make_charging(charging.name, **charging.params),  # type: ignore[arg-type]
        epochs=section.epochs,
        payload_bytes=section.payload_bytes,
        update_bytes=dict(section.update_bytes),
        window_s=section.window_s,
        control_s=section.control_s,
        charge_step_s=section.charge_step_s,
        trace_s=section.trace_s,
        seed=seed,
    )


def _fields_at(model: type[BaseModel], loc: tuple[object, ...]) -> list[str] | None:
    """Allowed keys of the model reached by following ``loc`` from ``model``."""
    current: object = model
    for part in loc:
        if isinstance(part, int) or not isinstance(current, type):
            continue
        if not issubclass(current, BaseModel) or part not in current.model_fields:
            return None
        current = current.model_fields[str(part)].annotation
        while typing.get_origin(current) in (list, dict, typing.Union, types.UnionType):
            args = [a for a in typing.get_args(current) if a is not type(None)]
            current = args[-1] if args else None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


def describe_errors(
    source: str, root: type[BaseModel], exc: pydantic.ValidationError, prefix: tuple = ()
) -> list[str]:
    """One line per error: ``FILE: key.path: what was expected (got ...)``."""
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path = ".".join(str(p) for p in prefix + loc)
        if err["type"] == "extra_forbidden":
            allowed = _fields_at(root, loc[:-1])
            hint = f"expected one of {allowed}" if allowed else "not a known key"
            lines.append(f"{source}: {path}: unknown key; {hint}")
        else:
            got = err.get("input")
            lines.append(f"{source}: {path}: {err['msg']} (got {got!r})")
    return lines
