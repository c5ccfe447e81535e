"""MCU profiles: clock, memory, cycle costs and power of one microcontroller.

A profile is a YAML file in ``fedhar/mcu/profiles/``. Every number in it is a mapping
``{value, basis, source}``: ``basis`` says how the number was obtained (one of
:data:`fedhar.schema.mcu.BASES`) and ``source`` names the datasheet section or paper table it
comes from, or how it was calibrated or assumed (the file's schema is
:class:`fedhar.schema.mcu.ProfileFile`).
:func:`load_profile` validates the file and returns a frozen :class:`McuProfile`, which turns
operation counts into cycles, seconds and joules.

Cost model (float32 training and inference)::

    cycles  = Σ_k cycles_per_op[k] · count[k]        k ∈ OP_CLASSES
    seconds = cycles / clock_hz
    joules  = seconds · active_watts
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from fedhar.schema.base import SchemaError, load_yaml_model
from fedhar.schema.mcu import (
    INSTRUCTION_TIMINGS,
    OPERATIONS,
    PROFILE_DIR,
    ProfileFile,
    Sourced,
    bundled_profiles,
    is_profile_path,
)
from fedhar.schema.mcu import resolve_profile_name as _resolve

OP_CLASSES: tuple[str, ...] = tuple(OPERATIONS)
"""Operation classes priced by a profile, in the order of :class:`CycleCosts`."""

COUNT_FIELDS: dict[str, str] = {
    "mac": "macs",
    "add": "adds",
    "mul": "muls",
    "div": "divs",
    "exp": "exps",
    "cmp": "cmps",
    "byte_moved": "bytes_moved",
    "bitop": "bitops",
}
"""Operation class → attribute of an ``OpCounts`` record that holds its count."""


class OpCountsLike(Protocol):
    """Anything with per-class operation counts (as ``fedhar.ondevice.estimator.OpCounts``)."""

    @property
    def macs(self) -> int: ...
    @property
    def adds(self) -> int: ...
    @property
    def muls(self) -> int: ...
    @property
    def divs(self) -> int: ...
    @property
    def exps(self) -> int: ...
    @property
    def cmps(self) -> int: ...
    @property
    def bytes_moved(self) -> int: ...
    @property
    def bitops(self) -> int: ...


@dataclass(frozen=True)
class CycleCosts:
    """Cycles per operation, one field per class of :data:`OP_CLASSES`.

    The arithmetic classes price the instruction alone (``mac``: one multiply-accumulate;
    the others: one scalar operation); ``byte_moved`` prices every byte the loop nest loads or
    stores, operands of MACs included, as the library's ``bytes_moved`` counter counts them;
    ``bitop`` prices one integer shift, mask, logic or popcount step (sub-byte unpacking and
    packing, binary dot products).
    """

    mac: float
    add: float
    mul: float
    div: float
    exp: float
    cmp: float
    byte_moved: float
    bitop: float

    def cycles(self, ops: OpCountsLike) -> float:
        """Cycles to execute ``ops``: Σ cycles_per_op · count."""
        return sum(getattr(self, k) * getattr(ops, COUNT_FIELDS[k]) for k in OP_CLASSES)

    def breakdown(self, ops: OpCountsLike) -> dict[str, float]:
        """Cycles spent per operation class on ``ops`` (sums to :meth:`cycles`)."""
        return {k: getattr(self, k) * getattr(ops, COUNT_FIELDS[k]) for k in OP_CLASSES}


@dataclass(frozen=True)
class Cost:
    """What a piece of work costs on one MCU.

    Attributes:
        cycles: CPU cycles.
        seconds: wall time at the profile's clock, in s.
        joules: energy at the profile's active power, in J.
    """

    cycles: float
    seconds: float
    joules: float

    def __mul__(self, times: float) -> Cost:
        return Cost(self.cycles * times, self.seconds * times, self.joules * times)

    __rmul__ = __mul__


@dataclass(frozen=True)
class McuProfile:
    """One microcontroller, as loaded from its YAML file.

    Attributes:
        name: profile name (the file stem), e.g. ``stm32l496zg``.
        aliases: other names :func:`load_profile` accepts, e.g. ``stm32l496``.
        core: CPU core, e.g. ``Arm Cortex-M4F``.
        description: one line on the part and the operating point profiled.
        clock_hz: CPU clock in Hz.
        sram_bytes: on-chip SRAM in bytes.
        flash_bytes: on-chip (or module) flash in bytes.
        supply_v: supply voltage in V at which the powers apply.
        active_watts: power while computing, in W.
        sleep_watts: power in the SRAM-retaining sleep mode, in W.
        costs: cycles per float32 operation class.
        provenance: ``(field, Sourced)`` pairs for every number read from the file; field
            names are dotted, e.g. ``cycles_float32.mac``.
        path: the file the profile was loaded from.
        instruction_timings: cycles per executed instruction kind
            (``fedhar.schema.mcu.INSTRUCTION_TIMINGS``), for profiles of the fedhar library;
            empty for profiles that price another framework.
    """

    name: str
    aliases: tuple[str, ...]
    core: str
    description: str
    clock_hz: float
    sram_bytes: int
    flash_bytes: int
    supply_v: float
    active_watts: float
    sleep_watts: float
    costs: CycleCosts
    provenance: tuple[tuple[str, Sourced], ...]
    path: str
    instruction_timings: Mapping[str, float] = field(default_factory=dict)

    def source(self, field: str) -> Sourced:
        """Provenance of one field, e.g. ``source("cycles_float32.mac")``."""
        for key, sourced in self.provenance:
            if key == field:
                return sourced
        known = ", ".join(key for key, _ in self.provenance)
        raise KeyError(f"profile {self.name!r} has no field {field!r}; it has: {known}")

    def cycles(self, ops: OpCountsLike) -> float:
        """CPU cycles to execute ``ops``."""
        return self.costs.cycles(ops)

    def seconds(self, ops: OpCountsLike) -> float:
        """Time in s to execute ``ops`` at :attr:`clock_hz`."""
        return self.cycles(ops) / self.clock_hz

    def joules(self, ops: OpCountsLike) -> float:
        """Energy in J to execute ``ops`` at :attr:`active_watts`."""
        return self.seconds(ops) * self.active_watts

    def cost(self, ops: OpCountsLike) -> Cost:
        """Cycles, seconds and joules of ``ops`` (e.g. one batch)."""
        cycles = self.cycles(ops)
        seconds = cycles / self.clock_hz
        return Cost(cycles, seconds, seconds * self.active_watts)

    def epoch_cost(self, ops_per_batch: OpCountsLike, batches_per_epoch: int) -> Cost:
        """Cost of one epoch of ``batches_per_epoch`` batches that each cost ``ops_per_batch``."""
        _check_count("batches_per_epoch", batches_per_epoch)
        return self.cost(ops_per_batch) * batches_per_epoch

    def job_cost(self, ops_per_batch: OpCountsLike, batches_per_epoch: int, epochs: int) -> Cost:
        """Cost of a personalization job: ``epochs`` × ``batches_per_epoch`` batches."""
        _check_count("epochs", epochs)
        return self.epoch_cost(ops_per_batch, batches_per_epoch) * epochs

    def sleep_joules(self, seconds: float) -> float:
        """Energy in J spent sleeping (SRAM retained) for ``seconds`` s."""
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        return seconds * self.sleep_watts

    def fits(self, memory_bytes: int) -> bool:
        """Whether a working set of ``memory_bytes`` bytes fits in the SRAM."""
        return memory_bytes <= self.sram_bytes


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


def list_profiles() -> list[str]:
    """Names of the bundled profiles (file stems in :data:`PROFILE_DIR`), sorted."""
    return list(bundled_profiles())


def resolve_profile_name(name: str) -> str:
    """The bundled profile called ``name`` or listing it among its aliases (case-insensitive).

    Raises:
        fedhar.schema.base.SchemaError: no bundled profile has that name (the line lists them).
    """
    try:
        return _resolve(name)
    except ValueError as exc:
        raise SchemaError([str(exc)]) from None


def load_profile(name_or_path: str | Path) -> McuProfile:
    """Loads and validates a profile by bundled name, alias, or path to a ``.yaml`` file.

    Raises:
        fedhar.schema.base.SchemaError: an unknown name, or every problem of the file, one line
            each naming the file, the key path, what was expected and what was found.
    """
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or is_profile_path(text):
        path = Path(text)
    else:
        path = PROFILE_DIR / f"{resolve_profile_name(text)}.yaml"
    return _profile(load_yaml_model(path, ProfileFile, context={"stem": path.stem}), path)


SOURCED_KEYS = (
    "clock_hz",
    "supply_v",
    "sram_bytes",
    "flash_bytes",
    "active_power_w",
    "run_current_ua_per_mhz",
    "sleep_power_w",
    "sleep_current_ua",
)
"""The top-level numbers of a profile file, in the order of :attr:`McuProfile.provenance`."""


def _profile(file: ProfileFile, path: Path) -> McuProfile:
    """The profile of a validated file."""
    numbers = [(key, getattr(file, key)) for key in SOURCED_KEYS]
    numbers += [(f"cycles_float32.{k}", getattr(file.cycles_float32, k)) for k in OP_CLASSES]
    timings: dict[str, float] = {}
    if file.cycles_instruction is not None:
        for k in INSTRUCTION_TIMINGS:
            numbers.append((f"cycles_instruction.{k}", getattr(file.cycles_instruction, k)))
            timings[k] = getattr(file.cycles_instruction, k).value
    provenance = tuple(
        (key, Sourced(value=n.value, basis=n.basis, source=n.source))
        for key, n in numbers
        if n is not None
    )
    clock_hz, supply_v = file.clock_hz.value, file.supply_v.value
    if file.active_power_w is not None:
        active_watts = file.active_power_w.value
    else:
        ua_per_mhz = file.run_current_ua_per_mhz.value  # type: ignore[union-attr]
        active_watts = ua_per_mhz * 1e-6 * (clock_hz / 1e6) * supply_v
    if file.sleep_power_w is not None:
        sleep_watts = file.sleep_power_w.value
    else:
        sleep_watts = file.sleep_current_ua.value * 1e-6 * supply_v  # type: ignore[union-attr]
    return McuProfile(
        name=file.name,
        aliases=tuple(file.aliases),
        core=file.core,
        description=file.description,
        clock_hz=clock_hz,
        sram_bytes=file.sram_bytes.value,
        flash_bytes=file.flash_bytes.value,
        supply_v=supply_v,
        active_watts=active_watts,
        sleep_watts=sleep_watts,
        costs=CycleCosts(**{k: getattr(file.cycles_float32, k).value for k in OP_CLASSES}),
        provenance=provenance,
        path=str(path),
        instruction_timings=timings,
    )
