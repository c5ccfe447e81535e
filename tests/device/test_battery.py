"""Battery models: KiBaM rate-capacity and recovery, cut-off levels, CC-CV charging."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedhar.wearable.battery import Battery, BatterySpec

KIBAM = BatterySpec(100.0, model="kibam", kibam_c=0.5, kibam_k_per_s=1e-4)
COULOMB = BatterySpec(100.0)


def delivered_c(spec: BatterySpec, current_a: float) -> float:
    """Charge delivered (C) at a constant current from full until the available well is empty."""
    battery = Battery.full(spec)
    return current_a * battery.time_to_available(0.0, current_a)


def test_coulomb_counting_delivers_the_whole_capacity_at_any_rate():
    for current in (0.001, 0.1, 1.0):
        assert delivered_c(COULOMB, current) == pytest.approx(COULOMB.capacity_c, rel=1e-9)


def test_kibam_delivers_less_at_high_rate_than_coulomb_counting():
    low = delivered_c(KIBAM, 0.0005)  # C/200
    high = delivered_c(KIBAM, 0.2)  # 2C
    assert high < low <= KIBAM.capacity_c * (1 + 1e-6)
    assert high < 0.6 * KIBAM.capacity_c
    assert low > 0.9 * KIBAM.capacity_c


def test_kibam_recovers_available_charge_at_rest():
    battery = Battery.full(KIBAM)
    current = 0.2
    battery.step(current, battery.time_to_available(0.0, current))
    assert battery.available_c == pytest.approx(0.0, abs=1e-3)
    stored = battery.charge_c
    battery.step(0.0, 3600.0)
    assert battery.available_c > 0.2 * stored * KIBAM.kibam_c
    assert battery.charge_c == pytest.approx(stored)  # rest moves charge, it creates none
    restart = Battery.full(KIBAM)
    restart.step(current, restart.time_to_available(0.0, current))
    wait = restart.time_to_available(0.05 * KIBAM.kibam_c * KIBAM.capacity_c, 0.0)
    assert 0 < wait < 3600.0


def test_kibam_closed_form_matches_fine_euler_integration():
    battery = Battery.full(KIBAM, soc=0.7)
    c, k, current, dt = KIBAM.kibam_c, KIBAM.kibam_k_per_s, 0.05, 0.5
    y1, y2 = battery.available_c, battery.bound_c
    for _ in range(4000):
        flow = k * (y2 / (1 - c) - y1 / c)
        y1, y2 = y1 + (-current + flow) * dt, y2 - flow * dt
    battery.step(current, 2000.0)
    assert battery.available_c == pytest.approx(y1, rel=1e-3)
    assert battery.bound_c == pytest.approx(y2, rel=1e-3)


def test_charging_is_constant_current_then_decays_in_the_cv_phase():
    spec = BatterySpec(100.0, charge_current_ma=100.0, cv_soc=0.8, termination_fraction=0.075)
    currents = []
    for soc in (0.1, 0.5, 0.8, 0.9, 0.95, 0.98):
        currents.append(Battery.full(spec, soc).charge_current_a())
    assert currents[:3] == [pytest.approx(0.1)] * 3  # CC phase: the set current
    assert currents[2] > currents[3] > currents[4] > currents[5] > 0.0  # CV phase decays
    assert currents[3] == pytest.approx(0.05)  # linear in soc, zero at full
    assert Battery.full(spec, 1.0).charge_current_a() == 0.0


def charge_from(spec: BatterySpec, soc: float, dt_s: float = 1.0) -> tuple[float, list[float]]:
    """Charges a coulomb-counted battery from ``soc`` with the charger current re-read every
    ``dt_s`` until the charger gives 0; the time in s and the currents in A."""
    battery = Battery.full(spec, soc)
    t, currents = 0.0, []
    while (current := battery.charge_current_a()) > 0.0:
        currents.append(current)
        battery.step(-current, dt_s)
        t += dt_s
        assert t < 1e6
    return t, currents


def test_cv_phase_current_decays_exponentially_in_time():
    spec = BatterySpec(100.0, charge_current_ma=50.0, cv_soc=0.7, termination_fraction=0.05)
    dt = 1.0
    _, currents = charge_from(spec, 0.7, dt)
    tau = spec.cv_time_constant_s
    assert tau == pytest.approx(spec.capacity_c * 0.3 / 0.05)
    for n in (600, 3000, 6000):
        assert currents[n] == pytest.approx(0.05 * math.exp(-n * dt / tau), rel=2e-3)


def test_charging_stops_at_the_termination_current():
    spec = BatterySpec(100.0, charge_current_ma=100.0, cv_soc=0.8, termination_fraction=0.1)
    _, currents = charge_from(spec, 0.5)
    i_term = 0.1 * 0.1
    assert min(currents) >= i_term
    assert currents[-1] == pytest.approx(i_term, rel=2e-3)
    assert spec.termination_soc == pytest.approx(1.0 - 0.1 * 0.2)
    done = Battery.full(spec, spec.termination_soc)
    assert done.charge_current_a() == 0.0
    just_below = Battery.full(spec, spec.termination_soc - 1e-4)
    assert just_below.charge_current_a() == pytest.approx(i_term, rel=1e-2)


@pytest.mark.parametrize("current_ma", [15.0, 60.0])
def test_full_charge_from_empty_takes_the_model_time(current_ma):
    spec = BatterySpec(120.0, charge_current_ma=current_ma)  # parts-file cv_soc, termination
    t, _ = charge_from(spec, 0.0)
    cc_a = current_ma / 1000.0
    expected = (
        spec.capacity_c
        / cc_a
        * (spec.cv_soc + (1.0 - spec.cv_soc) * math.log(1.0 / spec.termination_fraction))
    )
    assert spec.charge_time_s(0.0) == pytest.approx(expected, rel=1e-12)
    assert t == pytest.approx(expected, rel=2e-3)
    assert Battery.full(spec, 0.0).soc == 0.0
    assert spec.charge_time_s(spec.termination_soc) == 0.0


def test_pure_constant_current_charges_to_full():
    spec = BatterySpec(100.0, charge_current_ma=100.0, cv_soc=1.0)
    assert spec.termination_soc == 1.0
    assert Battery.full(spec, 0.99).charge_current_a() == pytest.approx(0.1)
    assert spec.charge_time_s(0.0) == pytest.approx(3600.0)


def test_charger_constants_are_validated():
    with pytest.raises(ValueError, match="cv_soc: expected in"):
        BatterySpec(10.0, cv_soc=0.0)
    with pytest.raises(ValueError, match="termination_fraction: expected in"):
        BatterySpec(10.0, termination_fraction=1.0)
    with pytest.raises(ValueError, match="recharge_soc: expected in"):
        BatterySpec(10.0, cv_soc=0.8, termination_fraction=0.5, recharge_soc=0.95)


def test_spec_errors_name_the_field_and_the_expectation():
    with pytest.raises(ValueError, match="capacity_mah: expected > 0"):
        BatterySpec(0.0)
    with pytest.raises(ValueError, match="model: expected one of"):
        BatterySpec(10.0, model="lead")
    with pytest.raises(ValueError, match="cutoff_soc, restart_soc"):
        BatterySpec(10.0, cutoff_soc=0.2, restart_soc=0.1)


def test_no_crossing_is_infinite():
    battery = Battery.full(COULOMB, 0.5)
    assert math.isinf(battery.time_to_available(0.0, -0.1))
    assert math.isinf(Battery.full(KIBAM, 0.5).time_to_available(KIBAM.capacity_c, 0.0))


@settings(max_examples=60, deadline=None)
@given(
    soc=st.floats(0.05, 1.0),
    current=st.floats(-0.05, 0.2),
    a=st.floats(0.0, 5000.0),
    b=st.floats(0.0, 5000.0),
)
def test_kibam_steps_compose_and_conserve_charge(soc, current, a, b):
    """Two steps at one current equal one step of the summed length, and the total charge
    falls by exactly current x time (the wells only move charge between them)."""
    one, two = Battery.full(KIBAM, soc), Battery.full(KIBAM, soc)
    start = one.charge_c
    one.step(current, a)
    one.step(current, b)
    two.step(current, a + b)
    assert one.available_c == pytest.approx(two.available_c, rel=1e-9, abs=1e-9)
    assert one.charge_c == pytest.approx(start - current * (a + b), rel=1e-12, abs=1e-9)
