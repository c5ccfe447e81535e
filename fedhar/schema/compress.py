"""The compression scenario of ``fedhar compress``: a run scenario (:mod:`fedhar.schema.scenario`)
with a ``compress:`` section, how the models are trained, quantized and priced (Daghero et al.
2022 §4.1–4.2, Contoli et al. 2023)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from fedhar.schema.base import KeyProblem, Strict, load_yaml_model
from fedhar.schema.mcu import ProfileName
from fedhar.schema.scenario import Scenario

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


class CompressConfig(Strict):
    """What `fedhar compress` explores and how it prices it."""

    split: Literal["chronological", "random"] = Field(
        "chronological",
        description="`chronological`: every user's windows split in time per activity, "
        "`data.train_fraction` trains and the rest is halved into validation and test. "
        "`random`: windows drawn at random, `test_fraction` tests and `val_fraction` of the "
        "rest validates (Contoli et al. 2023: 75/25).",
    )
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
    memory_budget_bytes: int = Field(
        6370,
        ge=1,
        description="Budget of the best-F1-within-budget figure, in bytes (6370 = the 6.22 kB "
        "top of Daghero et al. 2022 Table 2 on WISDM).",
    )

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
