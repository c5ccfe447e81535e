"""The adaptive scenario of ``fedhar adaptive``: a run scenario (:mod:`fedhar.schema.scenario`)
with an ``adaptive:`` section, how the input-adaptive network is searched, trained, priced and
personalized."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from fedhar.schema.base import KeyProblem, Strict, load_yaml_model
from fedhar.schema.mcu import ProfileName
from fedhar.schema.scenario import Scenario


class AdaptiveConfig(Strict):
    """Daghero et al. 2022 §4.1/§4.3/§5.4 adaptive-inference study settings."""

    grid_channels: list[list[int]] = Field(
        default_factory=lambda: [
            [4, 8, 8],
            [8, 8, 16],
            [8, 16, 16],
            [16, 16, 32],
            [16, 32, 32],
            [32, 64, 64],
        ],
        min_length=1,
        description="Architecture grid over the Fig. 4a template: output channels of the three "
        "Conv1D layers, each a power of two in 2..128.",
    )
    grid_kernels: list[int] = Field(
        default_factory=lambda: [7, 15],
        min_length=1,
        description="Conv kernel sizes K of the grid (the paper: 7 and 15), same in every layer.",
    )
    pool: int = Field(2, ge=1, description="MaxPool size and stride after each conv (paper: 2).")
    small_widths: list[float] = Field(
        default_factory=lambda: [0.25, 0.5],
        min_length=1,
        description="Candidate widths of M_s, as fractions of M_l's channels (paper: 0.25, 0.5); "
        "each is trained jointly with the full width as its own two-width network, and the one "
        "with the larger hypervolume of its validation modes under eq. (3) is deployed.",
    )
    min_small_channels: int = Field(
        4,
        ge=1,
        description="M_s must keep at least this many channels in every conv layer: M_l is "
        "chosen among the models that allow it at some candidate width, and widths that do not "
        "are skipped (1 disables the constraint).",
    )
    search_epochs: int = Field(
        8, ge=1, description="Training epochs of every grid model (keep equal to `epochs`)."
    )
    epochs: int = Field(8, ge=1, description="Joint training epochs of each two-width network.")
    batch_size: int = Field(
        128,
        ge=2,
        description="Windows per batch (paper: 32 on WISDM; larger here to fit a CPU budget).",
    )
    lr: float = Field(0.01, gt=0, description="Adam learning rate (paper: 0.01 on WISDM).")
    score_drop: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="M_l is chosen among the static Pareto models whose validation macro-F1 is "
        "within this absolute drop of the best one (paper: 5%).",
    )
    thresholds: int = Field(100, ge=2, description="Number of score-margin thresholds Th.")
    th_min: float = Field(
        1e-3,
        gt=0,
        lt=1,
        description="Smallest Th; the sweep is log-spaced from th_min to 1 (paper: 100 values).",
    )
    profile: ProfileName = Field(
        "pulpissimo_quentin",
        description="MCU profile that prices the counted operations (fedhar/mcu/profiles).",
    )
    holdout_users_fraction: float = Field(
        0.25,
        gt=0,
        lt=1,
        description="Share of users kept out of global training; each is split in time into "
        "TR_i (data.train_fraction) and TS_i for personalization. The other users' windows are "
        "split in time: data.train_fraction trains, the rest is halved into validation (choice "
        "of M_l and of the width of M_s) and test (the modes table).",
    )
    calib_windows: int = Field(
        512, ge=16, description="Training windows used to calibrate int8 activation scales."
    )
    personalize_users: int = Field(
        3, ge=0, description="How many held-out users get a personalized adaptive model."
    )
    personalize_epochs: int = Field(
        10, ge=1, description="Joint fine-tuning epochs (all widths) on a user's TR_i."
    )
    personalize_lr: float = Field(0.001, gt=0, description="Adam learning rate of personalization.")

    @field_validator("grid_channels")
    @classmethod
    def _powers_of_two(cls, value: list[list[int]]) -> list[list[int]]:
        for i, row in enumerate(value):
            if len(row) != 3 or any(c < 2 or c > 128 or c & (c - 1) for c in row):
                raise KeyProblem(str(i), f"expected 3 powers of two in 2..128, got {row}")
        return value

    @field_validator("grid_kernels")
    @classmethod
    def _odd_kernels(cls, value: list[int]) -> list[int]:
        if any(k < 1 or k % 2 == 0 for k in value):
            raise ValueError(f"expected odd kernel sizes >= 1 ('same' padding), got {value}")
        return value

    @field_validator("small_widths")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        if any(not 0 < w < 1 for w in value) or len(set(value)) != len(value):
            raise ValueError(f"expected distinct fractions in (0, 1), got {value}")
        return value


class AdaptiveScenario(Scenario):
    """A run scenario with the settings of `fedhar adaptive`."""

    adaptive: AdaptiveConfig = Field(
        default_factory=AdaptiveConfig, description="Adaptive-inference study settings."
    )


def load_adaptive_scenario(path: str | Path) -> tuple[Scenario, AdaptiveConfig]:
    """Reads and validates an adaptive scenario YAML file: its run scenario and its
    ``adaptive:`` section.

    Raises:
        fedhar.schema.base.SchemaError: every problem of the file, one line each.
    """
    scenario = load_yaml_model(path, AdaptiveScenario)
    return scenario, scenario.adaptive
