"""A simulated wearable from a validated ``battery:`` section
(:class:`fedhar.schema.battery.BatterySection`): its cell, its modes tables, its costs and its
policies, as one :class:`fedhar.wearable.simulation.WearableConfig`.
"""

from __future__ import annotations

from pathlib import Path

from fedhar.enums import WEARABLE_JOBS, WEARABLE_MODELS
from fedhar.mcu import load_profile
from fedhar.models.spec import build_spec
from fedhar.ondevice.estimator import estimate_training
from fedhar.schema.battery import BatterySection, CellSection, ModesSection, TrainingSection
from fedhar.schema.policies import PolicySection
from fedhar.wearable.battery import BatterySpec
from fedhar.wearable.charging import make_charging
from fedhar.wearable.loads import (
    PARTS_FILE,
    AdaptiveInferenceCost,
    PersonalizationCost,
    WearableCosts,
    load_parts,
    personalization_cost_from_profile,
)
from fedhar.wearable.modes import ModesTable
from fedhar.wearable.policies import make_personalization_policy, make_threshold_policy
from fedhar.wearable.simulation import WearableConfig


def cell_spec(cell: CellSection, capacity_mah: float) -> BatterySpec:
    """The battery spec of ``cell`` at ``capacity_mah`` mAh; what the section leaves unset
    takes the parts file's value (:data:`fedhar.wearable.battery.DEFAULTS`)."""
    return BatterySpec(capacity_mah=capacity_mah, **cell.model_dump(exclude_none=True))


def modes_table(modes: ModesSection, base_dir: Path, default_csv: Path | None = None) -> ModesTable:
    """The general model's table: ``modes.csv`` (relative to ``base_dir``) or ``modes.rows``,
    or, when the section gives neither, ``default_csv`` (the modes table of the adaptive run a
    replay section points at)."""
    if modes.csv is not None:
        path = Path(modes.csv)
        return ModesTable.from_csv(path if path.is_absolute() else base_dir / path)
    if modes.rows is not None:
        return ModesTable.from_rows([r.model_dump() for r in modes.rows], "battery.modes.rows")
    if default_csv is None:
        raise ValueError("battery.modes: expected csv or rows, got neither")
    return ModesTable.from_csv(default_csv)


def priced_training(
    training: TrainingSection, batches_per_epoch: int
) -> tuple[dict[str, PersonalizationCost], float, str]:
    """Cost per epoch by mode from the estimator's counted operations priced by the section's
    MCU profile, the profile's sleep power in W, and a line naming that source."""
    spec = build_spec(
        training.model, training.input_channels, training.input_length, training.n_classes
    )
    profile = load_profile(training.profile)
    costs = {
        mode: personalization_cost_from_profile(
            profile,
            estimate_training(spec, mode, training.batch).ops_total_per_batch,
            batches_per_epoch,
        )
        for mode in (m.value for m in WEARABLE_JOBS)
    }
    source = (
        f"fedhar.ondevice.estimator op counts of {training.model} ({training.input_channels}, "
        f"{training.input_length}) priced by MCU profile {profile.name} ({profile.path})"
    )
    return costs, profile.sleep_watts, source


def device_costs(
    section: BatterySection, base_dir: Path, modes_csv: Path | None = None
) -> tuple[WearableCosts, dict[str, ModesTable]]:
    """The device's costs and its modes tables by model (general, TL, Full). Inference costs
    are fitted to the general table (``modes_csv`` when the section names none); the rest
    comes from the parts file, or from the estimator when ``training.source`` says so."""
    parts_path = PARTS_FILE if section.parts is None else base_dir / section.parts
    parts = load_parts(section.batches_per_epoch, parts_path)
    general = modes_table(section.modes, base_dir, modes_csv)
    tables = {m: general.personalized(m, section.modes.f1_reference) for m in WEARABLE_MODELS}
    inference = AdaptiveInferenceCost.from_modes(general, section.modes.clock_hz)
    sources = {**parts.sources, "inference": "fitted to the modes table"}
    personalization, sleep_w = parts.personalization, parts.sleep_w
    if section.training.source == "estimator":
        personalization, sleep_w, line = priced_training(
            section.training, section.batches_per_epoch
        )
        sources["training"] = sources["sleep"] = line
    costs = WearableCosts(
        inference=inference,
        personalization=personalization,
        radio=parts.radio,
        sensor=parts.sensor,
        sleep_w=sleep_w,
        sources=sources,
    )
    return costs, tables


def build_wearable_config(
    section: BatterySection,
    base_dir: Path,
    *,
    capacity_mah: float,
    charging: PolicySection,
    personalization: PolicySection,
    threshold: PolicySection,
    seed: int,
    modes_csv: Path | None = None,
) -> WearableConfig:
    """A device configuration from the ``battery:`` section and one point of a grid;
    ``modes_csv`` is the general modes table when the section names none."""
    costs, tables = device_costs(section, base_dir, modes_csv)
    return WearableConfig(
        battery=cell_spec(section.cell, capacity_mah),
        costs=costs,
        modes=tables,
        threshold=make_threshold_policy(threshold),
        personalization=make_personalization_policy(personalization),
        charging=make_charging(charging),
        epochs=section.epochs,
        payload_bytes=section.payload_bytes,
        update_bytes=dict(section.update_bytes),
        window_s=section.window_s,
        control_s=section.control_s,
        charge_step_s=section.charge_step_s,
        trace_s=section.trace_s,
        seed=seed,
    )
