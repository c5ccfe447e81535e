"""The policies a battery section names: charging habits, personalization policies and
adaptive-inference threshold policies.

Each is written ``{name: NAME, params: {...}}``. Every name has its own typed parameters (a
:class:`Strict` model below), so an unknown name, an unknown parameter or a value out of range is
an error of the file, reported with its key path at load time. :mod:`fedhar.wearable.charging`
and :mod:`fedhar.wearable.policies` build the behaviour from these validated parameters; their
registries list exactly the names of :data:`CHARGING_PARAMS`, :data:`PERSONALIZATION_PARAMS` and
:data:`THRESHOLD_PARAMS`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, create_model, field_validator, model_validator

from fedhar.schema.base import KeyProblem, Strict


class NoParams(Strict):
    """No parameters."""


class NightlyParams(Strict):
    """On the charger overnight, from `start_h` to `end_h` (the next day when earlier), on each
    night with `probability`."""

    start_h: float = Field(22.0, ge=0, lt=24, description="Hour the charging session starts.")
    end_h: float = Field(
        7.0, ge=0, lt=24, description="Hour it ends (the next day when before `start_h`)."
    )
    probability: float = Field(
        1.0, ge=0, le=1, description="Chance, each night, that the wearable is put on."
    )

    @model_validator(mode="after")
    def _window(self) -> NightlyParams:
        if self.start_h == self.end_h:
            raise KeyProblem(
                "end_h", f"expected an hour other than start_h, got {self.end_h} for both"
            )
        return self


class RandomParams(Strict):
    """Each day, with `probability`, one session at a uniformly random time lasting between
    `min_hours` and `max_hours`."""

    probability: float = Field(0.5, ge=0, le=1, description="Chance of a session each day.")
    min_hours: float = Field(0.5, gt=0, le=24, description="Shortest session, in hours.")
    max_hours: float = Field(3.0, gt=0, le=24, description="Longest session, in hours.")

    @model_validator(mode="after")
    def _ordered(self) -> RandomParams:
        if self.min_hours > self.max_hours:
            raise KeyProblem(
                "max_hours",
                f"expected a number >= min_hours ({self.min_hours}), got {self.max_hours}",
            )
        return self


class ChargingFullElseTlParams(Strict):
    """Craighero et al. 2023 §IV-C: Full while on the charger, TL on battery. The job waits for
    the charger until only `tl_margin` times the TL job's duration is left in the round, then
    runs TL on battery."""

    tl_margin: float = Field(
        2.0, ge=0, description="Time left, in TL job durations, at which TL runs on battery."
    )


class EnergyBudgetParams(Strict):
    """Full on the charger; otherwise the deepest mode (Full, then TL) whose job energy is at
    most `budget_share` of the stored energy above `reserve_soc`; else wait."""

    reserve_soc: float = Field(
        0.3, ge=0, le=1, description="State of charge kept in reserve (fraction)."
    )
    budget_share: float = Field(
        0.5, gt=0, le=1, description="Share of the energy above the reserve one job may use."
    )


class StaticParams(Strict):
    """The same threshold whatever the charge."""

    th: float = Field(description="Score-margin threshold.")


class LinearParams(Strict):
    """`th_min` at or below `soc_low`, `th_max` at or above `soc_high`, linear between."""

    th_min: float = Field(description="Threshold at or below `soc_low`.")
    th_max: float = Field(description="Threshold at or above `soc_high`.")
    soc_low: float = Field(0.2, ge=0, le=1, description="State of charge (fraction).")
    soc_high: float = Field(0.8, ge=0, le=1, description="State of charge (fraction).")

    @model_validator(mode="after")
    def _ordered(self) -> LinearParams:
        if self.soc_low >= self.soc_high:
            raise KeyProblem(
                "soc_high",
                f"expected a number > soc_low ({self.soc_low}), got {self.soc_high}",
            )
        return self


class StepwiseParams(Strict):
    """Threshold steps by state of charge, with hysteresis: the charge must exceed a step's
    `soc_min` by `hysteresis` before the policy moves up to it; it moves down as soon as the
    charge falls below the current step."""

    steps: tuple[tuple[float, float], ...] = Field(
        min_length=1,
        description="`[[soc_min, th], ...]`, `soc_min` strictly increasing from 0: step i "
        "applies from `soc_min[i]`.",
    )
    hysteresis: float = Field(
        0.05, ge=0, lt=1, description="Margin above a step's `soc_min` before moving up to it."
    )

    @field_validator("steps")
    @classmethod
    def _rising(cls, steps: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        socs = [s for s, _ in steps]
        if socs[0] != 0.0 or any(a >= b for a, b in zip(socs[:-1], socs[1:], strict=True)):
            raise ValueError(f"expected soc_min strictly increasing from 0, got {socs}")
        return steps


CHARGING_PARAMS: dict[str, type[Strict]] = {
    "never": NoParams,
    "nightly": NightlyParams,
    "random": RandomParams,
}
"""Charging habits by name, with their parameters. ``never``: never charged."""

PERSONALIZATION_PARAMS: dict[str, type[Strict]] = {
    "always_full": NoParams,
    "always_tl": NoParams,
    "never": NoParams,
    "charging_full_else_tl": ChargingFullElseTlParams,
    "energy_budget": EnergyBudgetParams,
}
"""Personalization policies by name, with their parameters. ``always_full``, ``always_tl``: that
job as soon as it arrives; ``never``: the general model stays."""

THRESHOLD_PARAMS: dict[str, type[Strict]] = {
    "static": StaticParams,
    "linear": LinearParams,
    "stepwise": StepwiseParams,
}
"""Adaptive-inference threshold policies by name, with their parameters."""

POLICY_KINDS: dict[str, dict[str, type[Strict]]] = {
    "charging": CHARGING_PARAMS,
    "personalization": PERSONALIZATION_PARAMS,
    "threshold": THRESHOLD_PARAMS,
}
"""Every kind of policy a battery section names, with its registry."""


class PolicySection(Strict):
    """A policy by its registered name, with that name's parameters."""

    name: str
    params: Strict


def _section(kind: str, name: str, params: type[Strict]) -> type[PolicySection]:
    """The model of ``{name: <name>, params: <params>}``; ``params`` may be left out when every
    parameter has a default."""
    required = any(f.is_required() for f in params.model_fields.values())
    default = Field(description="Parameters.") if required else Field(default_factory=params)
    return create_model(
        f"{kind}:{name}",
        __base__=PolicySection,
        __doc__=params.__doc__,
        name=(Literal[name], Field(description="Registered name.")),
        params=(params, default),
    )


SECTIONS: dict[str, dict[str, type[PolicySection]]] = {
    kind: {name: _section(kind, name, params) for name, params in registry.items()}
    for kind, registry in POLICY_KINDS.items()
}
"""The section model of every policy, by kind and name."""


def _choice(kind: str) -> Any:
    """One section of ``kind``, chosen by its ``name``."""
    members = tuple(SECTIONS[kind].values())
    return Annotated[Union[members], Field(discriminator="name")]  # noqa: UP007 (built at run time)


ChargingSection = _choice("charging")
PersonalizationSection = _choice("personalization")
ThresholdSection = _choice("threshold")


def policy(kind: str, name: str, **params: Any) -> PolicySection:
    """The validated section of policy ``name`` of ``kind`` (a key of :data:`POLICY_KINDS`),
    e.g. ``policy("threshold", "static", th=1.0)``."""
    return SECTIONS[kind][name](name=name, params=params)
