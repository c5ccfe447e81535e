"""Threshold and personalization policies."""

from __future__ import annotations

import pytest

from fedhar.wearable.policies import JobView, make_personalization_policy, make_threshold_policy


def test_stepwise_hysteresis_does_not_chatter_around_a_boundary():
    policy = make_threshold_policy(
        "stepwise", {"steps": [[0.0, 0.0], [0.5, 1.0]], "hysteresis": 0.05}
    )
    level = None
    chosen = []
    for i in range(200):
        soc = 0.5 + (0.02 if i % 2 else -0.02)  # noise around the 0.5 boundary
        th, level = policy.choose(soc, level)
        chosen.append(th)
    assert len(set(chosen)) == 1
    th, level = policy.choose(0.56, level)
    assert th == 1.0
    th, level = policy.choose(0.52, level)
    assert th == 1.0  # stays up until below 0.5
    th, level = policy.choose(0.49, level)
    assert th == 0.0


def test_linear_threshold_follows_soc_between_its_limits():
    policy = make_threshold_policy("linear", {"th_min": 0.2, "th_max": 1.0})
    assert policy.choose(0.1, None)[0] == 0.2
    assert policy.choose(0.5, None)[0] == pytest.approx(0.6)
    assert policy.choose(0.95, None)[0] == 1.0


def view(soc: float, charging: bool, seconds_left: float = 86400.0) -> JobView:
    return JobView(
        soc=soc,
        charging=charging,
        seconds_left=seconds_left,
        battery_j=soc * 400.0,
        capacity_j=400.0,
        job_j={"full": 50.0, "tl": 15.0},
        job_s={"full": 3000.0, "tl": 900.0},
    )


def test_charging_full_else_tl_waits_for_the_charger_then_falls_back_to_tl():
    policy = make_personalization_policy("charging_full_else_tl")
    assert policy.choose(view(0.5, charging=True)) == "full"
    assert policy.choose(view(0.5, charging=False)) is None
    assert policy.choose(view(0.5, charging=False, seconds_left=1000.0)) == "tl"


def test_energy_budget_picks_the_deepest_mode_that_fits():
    policy = make_personalization_policy("energy_budget", {"reserve_soc": 0.3})
    assert policy.choose(view(0.9, False)) == "full"  # 0.5 * (360 - 120) = 120 J
    assert policy.choose(view(0.45, False)) == "tl"  # 0.5 * (180 - 120) = 30 J
    assert policy.choose(view(0.3, False)) is None
    assert policy.choose(view(0.1, True)) == "full"


def test_unknown_names_and_parameters_are_rejected_with_the_allowed_values():
    with pytest.raises(ValueError, match=r"threshold policy: expected one of \['linear'"):
        make_threshold_policy("sometimes")
    with pytest.raises(ValueError, match="personalization policy 'energy_budget': parameters"):
        make_personalization_policy("energy_budget", {"reserve": 0.1})
