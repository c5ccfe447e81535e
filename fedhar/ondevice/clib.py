"""The one loader of the on-device C library (``fedhar/ondevice/csrc``, built as the shared object
``fedhar.ondevice._fedhar_train``) and the Python mirror of its shared types
(``csrc/fedhar_types.h``): the status code every entry point returns and the operation counters.

:mod:`fedhar.ondevice.ctrain` (training) and :mod:`fedhar.ondevice.slim_infer` (width-sliced
inference) declare their entry points with :func:`bind` and turn a status into an exception
with :func:`check`.

Set ``FEDHAR_CTRAIN_LIB`` to the path of a shared object to load another build of the same
sources (the sanitizer tests do). The library is loaded once per process, on first use.
"""

from __future__ import annotations

import ctypes
import enum
import functools
import hashlib
import importlib.machinery
import os
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from fedhar.ondevice.estimator import OpCounts

__all__ = [
    "CLibError",
    "COpCounts",
    "Status",
    "bind",
    "build_id",
    "check",
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


class CLibError(RuntimeError):
    """A C entry point returned an error status.

    Attributes:
        status: the C name of the status, e.g. ``"FT_ERR_SHAPE"`` (from ``ft_status_str``).
        code: the status number (a :class:`Status` when the library knows it).
        entry: the C entry point that failed.
    """

    def __init__(self, code: int, entry: str, detail: str) -> None:
        try:
            self.code: int = Status(code)
        except ValueError:
            self.code = code
        self.status = status_name(code)
        self.entry = entry
        super().__init__(
            f"{entry}: {self.status}: {detail}" if detail else f"{entry}: {self.status}"
        )


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
    """Declares entry points ``{name: argtypes}`` (each returns an ``ft_status``); returns the
    library."""
    lib = library()
    for name, args in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes = list(args)
        fn.restype = ctypes.c_int32
    return lib


def status_name(code: int) -> str:
    """The C name of a status code (``"FT_UNKNOWN_STATUS"`` for an unknown one)."""
    return library().ft_status_str(code).decode()


def check(code: int, entry: str, detail: str = "") -> None:
    """Raises :class:`CLibError` unless ``code`` is ``FT_OK``; ``detail`` says what was asked."""
    if code != Status.OK:
        raise CLibError(code, entry, detail)
