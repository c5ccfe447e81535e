"""The adaptive scenario of ``fedhar adaptive``: a run scenario (:mod:`fedhar.schema.scenario`)
with an ``adaptive:`` section, how the input-adaptive network is searched, trained, priced and
personalized."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from fedhar.schema.base import KeyProblem, Strict, load_yaml_model
from fedhar.schema.mcu import ProfileName
from fedhar.schema.scenario import Scenario, split_test_users_field


class Replicate(Strict):
    """Fig. 12 of Daghero et al. 2022: the test windows of one class replicated."""

    activity: str = Field(
        description="Class whose test windows are replicated (a name of data.classes or of the "
        "dataset's default classes, e.g. laying on UCI HAPT).",
    )
    factors: list[int] = Field(
        default_factory=lambda: [1, 10, 20],
        min_length=1,
        description="How many times each window of the class appears (1: the test set as it "
        "is); the modes and fronts are recomputed for every factor.",
    )

    @field_validator("factors")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(f < 1 for f in value) or len(set(value)) != len(value):
            raise ValueError(f"expected distinct integers >= 1, got {value}")
        return value


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
    grid_channel_values: list[int] | None = Field(
        None,
        description="When set, the grid's channels are every non-decreasing triple c1 <= c2 <= "
        "c3 of these powers of two (2..128), replacing grid_channels: the template space of "
        "§4.1 restricted to channels that do not shrink with depth.",
    )
    grid_pools: list[int] | None = Field(
        None,
        description="MaxPool sizes (= strides) of the grid, the same after every conv; default "
        "[pool]. The paper fixes 2 on WISDM and UCI HAPT and also tries 4 on WALK.",
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
    schedule: Literal["constant", "cosine", "plateau"] = Field(
        "plateau",
        description="Learning-rate schedule of every grid model and variable-width network: "
        "constant (before issue 16), cosine (annealed to 0 over the epochs) or plateau (§5.1 "
        "of the paper: x0.1 after 3 epochs without a lower training loss, stop after "
        "`patience` such epochs).",
    )
    patience: int = Field(5, ge=1, description="Stale epochs before the plateau schedule stops.")
    weight_decay: float = Field(
        0.0,
        ge=0,
        description="Adam L2 weight decay of every network (the paper, §5.1: 1e-4 on UCI HAPT, "
        "none on WISDM).",
    )
    distill: bool = Field(
        False,
        description="In-place distillation: the reduced widths learn the full width's softmax "
        "of the same batch instead of the labels (measured on WISDM 2019: no better; README).",
    )
    extra_widths: list[float] = Field(
        default_factory=list,
        description="Widths trained jointly besides M_s's and the full one, each with its own "
        "BatchNorm, never deployed (slimmable networks' many-width training).",
    )
    sandwich: int | None = Field(
        None,
        ge=0,
        description="Sandwich rule: each batch trains the widest, the narrowest and this many "
        "of the other trained widths, drawn at random; null trains every width every batch.",
    )
    init: Literal["scratch", "large"] = Field(
        "scratch",
        description="Initial weights of the variable-width network: scratch (seeded) or the "
        "trained static M_l of the grid (the paper's order: search, then convert M_l).",
    )
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
    large_choice: Literal["gain", "hypervolume", "gap_then_hypervolume"] = Field(
        "gain",
        description="How M_l is chosen among the large_pool models that can host M_s. "
        "`gain`: the largest eq. (5) gain (the paper). `hypervolume`: every one of them is "
        "converted into a variable-width network at each small_widths width that fits, and "
        "the (M_l, width) pair whose validation modes have the largest hypervolume in F1 x "
        "cycles (one reference point for all pairs) is kept: the paper's criterion for the "
        "width of M_s, applied to M_l too. `gap_then_hypervolume`: as `hypervolume`, among "
        "the pairs whose validation Pareto modes lie nowhere below the grid's validation "
        "static front (max_gap_to_static_front <= 0 on validation, priced on `profile`; "
        "modes cheaper than every static model cannot be compared and do not count); with "
        "none, the pair with the smallest validation gap.",
    )
    large_pool: Literal["front", "range"] = Field(
        "front",
        description="The grid models M_l may be: `front`, the validation-front models within "
        "score_drop of the best validation macro-F1 (the paper); `range`, every grid model "
        "within score_drop (a model just off a noisy validation front is as likely a good "
        "M_l). `range` needs a hypervolume large_choice (eq. (5)'s gain is defined on the "
        "front).",
    )
    selection: Literal["per_seed", "across_seeds"] = Field(
        "per_seed",
        description="Whose validation chooses M_l and the width of M_s under `fedhar adaptive "
        "--seeds`: `per_seed`, each seed's own; `across_seeds`, all the seeds' at once: the "
        "large_pool models within score_drop of the best seed-mean validation macro-F1 are "
        "converted by every seed, and large_choice is applied to each pair's mean over seeds "
        "of its validation gap and of its hypervolume over the seed's largest; every seed "
        "then reports its own network of that one pair. Each seed validates on other users, "
        "so this is repeated sub-sampling validation over users. A run of one seed chooses "
        "on its own.",
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
    executed_profile: ProfileName | None = Field(
        "stm32l496zg_fedhar",
        description="Profile of our own C library that prices one window of every static model, "
        "M_s, M_l and the policy, in float32 and int8, executed on the emulated Cortex-M4F "
        "(QEMU mps2-an386); null, or no emulator installed, prices on `profile` only.",
    )
    cascade: bool = Field(
        True,
        description="Also sweep the score-margin policy over two separate static models (the "
        "cheaper static Pareto model with the best validation trade-off, then M_l).",
    )
    replicate: Replicate | None = Field(
        None, description="Fig. 12: recompute the fronts with one class's test windows replicated."
    )
    split: Literal["chronological", "users"] = Field(
        "chronological",
        description="`chronological`: the global users' windows are split in time per "
        "(user, activity): data.train_fraction trains, the rest is halved into validation "
        "(choice of M_l and of the width of M_s) and test (the modes table); test windows come "
        "from users seen in training. `users`: the `test_users` test, `val_fraction` of the "
        "other users (chosen by seed) validate, the rest train (the paper's UCI HAPT setting, "
        "§5.1: the train/test split of the dataset's authors).",
    )
    test_users: list[str] = split_test_users_field()
    val_fraction: float = Field(
        0.2, gt=0, lt=1, description="Validation share of the non-test users (`users` split)."
    )
    holdout_users_fraction: float = Field(
        0.25,
        gt=0,
        lt=1,
        description="Share of users kept for personalization, each split in time into TR_i "
        "(data.train_fraction) and TS_i: with the `chronological` split, users kept out of "
        "global training; with `users`, chosen among the test users.",
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

    @field_validator("grid_channel_values")
    @classmethod
    def _value_powers(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or any(c < 2 or c > 128 or c & (c - 1) for c in value)):
            raise ValueError(f"expected powers of two in 2..128, got {value}")
        return value

    @field_validator("grid_pools")
    @classmethod
    def _pools(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or any(p < 1 for p in value)):
            raise ValueError(f"expected pool sizes >= 1, got {value}")
        return value

    @field_validator("extra_widths")
    @classmethod
    def _extra(cls, value: list[float]) -> list[float]:
        if any(not 0 < w < 1 for w in value) or len(set(value)) != len(value):
            raise ValueError(f"expected distinct fractions in (0, 1), got {value}")
        return value

    @field_validator("grid_kernels")
    @classmethod
    def _odd_kernels(cls, value: list[int]) -> list[int]:
        if any(k < 1 or k % 2 == 0 for k in value):
            raise ValueError(f"expected odd kernel sizes >= 1 ('same' padding), got {value}")
        return value

    @model_validator(mode="after")
    def _pool_needs_conversion(self) -> AdaptiveConfig:
        if self.large_pool == "range" and self.large_choice == "gain":
            raise KeyProblem(
                "large_pool",
                "expected front with large_choice gain (eq. (5) is defined on the front), got "
                "range",
            )
        return self

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
