"""The one narrowing of Python and numpy integers into the C library's integer types.

ctypes and ``ndarray.astype`` narrow silently: a label of ``2**32`` reaches an ``int32_t`` as 0.
Every integer and integer array that the bindings (:mod:`fedhar.ondevice.ctrain`,
:mod:`fedhar.ondevice.slim_infer`) hand to C goes through :func:`c_int` or :func:`c_ints` first,
which check it against its C type's range and any tighter range the entry point documents, and
raise a :class:`ValueError` naming the parameter, the range and the value found, e.g.
``label 4294967296 at index 3: expected 0 <= label <= 5 (6 classes)``.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any

import numpy as np

__all__ = ["C_TYPES", "c_int", "c_ints"]

C_TYPES: dict[str, np.dtype] = {
    name: np.dtype(name) for name in ("int8", "uint8", "int32", "int64")
}
"""The C integer types the library's prototypes and structs use, by their ``<stdint.h>`` stem."""


@functools.lru_cache(maxsize=1024)
def _bounds(ctype: str, lo: int | None, hi: int | None, why: str) -> tuple[int, int, str]:
    """The accepted closed range: the tighter of ``[lo, hi]`` and the C type's, and the note
    that says where it comes from (``why``, else the C type when it sets a bound)."""
    if ctype not in C_TYPES:
        raise KeyError(f"unknown C integer type {ctype!r}; known: {sorted(C_TYPES)}")
    info = np.iinfo(C_TYPES[ctype])
    c_lo, c_hi = int(info.min), int(info.max)
    lo_, hi_ = c_lo if lo is None else max(lo, c_lo), c_hi if hi is None else min(hi, c_hi)
    note = why or (ctype if lo_ == c_lo or hi_ == c_hi else "")
    return lo_, hi_, f" ({note})" if note else ""


def _expected(name: str, lo: int, hi: int, note: str) -> str:
    return f"expected {lo} <= {name} <= {hi}{note}"


def c_int(
    name: str,
    value: Any,
    ctype: str = "int32",
    lo: int | None = None,
    hi: int | None = None,
    why: str = "",
) -> int:
    """``value`` as a Python int that fits C type ``ctype`` and ``[lo, hi]``.

    Args:
        name: the parameter, as the caller knows it (``"batch_size"``).
        value: a Python or numpy integer (bool and floats are refused).
        ctype: a key of :data:`C_TYPES`.
        lo, hi: tighter inclusive bounds than the C type's (None: the C type's).
        why: where the bounds come from, for the message (``"6 classes"``).

    Raises:
        TypeError: ``value`` is not an integer.
        ValueError: it is out of range; the message names ``name``, the range and ``value``.
    """
    if type(value) is not int and (
        isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral)
    ):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    v = int(value)
    lo_, hi_, note = _bounds(ctype, lo, hi, why)
    if not lo_ <= v <= hi_:
        raise ValueError(f"{name} {v}: {_expected(name, lo_, hi_, note)}")
    return v


def c_ints(
    name: str,
    values: Any,
    ctype: str = "int32",
    lo: int | None = None,
    hi: int | None = None,
    why: str = "",
) -> np.ndarray:
    """``values`` (any shape, any integer dtype, or Python ints of any size) as a C-contiguous
    array of ``ctype``, every element checked against ``[lo, hi]`` and the C type's range.

    ``name`` names one element (``"label"``): the message gives the first bad element's flat
    index, e.g. ``label -1 at index 3: expected 0 <= label <= 5 (6 classes)``.

    Raises:
        TypeError: an element is not an integer (floats and bools are refused).
        ValueError: an element is out of range.
    """
    a = np.asarray(values)
    if a.dtype == object:
        for x in a.ravel().tolist():
            if isinstance(x, bool) or not isinstance(x, numbers.Integral):
                raise TypeError(f"{name} values must be integers, got {type(x).__name__} {x!r}")
    elif a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{name} values must be integers, got dtype {a.dtype}")
    lo_, hi_, note = _bounds(ctype, lo, hi, why)
    flat = a.ravel()
    if flat.size and not lo_ <= int(flat.min()) <= int(flat.max()) <= hi_:
        i, v = next((i, int(x)) for i, x in enumerate(flat.tolist()) if not lo_ <= int(x) <= hi_)
        raise ValueError(f"{name} {v} at index {i}: {_expected(name, lo_, hi_, note)}")
    return np.ascontiguousarray(a, dtype=C_TYPES[ctype])
