"""Checks against the papers' own numbers."""

from __future__ import annotations

import math

import pytest

from fedhar.wearable.battery import BatterySpec
from fedhar.wearable.loads import (
    AdaptiveInferenceCost,
    InferenceCost,
    PersonalizationCost,
    RadioCost,
    SensorCost,
    WearableCosts,
    load_parts,
)
from fedhar.wearable.simulation import Wearable

from .helpers import config

YEAR_S = 365.25 * 86400


def test_daghero2022_battery_lifetime_over_seven_years_matches_analytic():
    """Daghero et al. 2022 §5.6: 30 mAh at 3.7 V, one 15.94 µJ inference every 10 s and no
    other load lasts more than 7 years; the simulation matches capacity / mean power."""
    one = InferenceCost(15.94e-6, 4.19e-3)
    costs = WearableCosts(
        inference=AdaptiveInferenceCost(easy=one, hard=one),
        personalization={mode: PersonalizationCost(1.0, 1.0) for mode in ("full", "tl")},
        radio=RadioCost(0.0, 0.0, 1.0),
        sensor=SensorCost(0.0),
        sleep_w=0.0,
    )
    cfg = config(
        battery=BatterySpec(30.0, voltage_v=3.7, cutoff_soc=0.0),
        costs=costs,
        personalization="never",
        control_s=86400.0,
        trace_s=0.0,
    )
    device = Wearable(cfg)
    device.advance(10 * YEAR_S, new_round=False)
    simulated_s = device.state.first_depletion_s
    analytic_s = 30e-3 * 3600 * 3.7 / (15.94e-6 / 10.0)
    assert simulated_s is not None
    assert simulated_s > 7 * YEAR_S
    assert simulated_s == pytest.approx(analytic_s, rel=0.01)
    assert device.state.totals.inferences == pytest.approx(simulated_s / 10.0, abs=1)


def test_craighero2023_table3_energy_ratio_equals_time_ratio():
    """Craighero et al. 2023 Table III: the power per batch is the same for Full and TL
    (2.68 vs 2.67 mW), so the simulated Full/TL training energy ratio is the time ratio."""
    parts = load_parts(batches_per_epoch=1)
    spent = {}
    for mode in ("full", "tl"):
        cfg = config(capacity_mah=300.0, costs=parts, personalization=f"always_{mode}", epochs=1)
        report = Wearable(cfg).advance(3600.0)
        assert getattr(report, f"{mode}_jobs") == 1
        spent[mode] = report.energy_j["training"]
    time_ratio = 48.10 / 14.25
    assert spent["full"] / spent["tl"] == pytest.approx(time_ratio, rel=0.005)
    assert spent["full"] == pytest.approx(48.10 * 2.68e-3, rel=1e-9)
    assert math.isclose(parts.personalization["full"].watts, 2.68e-3)
