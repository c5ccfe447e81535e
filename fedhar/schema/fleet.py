"""The fleet study scenario of ``fedhar study`` (a ``fleet:`` section): one simulated wearable
per real user, living ``study.days`` days on its battery. Its training windows arrive along a
daily schedule, its personalization jobs really train through the C library, and its test
windows are classified every day by the adaptive model it holds.

Pure schema: :mod:`fedhar.studies.fleet` runs it.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from fedhar.schema.base import Strict
from fedhar.schema.battery import CellSection
from fedhar.schema.mcu import ProfileName
from fedhar.schema.scenario import DataConfig
from fedhar.schema.study import StudySection


class FleetModelSection(Strict):
    """The variable-width network every device holds (the Daghero et al. 2022 template): M_l
    at full width, M_s its slice at `small_width`."""

    channels: list[int] = Field(
        [16, 16, 32],
        min_length=1,
        description="Filters of each conv block of M_l (the `fedhar adaptive` choice on WISDM "
        "2019: C16-16-32).",
    )
    kernel: int = Field(15, ge=1, description="Kernel of every conv block.")
    pool: int = Field(2, ge=1, description="MaxPool size and stride after each block.")
    small_width: float = Field(0.25, gt=0, lt=1, description="Width of M_s as a fraction of M_l.")

    @field_validator("channels")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(c < 1 for c in v):
            raise ValueError(f"expected every entry >= 1, got {v}")
        return v


class FleetPretrainSection(Strict):
    """The general model of each fold, trained in PyTorch on the other folds' users (both
    widths jointly, Adam, class-weighted cross-entropy)."""

    epochs: int = Field(8, ge=1, description="Epochs.")
    batch_size: int = Field(128, ge=2, description="Windows per step.")
    lr: float = Field(0.01, gt=0, allow_inf_nan=False, description="Adam learning rate.")


class FleetJobSection(Strict):
    """One personalization job on the device (C library, SGD, both widths)."""

    epochs: int = Field(3, ge=1, description="Epochs of one job.")
    batch_size: int = Field(32, ge=2, description="Windows per step.")
    lr_full: float = Field(0.005, gt=0, allow_inf_nan=False, description="SGD rate, Full jobs.")
    lr_tl: float = Field(0.01, gt=0, allow_inf_nan=False, description="SGD rate, TL jobs.")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    tl_layers: int = Field(1, ge=1, description="Dense layers a TL job trains.")


class FleetSection(Strict):
    """The users, how their data arrives, and how their devices train."""

    folds: int = Field(
        4,
        ge=2,
        description="User folds: each user's general model is trained on the other folds' "
        "users only, so no device starts from a model that saw its user.",
    )
    users: list[str] | None = Field(
        None, min_length=1, description="Users simulated. Unset: every user of the dataset."
    )
    schedule: list[tuple[float, str]] = Field(
        min_length=1,
        description="The users' day: `[[start_h, activity], ...]`, activity by class name.",
    )
    label_every_s: float = Field(
        600.0,
        gt=0,
        allow_inf_nan=False,
        description="A labelled window of the current activity is stored every this many s "
        "(the user's next unused TR_i window of that class).",
    )
    holdout_every: int = Field(
        4,
        ge=2,
        description="With the guard on, every this-many-th stored window is held out to "
        "judge a job's model instead of training it.",
    )
    profile: ProfileName = Field(
        "fedhar-l496",
        description="MCU profile that prices training and inference (counted operations).",
    )
    model: FleetModelSection = Field(default_factory=FleetModelSection, description="Model.")
    pretrain: FleetPretrainSection = Field(
        default_factory=FleetPretrainSection, description="General models."
    )
    job: FleetJobSection = Field(default_factory=FleetJobSection, description="Jobs.")
    batch_size: int = Field(512, ge=1, description="Windows per classifier call.")


class FleetDeviceSection(Strict):
    """The wearable around the MCU."""

    cell: CellSection = Field(default_factory=CellSection, description="Battery cell.")
    parts: str | None = Field(
        None,
        description="Parts file (radio, sensor, sleep), relative to the scenario. Unset: "
        "`fedhar/wearable/data/parts.yaml`.",
    )
    window_s: float = Field(10.0, gt=0, description="Time between classified windows, in s.")
    control_s: float = Field(600.0, gt=0, description="Policy and load update step, in s.")
    charge_step_s: float = Field(300.0, gt=0, description="Charger update step, in s.")
    trace_s: float = Field(3600.0, ge=0, description="State-of-charge trace step, in s.")


class FleetStudySection(StudySection):
    """The grid, as in a battery-policy study, and the guard on and off."""

    guard: list[bool] = Field(
        [False, True], min_length=1, description="Whether the guard judges each job."
    )
    plot_users: int = Field(6, ge=0, description="Users drawn in the accuracy-over-days plot.")

    @field_validator("guard")
    @classmethod
    def _distinct(cls, v: list[bool]) -> list[bool]:
        if len(set(v)) != len(v):
            raise ValueError(f"expected distinct values, got {v}")
        return v


class FleetScenario(Strict):
    """A fleet study."""

    name: str = Field(min_length=1, description="Scenario name, shown in reports.")
    seed: int = Field(0, ge=0, description="Seed of folds, pretraining and job batch order.")
    description: str = Field("", description="Free text, shown in the report.")
    data: DataConfig = Field(description="Dataset and windows.")
    fleet: FleetSection = Field(description="Users, data arrival and jobs.")
    device: FleetDeviceSection = Field(
        default_factory=FleetDeviceSection, description="The wearable."
    )
    study: FleetStudySection = Field(description="The grid.")
