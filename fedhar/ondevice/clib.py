"""The one loader of the on-device C library (``fedhar/ondevice/csrc``, built as the shared object
``fedhar.ondevice._fedhar_train``) and the Python mirror of its shared types
(``csrc/fedhar_types.h``): the status code every entry point returns, the error record
(``ft_error``) every entry point fills as its last argument, and the operation counters.

:mod:`fedhar.ondevice.ctrain` (training) and :mod:`fedhar.ondevice.slim_infer` (width-sliced
inference) declare their entry points with :func:`bind` and run them with :func:`call`, which
turns a failed call's record into a :class:`CLibError` naming the argument, the value found and
the range the C code accepts.

Set ``FEDHAR_CTRAIN_LIB`` to the path of a shared object to load another build of the same
sources (the sanitizer tests do). The library is loaded once per process, on first use.
"""

from __future__ import annotations

import ctypes
import enum
import functools
import hashlib
import importlib.machinery
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from fedhar.ondevice.estimator import OpCounts

__all__ = [
    "CError",
    "CLibError",
    "COpCounts",
    "Status",
    "bind",
    "build_id",
    "call",
    "library",
    "library_path",
    "status_name",
]

LIB_ENV = "FEDHAR_CTRAIN_LIB"


class Status(enum.IntEnum):
    """Mirror of ``ft_status``; the C name of member ``X`` is ``FT_X`` (checked at load)."""

    OK = 0
    ERR_NULL = 1
    ERR_SHAPE = 2
    ERR_ARENA_TOO_SMALL = 3
    ERR_ARG = 4
    ERR_NUMERIC = 5
    ERR_STATE = 6


class COpCounts(ctypes.Structure):
    """Mirror of ``ft_op_counts``: one int64 per field of :class:`OpCounts`, in its order."""

    _fields_ = [(f.name, ctypes.c_int64) for f in fields(OpCounts)]

    def to_op_counts(self) -> OpCounts:
        return OpCounts(*(getattr(self, name) for name, _ in self._fields_))


class CError(ctypes.Structure):
    """Mirror of ``ft_error``: what made a call fail (``csrc/fedhar_types.h``)."""

    _fields_ = [
        ("status", ctypes.c_int32),
        ("arg", ctypes.c_int32),
        ("name", ctypes.c_char_p),
        ("index", ctypes.c_int64),
        ("value", ctypes.c_double),
        ("lo", ctypes.c_double),
        ("hi", ctypes.c_double),
        ("open", ctypes.c_int32),
    ]

    LO_OPEN = 1
    HI_OPEN = 2

    def argument(self) -> str:
        """The failing argument or field with its element: ``"y[3]"``, ``"layers[2].kernel"``
        (``""`` when the record names none)."""
        name = (self.name or b"").decode()
        if self.index < 0:
            return name
        if "[]" in name:
            return name.replace("[]", f"[{self.index}]", 1)
        return f"{name}[{self.index}]"

    def describe(self) -> str:
        """One phrase: the argument, the value found and the accepted range, e.g.
        ``"y[3] = 7, expected 0 <= y[3] <= 5"``; ``"x is NULL"``; ``""`` without an argument."""
        arg = self.argument()
        if not arg:
            return ""
        if self.status == Status.ERR_NULL:
            return f"{arg} is NULL"
        found = f"{arg} = {_number(self.value)}"
        if math.isnan(self.lo) and math.isnan(self.hi):
            return found
        if self.lo == self.hi and not self.open:
            return f"{found}, expected {_number(self.lo)}"
        lo = "" if math.isinf(self.lo) else _number(self.lo)
        hi = "" if math.isinf(self.hi) else _number(self.hi)
        lo_op = "<" if self.open & self.LO_OPEN else "<="
        hi_op = "<" if self.open & self.HI_OPEN else "<="
        expected = " ".join(p for p in (lo and f"{lo} {lo_op}", arg, hi and f"{hi_op} {hi}") if p)
        return f"{found}, expected {expected}"


def _number(v: float) -> str:
    """A record's value: integral values below 2**53 without a fraction, others in 7 significant
    digits (FLT_MAX, the bound of a finite float, is ``3.402823e+38``)."""
    if math.isfinite(v) and v == int(v) and abs(v) < 2**53:
        return str(int(v))
    return f"{v:.7g}"


class CLibError(RuntimeError):
    """A C entry point returned an error status.

    Attributes:
        status: the C name of the status, e.g. ``"FT_ERR_SHAPE"`` (from ``ft_status_str``).
        code: the status number (a :class:`Status` when the library knows it).
        entry: the C entry point that failed.
        arg: 1-based position of the failing argument in the C prototype (0: none named).
        argument: the failing argument or field, e.g. ``"y[3]"`` (``""``: none named).
        value, lo, hi: the value the C code found and the range it accepts (NaN: none).
    """

    def __init__(self, code: int, entry: str, detail: str, error: CError | None = None) -> None:
        try:
            self.code: int = Status(code)
        except ValueError:
            self.code = code
        self.status = status_name(code)
        self.entry = entry
        record = (
            error if error is not None else CError(code, 0, b"", -1, math.nan, math.nan, math.nan)
        )
        self.arg = int(record.arg)
        self.argument = record.argument()
        self.value, self.lo, self.hi = float(record.value), float(record.lo), float(record.hi)
        what = "; ".join(p for p in (record.describe(), detail) if p)
        super().__init__(f"{entry}: {self.status}: {what}" if what else f"{entry}: {self.status}")


def library_path() -> Path:
    """The shared object to load: ``$FEDHAR_CTRAIN_LIB``, else the build next to this module."""
    override = os.environ.get(LIB_ENV)
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = here / f"_fedhar_train{suffix}"
        if candidate.is_file():
            return candidate
    raise ImportError(
        f"the C library _fedhar_train is not built in {here}; reinstall fedhar "
        "(pip install -e .) or run `python setup.py build_ext --inplace`"
    )


@functools.cache
def build_id() -> str:
    """sha256 hex of the shared object's bytes: identifies the build whose float results a
    cache entry holds (another compiler, flag or source gives another id)."""
    return hashlib.sha256(library_path().read_bytes()).hexdigest()


@functools.cache
def library() -> ctypes.CDLL:
    """The loaded library (once per process), with ``ft_status_str`` declared and the
    :class:`Status` mirror checked against it."""
    path = library_path()
    lib = ctypes.CDLL(str(path))
    lib.ft_status_str.argtypes = [ctypes.c_int32]
    lib.ft_status_str.restype = ctypes.c_char_p
    for s in Status:
        c_name = lib.ft_status_str(s.value).decode()
        if c_name != f"FT_{s.name}":
            raise ImportError(f"{path}: status {s.value} is {c_name} in C, FT_{s.name} in Python")
    if lib.ft_status_str(len(Status)).decode() != "FT_UNKNOWN_STATUS":
        raise ImportError(f"{path}: the C library has more status codes than fedhar.ondevice.clib")
    return lib


def bind(signatures: Mapping[str, Sequence[Any]]) -> ctypes.CDLL:
    """Declares entry points ``{name: argtypes}``, each returning an ``ft_status`` and taking a
    ``ft_error *`` after the listed arguments; returns the library."""
    lib = library()
    for name, args in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes = [*args, ctypes.POINTER(CError)]
        fn.restype = ctypes.c_int32
    return lib


def status_name(code: int) -> str:
    """The C name of a status code (``"FT_UNKNOWN_STATUS"`` for an unknown one)."""
    return library().ft_status_str(code).decode()


def call(fn: Any, *args: Any, detail: str = "") -> None:
    """Runs entry point ``fn`` (declared by :func:`bind`) on ``args`` and a fresh error record;
    raises :class:`CLibError` unless it returns ``FT_OK``, naming the argument the record names
    and ``detail`` (what the binding asked for)."""
    error = CError()
    code = fn(*args, ctypes.byref(error))
    if code != Status.OK:
        raise CLibError(code, fn.__name__, detail, error)
