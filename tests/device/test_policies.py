"""Threshold and personalization policies, and the policy registries: the wearable builds
exactly the policies the schema names, from their parameters."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import ValidationError

from fedhar.schema.policies import POLICY_KINDS, policy
from fedhar.wearable.charging import CHARGING_HABITS
from fedhar.wearable.policies import (
    PERSONALIZATION_POLICIES,
    THRESHOLD_POLICIES,
    JobView,
    make_personalization_policy,
    make_threshold_policy,
)


def test_stepwise_hysteresis_does_not_chatter_around_a_boundary():
    stepwise = make_threshold_policy(
        policy("threshold", "stepwise", steps=[[0.0, 0.0], [0.5, 1.0]], hysteresis=0.05)
    )
    level = None
    chosen = []
    for i in range(200):
        soc = 0.5 + (0.02 if i % 2 else -0.02)  # noise around the 0.5 boundary
        th, level = stepwise.choose(soc, level)
        chosen.append(th)
    assert len(set(chosen)) == 1
    th, level = stepwise.choose(0.56, level)
    assert th == 1.0
    th, level = stepwise.choose(0.52, level)
    assert th == 1.0  # stays up until below 0.5
    th, level = stepwise.choose(0.49, level)
    assert th == 0.0


def test_linear_threshold_follows_soc_between_its_limits():
    linear = make_threshold_policy(policy("threshold", "linear", th_min=0.2, th_max=1.0))
    assert linear.choose(0.1, None)[0] == 0.2
    assert linear.choose(0.5, None)[0] == pytest.approx(0.6)
    assert linear.choose(0.95, None)[0] == 1.0


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
    waits = make_personalization_policy(policy("personalization", "charging_full_else_tl"))
    assert waits.choose(view(0.5, charging=True)) == "full"
    assert waits.choose(view(0.5, charging=False)) is None
    assert waits.choose(view(0.5, charging=False, seconds_left=1000.0)) == "tl"


def test_energy_budget_picks_the_deepest_mode_that_fits():
    budget = make_personalization_policy(
        policy("personalization", "energy_budget", reserve_soc=0.3)
    )
    assert budget.choose(view(0.9, False)) == "full"  # 0.5 * (360 - 120) = 120 J
    assert budget.choose(view(0.45, False)) == "tl"  # 0.5 * (180 - 120) = 30 J
    assert budget.choose(view(0.3, False)) is None
    assert budget.choose(view(0.1, True)) == "full"


def test_unknown_parameters_and_values_out_of_range_are_rejected() -> None:
    with pytest.raises(ValidationError, match="reserve"):
        policy("personalization", "energy_budget", reserve=0.1)
    with pytest.raises(ValidationError, match="strictly increasing"):
        policy("threshold", "stepwise", steps=[[0.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValidationError, match="start_h"):
        policy("charging", "nightly", start_h=7.0, end_h=7.0)


@pytest.mark.parametrize(
    "kind, registry",
    [
        ("charging", CHARGING_HABITS),
        ("personalization", PERSONALIZATION_POLICIES),
        ("threshold", THRESHOLD_POLICIES),
    ],
)
def test_wearable_registries_build_exactly_the_schemas_policies(kind: str, registry: dict) -> None:
    schema = POLICY_KINDS[kind]
    assert list(registry) == list(schema)
    for name, params in schema.items():
        fields = [f.name for f in dataclasses.fields(registry[name])]
        assert fields == list(params.model_fields), name
