"""The study scenario of ``fedhar study``: a battery-policy grid (personalization policy ×
threshold policy × battery capacity × charging habit) over one wearable, and optionally real
windows replayed through the real adaptive classifier.

Pure schema: :func:`fedhar.studies.battery.load_study_scenario` loads it, and
:mod:`fedhar.studies.battery` runs it.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, model_validator

from fedhar.schema.base import KeyProblem, Strict
from fedhar.schema.battery import BatterySection
from fedhar.schema.policies import ChargingSection, PersonalizationSection, ThresholdSection


class StudySection(Strict):
    """The grid, and how long each simulated device lives. Each grid entry is a policy by name
    and `params` (see [Policies](#policies)) under a label of its own, which names it in the
    results."""

    days: int = Field(ge=1, description="Simulated days (federation rounds) per configuration.")
    round_s: float = Field(86400.0, gt=0, description="Simulated time of one round, in s.")
    seed: int = Field(0, ge=0, description="Seed of the charging habits' draws.")
    capacity_mah: list[float] = Field(min_length=1, description="Battery capacities, in mAh.")
    charging: dict[str, ChargingSection] = Field(
        min_length=1, description="Charging habits by label."
    )
    personalization: dict[str, PersonalizationSection] = Field(
        min_length=1, description="Personalization policies by label."
    )
    threshold: dict[str, ThresholdSection] = Field(
        min_length=1, description="Adaptive-inference threshold policies by label."
    )
    plot_capacity_mah: float | None = Field(
        None, description="Capacity of the state-of-charge plot (one of `capacity_mah`)."
    )
    plot_charging: str | None = Field(
        None, description="Charging label of the state-of-charge plot (one of `charging`)."
    )

    @model_validator(mode="after")
    def _plotted_in_grid(self) -> StudySection:
        if self.plot_charging is not None and self.plot_charging not in self.charging:
            raise KeyProblem(
                "plot_charging",
                f"expected one of {sorted(self.charging)}, got {self.plot_charging!r}",
            )
        if self.plot_capacity_mah is not None and self.plot_capacity_mah not in self.capacity_mah:
            raise KeyProblem(
                "plot_capacity_mah",
                f"expected one of {self.capacity_mah}, got {self.plot_capacity_mah}",
            )
        return self


class ReplaySection(Strict):
    """Real windows replayed through the real adaptive classifier, so that F1 and the easy
    share are measured rather than read from a modes table (unset: the modes tables)."""

    adaptive_dir: str | None = Field(
        None,
        description="Output directory of `fedhar adaptive`, relative to the study scenario: "
        "`model.pt` (general model), `users/<id>/model.pt` (personalized) and `modes.csv`; "
        "`fedhar study --adaptive-dir` overrides it.",
    )
    adaptive_scenario: str = Field(
        description="The `fedhar adaptive` scenario that trained it, relative to the study "
        "scenario; its dataset, window, stride, seed and held-out users give each user's test "
        "windows TS_i exactly as the adaptive run split them."
    )
    data_dir: str | None = Field(
        None,
        description="Dataset directory. Unset: the adaptive scenario's, then `$FEDHAR_DATA_DIR`.",
    )
    users: list[str] | None = Field(
        None,
        min_length=1,
        description="Held-out users to replay, one simulated device each. Unset: every user "
        "with a personalized model.",
    )
    schedule: list[tuple[float, str]] = Field(
        min_length=1,
        description="The users' day: `[[start_h, activity], ...]`, activity by class name.",
    )
    batch_size: int = Field(512, ge=1, description="Windows per classifier call.")


class StudyScenario(Strict):
    """A battery-policy study."""

    description: str = Field("", description="Free text, shown in the report.")
    battery: BatterySection = Field(
        validation_alias=AliasChoices("battery", "device"),
        description="The wearable every configuration simulates.",
    )
    study: StudySection = Field(description="The grid.")
    replay: ReplaySection | None = Field(
        None, description="Replay of real windows (unset: F1 from the modes tables)."
    )

    @model_validator(mode="after")
    def _modes_given(self) -> StudyScenario:
        modes = self.battery.modes
        if modes.csv is None and modes.rows is None and self.replay is None:
            raise KeyProblem(
                "battery.modes",
                "expected csv or rows (or a replay: section, whose adaptive run gives "
                "modes.csv), got neither",
            )
        return self
