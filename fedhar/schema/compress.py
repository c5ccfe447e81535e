"""The compression scenario of ``fedhar compress``: a run scenario (:mod:`fedhar.schema.scenario`)
with a ``compress:`` section, how the models are trained, quantized and priced (Daghero et al.
2022 §4.1–4.2, Contoli et al. 2023)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from fedhar.schema.base import KeyProblem, Strict, load_yaml_model
from fedhar.schema.mcu import ProfileName
from fedhar.schema.scenario import HaptChannels, Scenario, split_test_users_field

PTQ_FORMATS: tuple[str, ...] = ("float32", "dynamic", "full_int8")
"""Contoli et al. 2023's post-training formats."""


class GridConfig(Strict):
    """Architectures over the `daghero` template (Daghero et al. 2022 §4.1, Fig. 4a)."""

    channels: list[list[int]] = Field(
        min_length=1,
        description="Output channels of the Conv1D layers of each architecture, each a power of "
        "two in 2..128 (the paper's space).",
    )
    kernels: list[int] = Field(
        default_factory=lambda: [7, 15],
        min_length=1,
        description="Conv kernel sizes K, the same in every layer (the paper: 7 and 15).",
    )

    @field_validator("channels")
    @classmethod
    def _powers_of_two(cls, value: list[list[int]]) -> list[list[int]]:
        for i, row in enumerate(value):
            if not row or any(c < 2 or c > 128 or c & (c - 1) for c in row):
                raise KeyProblem(str(i), f"expected powers of two in 2..128, got {row}")
        return value

    @field_validator("kernels")
    @classmethod
    def _odd(cls, value: list[int]) -> list[int]:
        if any(k < 1 or k % 2 == 0 for k in value):
            raise ValueError(f"expected odd kernel sizes >= 1 ('same' padding), got {value}")
        return value


class MixedConfig(Strict):
    """EdMIPS mixed-precision search (Daghero et al. 2022 §4.2, eqs. (1)–(2))."""

    lambdas: list[float] = Field(
        default_factory=lambda: [1e-4, 2e-4, 3e-4, 5e-4, 1e-3],
        min_length=1,
        description="Strengths λ of the cost term, one search each (the paper: 10 values in "
        "1e-4..1e-3).",
    )
    starts: int = Field(
        3,
        ge=1,
        description="How many 8-bit architectures on the validation F1-vs-memory front start a "
        "search (the paper: every one of them), best F1 first.",
    )
    cost: Literal["bits", "cycles"] = Field(
        "bits",
        description="Cost term: expected weight bits (EdMIPS's default) or expected inference "
        "cycles from the C kernels' counted operations on the first profile.",
    )
    search_epochs: int = Field(4, ge=1, description="Epochs of the search itself.")
    finetune_epochs: int = Field(
        4, ge=1, description="QAT epochs of each chosen assignment after the search."
    )


PRUNE_BASES: tuple[str, ...] = ("cnn", "dcl", "tinyhar")
"""Base models the NAS study (:mod:`fedhar.studies.prune`) can search."""


def check_betas(value: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """``value`` if every ``[beta1, beta2]`` pair is non-negative and the pairs are distinct."""
    for i, pair in enumerate(value):
        if min(pair) < 0:
            raise KeyProblem(str(i), f"expected beta1, beta2 >= 0, got {list(pair)}")
    if len(set(value)) != len(value):
        raise ValueError(f"expected distinct [beta1, beta2] pairs, got {value}")
    return value


class BaseOverrides(Strict):
    """Settings of one base that differ from the `prune:` section's (unset: the section's).
    DCL and TinyHAR cost 50-150 times the CNN family's MACs, so they take fewer, larger-batch
    epochs and a faster temperature decay."""

    filters: int | None = Field(None, ge=2, le=256, description="As `prune.filters`.")
    betas: list[tuple[float, float]] | None = Field(
        None, min_length=1, description="As `prune.betas`: this base's own sweep."
    )
    warmup_epochs: int | None = Field(None, ge=0, description="As `prune.warmup_epochs`.")
    gate_init: float | None = Field(None, gt=0.5, description="As `prune.gate_init`.")
    search_epochs: int | None = Field(None, ge=1, description="As `prune.search_epochs`.")
    search_batch_size: int | None = Field(None, ge=2, description="As `prune.search_batch_size`.")
    lr: float | None = Field(None, gt=0, description="As `prune.lr`.")
    lr_gates: float | None = Field(None, ge=0, description="As `prune.lr_gates`.")
    lr_sensor_gates: float | None = Field(None, ge=0, description="As `prune.lr_sensor_gates`.")
    lr_alpha: float | None = Field(None, ge=0, description="As `prune.lr_alpha`.")
    tau_decay: float | None = Field(None, ge=0, description="As `prune.tau_decay`.")
    finetune_epochs: int | None = Field(None, ge=1, description="As `prune.finetune_epochs`.")
    finetune_lr: float | None = Field(None, gt=0, description="As `prune.finetune_lr`.")
    finetune_batch_size: int | None = Field(
        None, ge=2, description="As `prune.finetune_batch_size`."
    )
    distill: float | None = Field(None, ge=0, le=1, description="As `prune.distill`.")
    distill_temperature: float | None = Field(
        None, gt=0, description="As `prune.distill_temperature`."
    )

    @field_validator("betas")
    @classmethod
    def _betas(cls, value: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        return None if value is None else check_betas(value)


class PruneConfig(Strict):
    """zhou2024's hardware-aware search with pruning (§IV, eq. 10) over each base model, then
    re-instantiation, fine-tuning, scoring and the deployment checks (§V-C)."""

    bases: list[str] = Field(
        default_factory=lambda: ["cnn"],
        min_length=1,
        description="Base models to search: `cnn` (the gated, operator-searchable CNN of the C "
        "library's layer family, :mod:`fedhar.compress.nas`; its unpruned base is the widest "
        "path: kernel 7 everywhere, every filter and sensor channel), `dcl` and `tinyhar` "
        "(zhou2024's baselines, :mod:`fedhar.models.baselines`, PyTorch only: their first "
        "stage is searched, :mod:`fedhar.compress.nas_baselines`; their unpruned base is the "
        "baseline itself, and their budget is checked on eq. 12's inference activations).",
    )
    filters: int = Field(24, ge=2, le=256, description="Filters of every candidate convolution.")
    hidden: int = Field(0, ge=0, description="Units of the dense layer after pooling (0: none).")
    n_stride2: int | None = Field(
        None,
        ge=0,
        description="Stride-2 layers N. Unset: zhou2024's floor(log2(window / 4)).",
    )
    betas: list[tuple[float, float]] = Field(
        default_factory=lambda: [(0.0, 0.0), (0.01, 1.0), (0.03, 1.0), (0.1, 1.0)],
        min_length=1,
        description="The sweep: one search per `[beta1, beta2]` pair of eq. 10 (beta1 weighs the "
        "expected MMACs, beta2 eq. 13's log-excess of the peak memory over the budget).",
    )
    memory_budget_bytes: int = Field(
        96 * 1024,
        ge=1,
        description="L_Mem of eq. 13 and the deployment check, in bytes (zhou2024 §V-C: 96 kB).",
    )
    memory_mode: Literal["full", "tl"] = Field(
        "full",
        description="On-device training job whose estimator arena the memory term and the "
        "selection's budget check use (`fedhar estimate --mode`).",
    )
    profile: ProfileName = Field(
        "stm32l552", description="MCU profile of the deployment check (zhou2024 §V-C)."
    )
    warmup_epochs: int = Field(
        20,
        ge=0,
        description="Epochs of the supernet's weights alone on random paths (gates and "
        "architecture frozen, no hardware terms) before the search: an unfitted supernet lowers "
        "its loss by shrinking its input, so a short warm-up lets the cross-entropy alone close "
        "sensor gates (HAPT, 6 epochs: 1-2 of 9 channels kept; 20 epochs: 7).",
    )
    gate_init: float = Field(
        1.0,
        gt=0.5,
        description="Starting score v of every DCS gate after the warm-up (kept: v > 0.5). "
        "A score further from the threshold must be pushed further before its channel goes.",
    )
    search_epochs: int = Field(12, ge=1, description="Epochs of the search itself.")
    tau_decay: float = Field(
        0.05,
        ge=0,
        description="Gumbel-softmax temperature 5 exp(-tau_decay epoch) over the warm-up and "
        "search epochs (zhou2024 §V-A4: 5 and 0.05).",
    )
    search_batch_size: int = Field(64, ge=2, description="Windows per search step.")
    lr: float = Field(0.005, gt=0, description="Adam learning rate of the supernet's weights.")
    lr_gates: float = Field(
        0.005,
        ge=0,
        description="Adam learning rate of the DCS gate scores (Adam's step is about this "
        "rate whatever the gradient's scale; the paper's 1e-4 barely moves a gate to 0.5).",
    )
    lr_sensor_gates: float | None = Field(
        None,
        ge=0,
        description="Adam learning rate of the sensor-channel gate (unset: `lr_gates`). In DCL "
        "and TinyHAR every convolution runs on every sensor, so a sensor gate prices 25 times a "
        "filter's MACs and, at one rate, the sensors close first (HAPT TinyHAR, lr_gates 0.005: "
        "9 -> 2 channels, test F1 0.768).",
    )
    lr_alpha: float = Field(
        0.005, ge=0, description="Adam learning rate of the architecture parameters (§V-A4)."
    )
    finetune_epochs: int = Field(
        30,
        ge=1,
        description="Epochs of each chosen model re-instantiated as a plain model (the epoch of "
        "best validation macro-F1 is kept). The unpruned base is trained plainly for "
        "warmup + search + finetune epochs, the same weight-training budget.",
    )
    finetune_lr: float = Field(0.002, gt=0, description="Adam learning rate of fine-tuning.")
    finetune_batch_size: int = Field(64, ge=2, description="Windows per fine-tuning step.")
    distill: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Weight w of knowledge distillation in each searched model's fine-tuning "
        "(Hinton et al. 2015): loss (1 - w) cross-entropy + w T^2 KL(teacher || model) at "
        "temperature T, the teacher being the base's trained unpruned model. 0: none.",
    )
    distill_temperature: float = Field(
        4.0, gt=0, description="Softmax temperature T of the distillation term."
    )
    f1_tolerance: float = Field(
        0.01,
        ge=0,
        lt=1,
        description="Selection rule: the selected pruned model of a base is the smallest-MAC "
        "swept model within the memory budget whose validation macro-F1 is at least the base's "
        "minus this; if none, the best validation F1 within the budget; if none fits, the "
        "smallest peak memory.",
    )
    qat: bool = Field(
        True, description="Also fine-tune the selected model with int8 QAT and score it."
    )
    qat_epochs: int = Field(4, ge=1, description="QAT epochs of the selected model.")
    qat_lr: float = Field(0.0005, gt=0, description="Adam learning rate of QAT.")
    qat_equalize: bool = Field(
        True,
        description="Cross-layer equalization of the selected model before QAT "
        "(:mod:`fedhar.compress.equalize`): a found model has no BatchNorm, and its channels' "
        "ranges then differ so much that one 8-bit step per tensor erases the small ones.",
    )
    channel_sets: list[HaptChannels] = Field(
        default_factory=list,
        description="Channel-scaling study (zhou2024 §II, Fig. 2): for each hapt channel set "
        "(e.g. `acc`, `acc+gyro`, `uci_har`), params and MACs of the first base before and "
        "after a search at the selected model's betas, and of every other base's unpruned "
        "model (counted only). Empty: none.",
    )
    per_base: dict[str, BaseOverrides] = Field(
        default_factory=dict,
        description="Per base name (one of `bases`), the settings that differ from this "
        "section's, e.g. `{tinyhar: {filters: 64, search_epochs: 6}}`.",
    )

    @field_validator("bases")
    @classmethod
    def _known_bases(cls, value: list[str]) -> list[str]:
        for i, name in enumerate(value):
            if name not in PRUNE_BASES:
                raise KeyProblem(str(i), f"expected one of {', '.join(PRUNE_BASES)}, got {name!r}")
        if len(set(value)) != len(value):
            raise ValueError(f"expected distinct bases, got {value}")
        return value

    @model_validator(mode="after")
    def _overridden_bases(self) -> PruneConfig:
        for name in self.per_base:
            if name not in self.bases:
                raise KeyProblem(
                    f"per_base.{name}", f"expected one of the bases {self.bases}, got {name!r}"
                )
        return self

    @property
    def base_epochs(self) -> int:
        """Epochs of the unpruned base: as many as warm-up, search and fine-tuning together."""
        return self.warmup_epochs + self.search_epochs + self.finetune_epochs

    def for_base(self, name: str) -> PruneConfig:
        """This section with base ``name``'s overrides applied (and no ``per_base``)."""
        changes = self.per_base[name].model_dump(exclude_none=True) if name in self.per_base else {}
        return self.model_copy(update={**changes, "per_base": {}})

    @field_validator("betas")
    @classmethod
    def _non_negative(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return check_betas(value)


class CompressConfig(Strict):
    """What `fedhar compress` explores and how it prices it."""

    split: Literal["chronological", "random", "users"] = Field(
        "chronological",
        description="`chronological`: every user's windows split in time per activity, "
        "`data.train_fraction` trains and the rest is halved into validation and test. "
        "`random`: windows drawn at random, `test_fraction` tests and `val_fraction` of the "
        "rest validates (Contoli et al. 2023: 75/25). `users`: the `test_users` test, "
        "`val_fraction` of the other users (chosen by seed) validate, the rest train.",
    )
    test_users: list[str] = split_test_users_field()
    test_fraction: float = Field(0.25, gt=0, lt=1, description="Test share (`random` split).")
    val_fraction: float = Field(
        0.1, gt=0, lt=1, description="Validation share of the non-test windows (`random` split)."
    )
    grid: GridConfig | None = Field(
        None,
        description="Architectures to explore over the `daghero` template. Unset: only the "
        "scenario's `model`.",
    )
    bits: list[int] = Field(
        default_factory=lambda: [8, 4, 2, 1],
        description="Fixed precisions of the QAT exploration (weights and activations of every "
        "layer); empty: none.",
    )
    float_epochs: int = Field(8, ge=1, description="Float training epochs of every model.")
    qat_epochs: int = Field(4, ge=1, description="QAT epochs at each precision.")
    batch_size: int = Field(128, ge=2, description="Windows per batch.")
    lr: float = Field(0.01, gt=0, description="Adam learning rate of float training.")
    qat_lr: float = Field(0.001, gt=0, description="Adam learning rate of QAT.")
    ptq: list[Literal["float32", "dynamic", "full_int8"]] = Field(
        default_factory=lambda: list(PTQ_FORMATS),
        description="Post-training formats of every float model (Contoli et al. 2023).",
    )
    calib_windows: int = Field(
        512, ge=16, description="Training windows that calibrate full-integer activation scales."
    )
    mixed: MixedConfig | None = Field(None, description="Mixed-precision search. Unset: no search.")
    profiles: list[ProfileName] = Field(
        default_factory=lambda: ["pulpissimo_quentin", "stm32l496zg_fedhar", "esp32"],
        min_length=1,
        description="MCU profiles that price every model's counted inference operations; the "
        "first one prices the cycles figure.",
    )
    emulate: bool = Field(
        True,
        description="Also run one window of every integer and dynamic-range model on the "
        "emulated Cortex-M4F (QEMU mps2-an386, needs qemu-system-arm and arm-none-eabi-gcc) and "
        "price its executed instructions with stm32l496zg_fedhar's timings: the cycles figure "
        "then shows executed cycles.",
    )
    prune: PruneConfig | None = Field(
        None,
        description="Hardware-aware NAS with pruning (zhou2024). Set: `fedhar compress` runs "
        "this study instead of the quantization exploration (`grid` and `mixed` must then be "
        "unset).",
    )
    memory_budget_bytes: int = Field(
        6370,
        ge=1,
        description="Budget of the best-F1-within-budget figure, in bytes (6370 = the 6.22 kB "
        "top of Daghero et al. 2022 Table 2 on WISDM).",
    )

    @model_validator(mode="after")
    def _prune_alone(self) -> CompressConfig:
        if self.prune is not None:
            for key in ("grid", "mixed"):
                if getattr(self, key) is not None:
                    raise KeyProblem(key, "expected unset with prune (the NAS study runs alone)")
        return self

    @field_validator("bits")
    @classmethod
    def _bits(cls, value: list[int]) -> list[int]:
        if any(b not in (1, 2, 4, 8) for b in value) or len(set(value)) != len(value):
            raise ValueError(f"expected distinct bit-widths from 1, 2, 4, 8, got {value}")
        return value


class CompressScenario(Scenario):
    """A run scenario with the settings of `fedhar compress`."""

    compress: CompressConfig = Field(
        default_factory=CompressConfig, description="Compression study settings."
    )


def load_compress_scenario(path: str | Path) -> tuple[Scenario, CompressConfig]:
    """Reads and validates a compression scenario YAML file: its run scenario and its
    ``compress:`` section.

    Raises:
        fedhar.schema.base.SchemaError: every problem of the file, one line each.
    """
    scenario = load_yaml_model(path, CompressScenario)
    return scenario, scenario.compress
