"""The KiBaM defaults reproduce the parts file's published cell (Multicomp LIR2450 data sheet)
through :class:`Battery`, and the fit that produced them is deterministic."""

from __future__ import annotations

import pytest

from fedhar.schema.battery import CellSection
from fedhar.wearable.battery import DEFAULTS, Battery, BatterySpec
from fedhar.wearable.build import cell_spec
from fedhar.wearable.kibam_fit import RatePoint, c_profile, fit, load_cell


@pytest.fixture(scope="module")
def cell():
    return load_cell()


def test_the_default_constants_are_the_parts_file_fit():
    spec = BatterySpec(120.0, model="kibam")
    assert (spec.kibam_c, spec.kibam_k_per_s) == (DEFAULTS.kibam_c, DEFAULTS.kibam_k_per_s)
    built = cell_spec(CellSection(), 120.0)  # a scenario that leaves them unset
    assert (built.kibam_c, built.kibam_k_per_s) == (DEFAULTS.kibam_c, DEFAULTS.kibam_k_per_s)
    assert built.termination_fraction == DEFAULTS.termination_fraction == 0.075


def test_battery_with_the_defaults_delivers_the_published_capacity_within_3_percent(cell):
    """A full cell discharged at each published rate until its available well empties."""
    spec = BatterySpec(cell.capacity_mah, model="kibam")
    assert len(cell.points) >= 2
    for point in cell.points:
        battery = Battery.full(spec)
        current_a = point.c_rate * cell.capacity_mah / 1000.0
        t_s = battery.time_to_available(0.0, current_a)
        battery.step(current_a, t_s)
        assert battery.available_c == pytest.approx(0.0, abs=1e-6 * spec.capacity_c)
        delivered_mah = current_a * t_s / 3.6
        assert delivered_mah == pytest.approx(
            point.delivered_fraction * cell.capacity_mah, rel=0.03
        ), point


def test_fit_is_deterministic_and_gives_the_stored_k(cell):
    first = fit(cell.points, c=DEFAULTS.kibam_c)
    second = fit(cell.points, c=DEFAULTS.kibam_c)
    assert first == second
    assert first.k_per_s == pytest.approx(DEFAULTS.kibam_k_per_s, rel=0.01)
    assert all(abs(e) < 0.03 for e in first.errors)
    joint_a, joint_b = fit(cell.points), fit(cell.points)
    assert joint_a == joint_b


def test_two_slow_rates_fix_only_k_over_one_minus_c_squared(cell):
    """The source's rates leave the wells in quasi-equilibrium, so c is not identified: the
    best objective hardly moves with c while k / (1 - c)^2 stays put."""
    profile = c_profile(cell.points, (0.1, 0.3, 0.5))
    objectives = [f.objective for f in profile]
    assert max(objectives) == pytest.approx(min(objectives), rel=1e-3)
    k_eq = [f.k_equilibrium_per_s for f in profile]
    assert max(k_eq) == pytest.approx(min(k_eq), rel=1e-3)


def test_fit_recovers_a_known_kibam_from_three_rates():
    """With a rate fast enough to leave quasi-equilibrium, both c and k are identified."""
    c, k = 0.4, 2e-4
    probe = BatterySpec(100.0, model="kibam", kibam_c=c, kibam_k_per_s=k)
    points = []
    for rate in (0.2, 1.0, 5.0):
        battery = Battery.full(probe)
        current = rate * 0.1
        delivered = current * battery.time_to_available(0.0, current) / probe.capacity_c
        points.append(RatePoint(rate, delivered))
    result = fit(points)
    assert result.c == pytest.approx(c, abs=0.01)
    assert result.k_per_s == pytest.approx(k, rel=0.05)
    assert all(abs(e) < 1e-3 for e in result.errors)
