"""Instruction classes of the Armv7E-M (Cortex-M4F) instruction set, as fedhar counts them.

The QEMU plugin (``emu/plugin/fh_icount.c``) reports executed instructions by *key*: the
mnemonic as the disassembler prints it (condition code included, ``.w``/``.n`` dropped), then
``#N`` for an N-register list, ``@d`` for double registers and ``!pc`` for a list holding pc.
:func:`classify` maps a key to one of :data:`CLASSES`; :func:`access_bytes` gives the data
bytes it loads and stores. An unknown mnemonic raises ``ValueError``: every instruction the
library executes must have a class.

Classes:
    fp_mac: fused or chained float multiply-accumulate (VFMA, VFMS, VFNMA, VFNMS, VMLA, ...).
    fp_other: every other FPU data-processing or transfer instruction (VADD, VMUL, VDIV,
        VSQRT, VMOV, VCVT, VCMP, VMRS, ...), not loads or stores.
    load: LDR*, LDM, POP, VLDR, VLDM, VPOP (a POP into pc is a load here).
    store: STR*, STM, PUSH, VSTR, VSTM, VPUSH.
    branch: B, BL, BLX, BX, CBZ, CBNZ, TBB, TBH.
    int_alu: integer data processing, multiplies and divides, moves, compares, extends.
    other: IT blocks, hints, barriers, system and breakpoint instructions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

__all__ = ["CLASSES", "access_bytes", "classify", "cycles", "key_cycles", "parse_key"]

CLASSES = ("fp_mac", "fp_other", "load", "store", "branch", "int_alu", "other")

_CONDS = (
    "eq",
    "ne",
    "cs",
    "hs",
    "cc",
    "lo",
    "mi",
    "pl",
    "vs",
    "vc",
    "hi",
    "ls",
    "ge",
    "lt",
    "gt",
    "le",
    "al",
)

_FP_MAC = {"vfma", "vfms", "vfnma", "vfnms", "vmla", "vmls", "vnmla", "vnmls"}
_LOAD_BYTES = {
    "ldr": 4,
    "ldrb": 1,
    "ldrh": 2,
    "ldrsb": 1,
    "ldrsh": 2,
    "ldrd": 8,
    "ldrex": 4,
    "ldrt": 4,
    "ldrbt": 1,
    "ldrht": 2,
    "ldrsbt": 1,
    "ldrsht": 2,
    "vldr": 4,
}
_STORE_BYTES = {
    "str": 4,
    "strb": 1,
    "strh": 2,
    "strd": 8,
    "strex": 4,
    "strt": 4,
    "strbt": 1,
    "strht": 2,
    "vstr": 4,
}
_LOAD_LISTS = {"ldm", "ldmia", "ldmfd", "ldmdb", "ldmea", "pop", "vldm", "vldmia", "vldmdb", "vpop"}
_STORE_LISTS = {
    "stm",
    "stmia",
    "stmea",
    "stmdb",
    "stmfd",
    "push",
    "vstm",
    "vstmia",
    "vstmdb",
    "vpush",
}
_BRANCH = {"b", "bl", "blx", "bx", "cbz", "cbnz", "tbb", "tbh"}
_INT_ALU = {
    "add",
    "addw",
    "adc",
    "sub",
    "subw",
    "sbc",
    "rsb",
    "mul",
    "mla",
    "mls",
    "umull",
    "smull",
    "umlal",
    "smlal",
    "sdiv",
    "udiv",
    "and",
    "orr",
    "orn",
    "eor",
    "bic",
    "mvn",
    "mov",
    "movw",
    "movt",
    "lsl",
    "lsr",
    "asr",
    "ror",
    "rrx",
    "cmp",
    "cmn",
    "tst",
    "teq",
    "neg",
    "adr",
    "ubfx",
    "sbfx",
    "bfi",
    "bfc",
    "uxtb",
    "uxth",
    "sxtb",
    "sxth",
    "uxtab",
    "uxtah",
    "sxtab",
    "sxtah",
    "clz",
    "rev",
    "rev16",
    "revsh",
    "rbit",
    "usat",
    "ssat",
    "usat16",
    "ssat16",
    "qadd",
    "qsub",
    "qdadd",
    "qdsub",
    "uadd8",
    "usub8",
    "sadd8",
    "ssub8",
    "uadd16",
    "usub16",
    "sadd16",
    "ssub16",
    "uqadd8",
    "uqsub8",
    "qadd8",
    "qsub8",
    "qadd16",
    "qsub16",
    "sel",
    "smlabb",
    "smlabt",
    "smlatb",
    "smlatt",
    "smulbb",
    "smulbt",
    "smultb",
    "smultt",
    "smlad",
    "smladx",
    "smlsd",
    "smuad",
    "smusd",
    "smmul",
    "smmla",
    "smmls",
    "smmulr",
    "smlalbb",
    "smlald",
    "umaal",
    "smlawb",
    "smlawt",
    "smulwb",
    "smulwt",
    "pkhbt",
    "pkhtb",
    "sxtb16",
    "uxtb16",
    "usad8",
    "usada8",
    "shadd8",
    "uhadd8",
    "asrl",
    "lsll",
}
_OTHER = {
    "nop",
    "bkpt",
    "svc",
    "dsb",
    "dmb",
    "isb",
    "pld",
    "pli",
    "cpsid",
    "cpsie",
    "msr",
    "mrs",
    "wfi",
    "wfe",
    "sev",
    "yield",
    "udf",
    "clrex",
}
_IT = re.compile(r"^it[te]{0,3}$")
_KEY = re.compile(r"^(?P<mnem>[a-z0-9.]+)(?:#(?P<n>\d+))?(?P<d>@d)?(?P<pc>!pc)?(?P<p>\^p)?$")


def parse_key(key: str) -> tuple[str, int, bool, bool]:
    """``key`` → (mnemonic, registers in its list or 0, double registers, list holds pc)."""
    m = _KEY.match(key)
    if m is None:
        raise ValueError(f"instruction key {key!r} is not in the plugin's format")
    return m["mnem"], int(m["n"] or 0), m["d"] is not None, m["pc"] is not None


_FP_DATA = {
    "vmov",
    "vadd",
    "vsub",
    "vmul",
    "vnmul",
    "vdiv",
    "vsqrt",
    "vabs",
    "vneg",
    "vcmp",
    "vcmpe",
    "vcvt",
    "vcvtr",
    "vmrs",
    "vmsr",
    "vcvtb",
    "vcvtt",
}
_ALL = (
    _FP_MAC
    | _FP_DATA
    | set(_LOAD_BYTES)
    | set(_STORE_BYTES)
    | _LOAD_LISTS
    | _STORE_LISTS
    | _BRANCH
    | _INT_ALU
    | _OTHER
)


@functools.cache
def _base(mnem: str) -> str:
    """The operation without data type (``.f32``), condition code and flag-setting ``s``."""
    op = mnem.split(".", 1)[0]
    if _IT.match(op):
        return "it"
    stems = [op] + [op[: -len(c)] for c in _CONDS if op.endswith(c) and len(op) > len(c)]
    stems += [s[:-1] for s in stems if s.endswith("s") and len(s) > 1]
    for stem in stems:
        if stem in _ALL:
            return stem
    raise ValueError(f"unknown Armv7E-M mnemonic {mnem!r}")


@functools.cache
def classify(key: str) -> str:
    """The class (one of :data:`CLASSES`) of an executed instruction's key."""
    mnem, _, _, _ = parse_key(key)
    op = _base(mnem)
    if op == "it" or op in _OTHER:
        return "other"
    if op in _FP_MAC:
        return "fp_mac"
    if op in _LOAD_BYTES or op in _LOAD_LISTS:
        return "load"
    if op in _STORE_BYTES or op in _STORE_LISTS:
        return "store"
    if op in _BRANCH:
        return "branch"
    if op in _INT_ALU:
        return "int_alu"
    return "fp_other"


@functools.cache
def access_bytes(key: str) -> tuple[int, int]:
    """(bytes loaded, bytes stored) by one execution of the instruction ``key``."""
    mnem, n, double, _ = parse_key(key)
    op = _base(mnem)
    word = 8 if double else 4
    if op in _LOAD_BYTES:
        return (word if op == "vldr" else _LOAD_BYTES[op]), 0
    if op in _STORE_BYTES:
        return 0, (word if op == "vstr" else _STORE_BYTES[op])
    if op in _LOAD_LISTS:
        return n * word, 0
    if op in _STORE_LISTS:
        return 0, n * word
    return 0, 0


def key_cycles(key: str, timings: Mapping[str, float]) -> float:
    """Cycles of one execution of ``key`` by the Cortex-M4 timings ``timings`` (a profile's
    ``cycles_instruction``), without the refill and flash cycles of a taken branch."""
    mnem, n, _, _ = parse_key(key)
    pipelined = key.endswith("^p")
    op = _base(mnem)
    if op in _LOAD_LISTS or op in _STORE_LISTS:
        base = 0.0 if pipelined else timings["load_store_multiple_base"]
        return base + n
    if op in ("ldrd", "strd"):
        return (0.0 if pipelined else timings["load_store_multiple_base"]) + 2
    if op in _LOAD_BYTES or op in _STORE_BYTES:
        return timings["load_store_pipelined" if pipelined else "load_store"]
    if op in _FP_MAC:
        return timings["fp_mac"]
    if op in ("vdiv", "vsqrt"):
        return timings["fp_div_sqrt"]
    if op in _FP_DATA:
        return timings["fp_simple"]
    if op in _BRANCH:
        return timings["branch"]
    if op in ("mla", "mls"):
        return timings["int_mla"]
    if op in ("sdiv", "udiv"):
        return timings["int_div"]
    if op in _INT_ALU:
        return timings["int_alu"]
    return timings["other"]


def cycles(keys: Mapping[str, int], taken: int, timings: Mapping[str, float]) -> float:
    """Cycles of an execution: every key's count times its :func:`key_cycles`, plus the
    refill and flash wait cycles of each of the ``taken`` branches."""
    body = sum(n * key_cycles(k, timings) for k, n in keys.items())
    return body + taken * (timings["taken_refill"] + timings["flash_wait"])
