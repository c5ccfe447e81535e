"""The MCU profile file (``fedhar/mcu/profiles/*.yaml``): clock, memory, cycle costs and power of
one microcontroller. Every number is a mapping ``{value, basis, source}``: ``basis`` says how
it was obtained (one of :data:`BASES`) and ``source`` names the datasheet section or paper table
it comes from, or how it was calibrated or assumed.

Pure schema: :func:`fedhar.mcu.load_profile` loads a file into the profile that prices counts.
"""

from __future__ import annotations

import functools
import typing
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from fedhar.schema.base import KeyProblem, Strict, load_yaml_model

Basis = Literal["datasheet", "paper", "derived", "calibrated", "assumed"]

BASES: tuple[str, ...] = typing.get_args(Basis)
"""How a profile number was obtained: read from a datasheet or paper, derived from such numbers
by arithmetic stated in its source, fitted by :mod:`fedhar.ondevice.calibration`, or assumed."""

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
"""A non-empty string, stripped."""


class Sourced(Strict):
    """One profile number with its provenance."""

    value: float = Field(ge=0, allow_inf_nan=False, description="The number, in its key's unit.")
    basis: Basis = Field(description="How it was obtained.")
    source: Text = Field(
        description="Datasheet name and section or table, paper and table, or the calibration "
        "or assumption that produced the value (folded onto one line).",
    )

    @field_validator("source")
    @classmethod
    def _one_line(cls, source: str) -> str:
        return " ".join(source.split())


class Positive(Sourced):
    """A sourced number > 0."""

    value: float = Field(gt=0, allow_inf_nan=False, description="The number, in its key's unit.")


class Bytes(Sourced):
    """A sourced whole number of bytes."""

    value: int = Field(ge=0, description="Bytes.")


class PositiveBytes(Sourced):
    """A sourced whole number of bytes, > 0."""

    value: int = Field(gt=0, description="Bytes.")


OPERATIONS: dict[str, str] = {
    "mac": "multiply-accumulate",
    "add": "addition or subtraction",
    "mul": "multiplication",
    "div": "division or square root",
    "exp": "exponential or logarithm",
    "cmp": "comparison (max, ReLU, argmax)",
    "byte_moved": "byte loaded or stored",
    "bitop": "integer shift, mask, logic or popcount step",
}
"""The operation classes a profile prices, with what one of each is."""

CycleTable = create_model(
    "CycleTable",
    __base__=Strict,
    __doc__="Cycles per float32 operation, one key per operation class. The arithmetic classes "
    "price the instruction alone; `byte_moved` prices every byte the loop nest loads or stores.",
    **{k: (Sourced, Field(description=f"Cycles per {what}.")) for k, what in OPERATIONS.items()},
)


INSTRUCTION_TIMINGS: dict[str, str] = {
    "int_alu": "integer data-processing, move, compare or multiply instruction",
    "int_mla": "integer multiply-accumulate (MLA, MLS)",
    "int_div": "integer divide (SDIV, UDIV)",
    "load_store": "single load or store (LDR*, STR*, VLDR, VSTR)",
    "load_store_pipelined": "single load or store right after another load or store",
    "load_store_multiple_base": "load or store multiple (LDM, STM, PUSH, POP, VLDM, VSTM), "
    "on top of one cycle per register",
    "fp_mac": "float multiply-accumulate (VFMA.F32, VMLA.F32, ...)",
    "fp_simple": "other float instruction (VADD, VMUL, VMOV, VCVT, VCMP, VMRS, ...)",
    "fp_div_sqrt": "float divide or square root (VDIV.F32, VSQRT.F32)",
    "branch": "branch instruction, taken or not",
    "taken_refill": "pipeline refill after a taken branch or other control transfer",
    "flash_wait": "flash wait-state cycles per taken branch (instruction fetch after a jump)",
    "other": "IT, hint, barrier or system instruction",
}
"""The instruction timings a profile of the fedhar library gives, with what each prices."""

InstructionTimings = create_model(
    "InstructionTimings",
    __base__=Strict,
    __doc__="Cycles per executed Armv7E-M instruction kind, for the instruction-level cycle "
    "model of the fedhar library (fedhar.ondevice.isa.cycles).",
    **{
        k: (Sourced, Field(description=f"Cycles per {what}."))
        for k, what in INSTRUCTION_TIMINGS.items()
    },
)


class ProfileFile(Strict):
    """One MCU profile file; its `name` is the file stem. The active power is given as
    `active_power_w` or as `run_current_ua_per_mhz`, the sleep power as `sleep_power_w` or
    as `sleep_current_ua` (exactly one of each pair)."""

    name: Text = Field(description="Profile name: the file stem.")
    aliases: list[Text] = Field(default_factory=list, description="Other accepted names.")
    core: Text = Field(description="CPU core.")
    description: Text = Field(description="The part and its operating point.")
    clock_hz: Positive = Field(description="CPU clock, in Hz.")
    supply_v: Positive = Field(description="Supply voltage at which the powers apply, in V.")
    sram_bytes: PositiveBytes = Field(description="On-chip SRAM.")
    flash_bytes: Bytes = Field(description="On-chip (or module) flash.")
    active_power_w: Positive | None = Field(None, description="Power while computing, in W.")
    run_current_ua_per_mhz: Positive | None = Field(
        None, description="Run current, in µA/MHz (power = current · clock · supply)."
    )
    sleep_power_w: Sourced | None = Field(
        None, description="Power in the SRAM-retaining sleep mode, in W."
    )
    sleep_current_ua: Sourced | None = Field(
        None, description="Current in the SRAM-retaining sleep mode, in µA."
    )
    cycles_float32: CycleTable = Field(description="Cycles per float32 operation class.")
    cycles_instruction: InstructionTimings | None = Field(  # type: ignore[valid-type]
        None,
        description="Cycles per executed instruction kind: the instruction-level model the "
        "operation classes of a profile of the fedhar library are fitted to.",
    )
    notes: str = Field("", description="Free text.")

    @field_validator("aliases")
    @classmethod
    def _lower(cls, names: list[str]) -> list[str]:
        return [n.lower() for n in names]

    @field_validator("name")
    @classmethod
    def _file_stem(cls, name: str, info: ValidationInfo) -> str:
        stem = (info.context or {}).get("stem")
        if stem is not None and name != stem:
            raise ValueError(f"expected the file stem {stem!r}, got {name!r}")
        return name

    @model_validator(mode="after")
    def _one_of_each_pair(self) -> ProfileFile:
        for pair in (
            ("active_power_w", "run_current_ua_per_mhz"),
            ("sleep_power_w", "sleep_current_ua"),
        ):
            given = [key for key in pair if getattr(self, key) is not None]
            if len(given) != 1:
                got = " and ".join(given) or "neither"
                raise KeyProblem(pair[0], f"expected exactly one of {' or '.join(pair)}, got {got}")
        return self


PROFILE_DIR = Path(__file__).resolve().parents[1] / "mcu" / "profiles"
"""The bundled profile files. They ship with :mod:`fedhar.mcu`, but every file that names a
profile is checked against them when it is loaded, so the schema reads them (as data)."""


@functools.cache
def bundled_profiles() -> dict[str, tuple[str, ...]]:
    """Every bundled profile's name (a file stem in :data:`PROFILE_DIR`) with its aliases,
    sorted by name; each file is validated as a :class:`ProfileFile`."""
    found = {}
    for path in sorted(PROFILE_DIR.glob("*.yaml")):
        file = load_yaml_model(path, ProfileFile, context={"stem": path.stem})
        found[file.name] = tuple(file.aliases)
    return found


def resolve_profile_name(name: str) -> str:
    """The bundled profile called ``name`` or listing it among its aliases (case-insensitive).

    Raises:
        ValueError: no bundled profile has that name; the message lists them all.
    """
    wanted = name.strip().lower()
    for profile, aliases in bundled_profiles().items():
        if wanted == profile or wanted in aliases:
            return profile
    choices = "; ".join(
        profile + (f" (aliases: {', '.join(aliases)})" if aliases else "")
        for profile, aliases in bundled_profiles().items()
    )
    raise ValueError(f"unknown MCU profile {name!r}; expected one of: {choices}")


def is_profile_path(name: str) -> bool:
    """Whether a profile is named by the path of its file rather than by a bundled name."""
    return name.endswith((".yaml", ".yml")) or "/" in name


def _known_profile(name: str) -> str:
    if is_profile_path(name):
        if not Path(name).is_file():
            raise ValueError(f"expected an MCU profile file, found no file {name!r}")
        return name
    resolve_profile_name(name)
    return name


ProfileName = Annotated[str, AfterValidator(_known_profile)]
"""A field naming an MCU profile: a bundled name or alias, or the path of a profile file."""
