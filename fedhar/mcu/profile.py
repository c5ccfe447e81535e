"""MCU profiles: clock, memory, cycle costs and power of one microcontroller.

A profile is a YAML file in ``fedhar/mcu/profiles/``. Every number in it is a mapping
``{value, basis, source}``: ``basis`` says how the number was obtained (one of
:data:`BASES`) and ``source`` names the datasheet section or paper table it comes from, or how
it was calibrated or assumed. :func:`load_profile` validates the file and returns a frozen
:class:`McuProfile`, which turns operation counts into cycles, seconds and joules.

Cost model (float32 training and inference)::

    cycles  = Σ_k cycles_per_op[k] · count[k]        k ∈ OP_CLASSES
    seconds = cycles / clock_hz
    joules  = seconds · active_watts
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"

OP_CLASSES: tuple[str, ...] = ("mac", "add", "mul", "div", "exp", "cmp", "byte_moved")
"""Operation classes priced by a profile, in the order of :class:`CycleCosts`."""

COUNT_FIELDS: dict[str, str] = {
    "mac": "macs",
    "add": "adds",
    "mul": "muls",
    "div": "divs",
    "exp": "exps",
    "cmp": "cmps",
    "byte_moved": "bytes_moved",
}
"""Operation class → attribute of an ``OpCounts`` record that holds its count."""

BASES: tuple[str, ...] = ("datasheet", "paper", "derived", "calibrated", "assumed")
"""How a profile number was obtained: read from a datasheet or paper, derived from such numbers
by arithmetic stated in its source, fitted by :mod:`fedhar.ondevice.calibration`, or assumed."""


class ProfileError(ValueError):
    """A profile file is missing, malformed, or has a field outside its allowed range."""


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


@dataclass(frozen=True)
class Sourced:
    """One profile number with its provenance.

    Attributes:
        value: the number, in the unit its field name states.
        basis: one of :data:`BASES`.
        source: datasheet name and section/table, paper and table, or the calibration or
            assumption that produced the value.
    """

    value: float
    basis: str
    source: str


@dataclass(frozen=True)
class CycleCosts:
    """Cycles per operation, one field per class of :data:`OP_CLASSES`.

    The arithmetic classes price the instruction alone (``mac``: one multiply-accumulate;
    the others: one scalar operation); ``byte_moved`` prices every byte the loop nest loads or
    stores, operands of MACs included, as the library's ``bytes_moved`` counter counts them.
    """

    mac: float
    add: float
    mul: float
    div: float
    exp: float
    cmp: float
    byte_moved: float

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
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def resolve_profile_name(name: str) -> str:
    """The bundled profile called ``name`` or listing it among its aliases (case-insensitive)."""
    wanted = name.strip().lower()
    profiles = [load_profile(PROFILE_DIR / f"{stem}.yaml") for stem in list_profiles()]
    for profile in profiles:
        if wanted == profile.name or wanted in profile.aliases:
            return profile.name
    choices = "; ".join(
        profile.name + (f" (aliases: {', '.join(profile.aliases)})" if profile.aliases else "")
        for profile in profiles
    )
    raise ProfileError(f"unknown MCU profile {name!r}; expected one of: {choices}")


def load_profile(name_or_path: str | Path) -> McuProfile:
    """Loads and validates a profile by bundled name, alias, or path to a ``.yaml`` file.

    Raises:
        ProfileError: naming the file and the field, and what was expected.
    """
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text)
    else:
        path = PROFILE_DIR / f"{resolve_profile_name(text)}.yaml"
    if not path.is_file():
        raise ProfileError(f"{path}: profile file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    return _parse(path, data)


class _Reader:
    """Reads fields of one profile file, collecting provenance and naming the file in errors."""

    def __init__(self, path: Path, data: Any) -> None:
        if not isinstance(data, dict):
            raise ProfileError(f"{path}: expected a mapping at the top level, got {_kind(data)}")
        self.path = path
        self.data = data
        self.provenance: list[tuple[str, Sourced]] = []

    def fail(self, field: str, expected: str, got: Any) -> ProfileError:
        return ProfileError(f"{self.path}: field {field!r}: expected {expected}, got {got!r}")

    def text(self, field: str) -> str:
        value = self.data.get(field)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, "a non-empty string", value)
        return value.strip()

    def names(self, field: str) -> tuple[str, ...]:
        value = self.data.get(field, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(field, "a list of names", value)
        return tuple(v.strip().lower() for v in value)

    def number(self, field: str, node: Any, minimum: float, strict: bool = False) -> float:
        """A ``{value, basis, source}`` mapping whose value is a finite number >= minimum
        (> minimum when ``strict``)."""
        if not isinstance(node, dict):
            raise self.fail(field, "a mapping {value, basis, source}", node)
        unknown = set(node) - {"value", "basis", "source"}
        if unknown:
            raise self.fail(field, "only the keys value, basis, source", sorted(unknown))
        value = node.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"{field}.value", "a number", value)
        value = float(value)
        bound_ok = value > minimum if strict else value >= minimum
        if not math.isfinite(value) or not bound_ok:
            relation = ">" if strict else ">="
            raise self.fail(f"{field}.value", f"a finite number {relation} {minimum:g}", value)
        basis = node.get("basis")
        if basis not in BASES:
            raise self.fail(f"{field}.basis", f"one of {', '.join(BASES)}", basis)
        source = node.get("source")
        if not isinstance(source, str) or not source.strip():
            raise self.fail(
                f"{field}.source", "a non-empty string naming where it comes from", source
            )
        self.provenance.append((field, Sourced(value, basis, " ".join(source.split()))))
        return value

    def field(self, field: str, minimum: float = 0.0, strict: bool = True) -> float:
        if field not in self.data:
            raise ProfileError(f"{self.path}: missing field {field!r}")
        return self.number(field, self.data[field], minimum, strict)

    def one_of(self, *fields: str) -> str:
        present = [f for f in fields if f in self.data]
        if len(present) != 1:
            raise ProfileError(
                f"{self.path}: expected exactly one of the fields {', '.join(fields)}, "
                f"got {len(present)}" + (f" ({', '.join(present)})" if present else "")
            )
        return present[0]


def _kind(value: Any) -> str:
    return type(value).__name__


def _parse(path: Path, data: Any) -> McuProfile:
    r = _Reader(path, data)
    name = r.text("name")
    if name != path.stem:
        raise r.fail("name", f"the file stem {path.stem!r}", name)
    clock_hz = r.field("clock_hz")
    supply_v = r.field("supply_v")
    sram = r.field("sram_bytes")
    flash = r.field("flash_bytes", strict=False)
    for field, value in (("sram_bytes", sram), ("flash_bytes", flash)):
        if value != int(value):
            raise r.fail(f"{field}.value", "a whole number of bytes", value)

    if r.one_of("active_power_w", "run_current_ua_per_mhz") == "active_power_w":
        active_watts = r.field("active_power_w")
    else:
        ua_per_mhz = r.field("run_current_ua_per_mhz")
        active_watts = ua_per_mhz * 1e-6 * (clock_hz / 1e6) * supply_v
    if r.one_of("sleep_power_w", "sleep_current_ua") == "sleep_power_w":
        sleep_watts = r.field("sleep_power_w", strict=False)
    else:
        sleep_watts = r.field("sleep_current_ua", strict=False) * 1e-6 * supply_v

    table = data.get("cycles_float32")
    if not isinstance(table, dict):
        raise r.fail("cycles_float32", f"a mapping with the keys {', '.join(OP_CLASSES)}", table)
    missing = [k for k in OP_CLASSES if k not in table]
    extra = sorted(set(table) - set(OP_CLASSES))
    if missing or extra:
        raise r.fail(
            "cycles_float32",
            f"exactly the keys {', '.join(OP_CLASSES)}",
            {"missing": missing, "unknown": extra},
        )
    costs = CycleCosts(**{k: r.number(f"cycles_float32.{k}", table[k], 0.0) for k in OP_CLASSES})
    known = {
        "name",
        "aliases",
        "core",
        "description",
        "clock_hz",
        "supply_v",
        "sram_bytes",
        "flash_bytes",
        "active_power_w",
        "run_current_ua_per_mhz",
        "sleep_power_w",
        "sleep_current_ua",
        "cycles_float32",
        "notes",
    }
    notes = data.get("notes", "")
    if not isinstance(notes, str):
        raise r.fail("notes", "free text", notes)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ProfileError(
            f"{path}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}"
        )
    return McuProfile(
        name=name,
        aliases=r.names("aliases"),
        core=r.text("core"),
        description=r.text("description"),
        clock_hz=clock_hz,
        sram_bytes=int(sram),
        flash_bytes=int(flash),
        supply_v=supply_v,
        active_watts=active_watts,
        sleep_watts=sleep_watts,
        costs=costs,
        provenance=tuple(r.provenance),
        path=str(path),
    )
