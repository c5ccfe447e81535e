"""Builders shared by the device tests: plain configurations with chosen numbers."""

from __future__ import annotations

from fedhar.schema.battery import TABLE_II_WISDM_F1
from fedhar.schema.policies import policy
from fedhar.wearable.battery import BatterySpec
from fedhar.wearable.charging import make_charging
from fedhar.wearable.loads import (
    AdaptiveInferenceCost,
    InferenceCost,
    PersonalizationCost,
    RadioCost,
    SensorCost,
    WearableCosts,
)
from fedhar.wearable.modes import ModesTable
from fedhar.wearable.policies import make_personalization_policy, make_threshold_policy
from fedhar.wearable.simulation import WearableConfig

ROWS = [
    {"th": 0.0, "f1": 0.90, "p_easy": 1.0, "cycles_avg": 2e5, "energy_uj_avg": 4.0},
    {"th": 0.5, "f1": 0.95, "p_easy": 0.5, "cycles_avg": 6e5, "energy_uj_avg": 12.0},
    {"th": 1.0, "f1": 0.98, "p_easy": 0.0, "cycles_avg": 1e6, "energy_uj_avg": 20.0},
]


def modes() -> dict[str, ModesTable]:
    table = ModesTable.from_rows(ROWS)
    return {m: table.personalized(m, TABLE_II_WISDM_F1) for m in ("none", "tl", "full")}


def costs(
    inference_j: float = 10e-6,
    full_epoch_j: float = 1.0,
    tl_epoch_j: float = 0.3,
    sensor_w: float = 4e-6,
    sleep_w: float = 6e-6,
) -> WearableCosts:
    cost = InferenceCost(inference_j, 1e-3)
    return WearableCosts(
        inference=AdaptiveInferenceCost(easy=cost, hard=InferenceCost(2 * inference_j, 2e-3)),
        personalization={
            "full": PersonalizationCost(full_epoch_j, 400.0),
            "tl": PersonalizationCost(tl_epoch_j, 120.0),
        },
        radio=RadioCost(1.3e-7, 1.3e-7, 125000.0),
        sensor=SensorCost(sensor_w),
        sleep_w=sleep_w,
    )


def config(
    capacity_mah: float = 30.0,
    model: str = "coulomb",
    personalization: str = "always_full",
    charging: str = "never",
    charging_params: dict | None = None,
    threshold: str = "static",
    threshold_params: dict | None = None,
    **overrides,
) -> WearableConfig:
    base = {
        "battery": BatterySpec(capacity_mah, model=model, kibam_c=0.6, kibam_k_per_s=1e-4),
        "costs": costs(),
        "modes": modes(),
        "threshold": make_threshold_policy(
            policy("threshold", threshold, **(threshold_params or {"th": 0.5}))
        ),
        "personalization": make_personalization_policy(policy("personalization", personalization)),
        "charging": make_charging(policy("charging", charging, **(charging_params or {}))),
        "payload_bytes": 20000,
        "update_bytes": {"full": 20000, "tl": 2000},
    }
    base.update(overrides)
    return WearableConfig(**base)
