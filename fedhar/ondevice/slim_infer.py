"""ctypes binding of ``fedhar/ondevice/csrc/fh_slim.h``: width-sliced inference and the score
margin.

The C structs point straight into the numpy arrays of a
:class:`~fedhar.ondevice.slim_format.SlimF32` or :class:`~fedhar.ondevice.slim_format.SlimS8` (the
shared full weight tensors, no copies); one C call runs a whole batch. A non-zero C status raises
:class:`SlimError`.
"""

from __future__ import annotations

import ctypes
from dataclasses import fields

import numpy as np

from fedhar.ondevice.ctrain import library_path
from fedhar.ondevice.estimator import OpCounts
from fedhar.ondevice.slim_format import SlimF32, SlimS8

_STATUS = {
    1: "a required pointer is NULL",
    2: "inconsistent or out-of-range layer sizes",
    3: "scratch buffer too small",
    4: "argument out of range",
}


class SlimError(RuntimeError):
    """A fh_slim call returned a non-zero status."""


_OPS_FIELDS = tuple(f.name for f in fields(OpCounts))
_P = ctypes.POINTER


class _Ops(ctypes.Structure):
    _fields_ = [(f, ctypes.c_int64) for f in _OPS_FIELDS]


class _ConvDims(ctypes.Structure):
    _fields_ = [
        (f, ctypes.c_int32) for f in ("c_in_full", "c_out_full", "c_in", "c_out", "kernel", "pool")
    ]


class _DenseDims(ctypes.Structure):
    _fields_ = [(f, ctypes.c_int32) for f in ("n_in_full", "n_out_full", "n_in", "n_out", "relu")]


class _ConvF32(ctypes.Structure):
    _fields_ = [
        ("dims", _ConvDims),
        ("weight", _P(ctypes.c_float)),
        ("scale", _P(ctypes.c_float)),
        ("shift", _P(ctypes.c_float)),
    ]


class _DenseF32(ctypes.Structure):
    _fields_ = [("dims", _DenseDims), ("weight", _P(ctypes.c_float)), ("bias", _P(ctypes.c_float))]


class _NetF32(ctypes.Structure):
    _fields_ = [
        ("in_channels", ctypes.c_int32),
        ("in_length", ctypes.c_int32),
        ("n_conv", ctypes.c_int32),
        ("n_dense", ctypes.c_int32),
        ("conv", _P(_ConvF32)),
        ("dense", _P(_DenseF32)),
    ]


class _ConvS8(ctypes.Structure):
    _fields_ = [
        ("dims", _ConvDims),
        ("weight", _P(ctypes.c_int8)),
        ("bias", _P(ctypes.c_int32)),
        ("mult", _P(ctypes.c_int32)),
        ("rshift", _P(ctypes.c_int32)),
    ]


class _DenseS8(ctypes.Structure):
    _fields_ = [
        ("dims", _DenseDims),
        ("weight", _P(ctypes.c_int8)),
        ("bias", _P(ctypes.c_int32)),
        ("mult", _P(ctypes.c_int32)),
        ("rshift", _P(ctypes.c_int32)),
        ("logit_scale", _P(ctypes.c_float)),
    ]


class _NetS8(ctypes.Structure):
    _fields_ = [
        ("in_channels", ctypes.c_int32),
        ("in_length", ctypes.c_int32),
        ("n_conv", ctypes.c_int32),
        ("n_dense", ctypes.c_int32),
        ("conv", _P(_ConvS8)),
        ("dense", _P(_DenseS8)),
    ]


def _load() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(library_path()))
    i32, vp = ctypes.c_int32, ctypes.c_void_p
    lib.fh_slim_f32_get_buffer_size.argtypes = [_P(_NetF32), _P(i32)]
    lib.fh_slim_s8_get_buffer_size.argtypes = [_P(_NetS8), _P(i32)]
    lib.fh_slim_forward_f32.argtypes = [_P(_NetF32), vp, i32, vp, vp, i32, _P(_Ops)]
    lib.fh_slim_forward_s8.argtypes = [_P(_NetS8), vp, i32, vp, vp, i32, _P(_Ops)]
    lib.fh_slim_score_margin.argtypes = [vp, i32, i32, ctypes.c_float, vp, vp, vp, _P(_Ops)]
    for fn in (
        "fh_slim_f32_get_buffer_size",
        "fh_slim_s8_get_buffer_size",
        "fh_slim_forward_f32",
        "fh_slim_forward_s8",
        "fh_slim_score_margin",
    ):
        getattr(lib, fn).restype = ctypes.c_int
    return lib


_LIB: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        _LIB = _load()
    return _LIB


def _check(status: int, what: str) -> None:
    if status != 0:
        raise SlimError(f"{what}: status {status} ({_STATUS.get(status, 'unknown')})")


def _ptr(arr: np.ndarray, ctype: type, dtype: type) -> ctypes._Pointer:
    if arr.dtype != dtype or not arr.flags.c_contiguous:
        raise SlimError(f"expected a C-contiguous {np.dtype(dtype)} array, got {arr.dtype}")
    return arr.ctypes.data_as(_P(ctype))


class SlimNetC:
    """A C view of one width of a slim network (float32 or int8). Keeps the numpy arrays its
    structs point into alive; builds nothing per call but the output arrays."""

    def __init__(self, model: SlimF32 | SlimS8) -> None:
        self.model = model
        self.int8 = isinstance(model, SlimS8)
        self.n_classes = model.denses[-1].n_out
        self._keep: list[np.ndarray] = []
        if self.int8:
            self._net = self._build_s8(model)
            fn = _lib().fh_slim_s8_get_buffer_size
        else:
            self._net = self._build_f32(model)
            fn = _lib().fh_slim_f32_get_buffer_size
        size = ctypes.c_int32(0)
        _check(fn(ctypes.byref(self._net), ctypes.byref(size)), "fh_slim get_buffer_size")
        self.buffer_bytes = int(size.value)
        self._buffer = np.zeros(max(self.buffer_bytes, 1), np.uint8)

    def _arr(self, a: np.ndarray, dtype: type) -> np.ndarray:
        out = np.ascontiguousarray(a, dtype=dtype)
        self._keep.append(out)
        return out

    def _build_f32(self, m: SlimF32) -> _NetF32:
        f = ctypes.c_float
        convs = (_ConvF32 * len(m.convs))()
        for i, c in enumerate(m.convs):
            full = c.weight
            convs[i].dims = _ConvDims(
                full.shape[1], full.shape[0], c.c_in, c.c_out, full.shape[2], c.pool
            )
            convs[i].weight = _ptr(full, f, np.float32)
            convs[i].scale = _ptr(self._arr(c.scale, np.float32), f, np.float32)
            convs[i].shift = _ptr(self._arr(c.shift, np.float32), f, np.float32)
        denses = (_DenseF32 * len(m.denses))()
        for i, d in enumerate(m.denses):
            denses[i].dims = _DenseDims(
                d.weight.shape[1], d.weight.shape[0], d.n_in, d.n_out, int(d.relu)
            )
            denses[i].weight = _ptr(d.weight, f, np.float32)
            denses[i].bias = _ptr(d.bias, f, np.float32)
        self._structs = (convs, denses)
        return _NetF32(m.in_channels, m.in_length, len(m.convs), len(m.denses), convs, denses)

    def _build_s8(self, m: SlimS8) -> _NetS8:
        i8, i32 = ctypes.c_int8, ctypes.c_int32
        convs = (_ConvS8 * len(m.convs))()
        for i, c in enumerate(m.convs):
            full = c.weight
            convs[i].dims = _ConvDims(
                full.shape[1], full.shape[0], c.c_in, c.c_out, full.shape[2], c.pool
            )
            convs[i].weight = _ptr(full, i8, np.int8)
            convs[i].bias = _ptr(self._arr(c.bias, np.int32), i32, np.int32)
            convs[i].mult = _ptr(self._arr(c.mult, np.int32), i32, np.int32)
            convs[i].rshift = _ptr(self._arr(c.rshift, np.int32), i32, np.int32)
        denses = (_DenseS8 * len(m.denses))()
        for i, d in enumerate(m.denses):
            denses[i].dims = _DenseDims(
                d.weight.shape[1], d.weight.shape[0], d.n_in, d.n_out, int(d.relu)
            )
            denses[i].weight = _ptr(d.weight, i8, np.int8)
            denses[i].bias = _ptr(self._arr(d.bias, np.int32), i32, np.int32)
            if d.relu:
                denses[i].mult = _ptr(self._arr(d.mult, np.int32), i32, np.int32)
                denses[i].rshift = _ptr(self._arr(d.rshift, np.int32), i32, np.int32)
            else:
                denses[i].logit_scale = _ptr(
                    self._arr(d.logit_scale, np.float32), ctypes.c_float, np.float32
                )
        self._structs = (convs, denses)
        return _NetS8(m.in_channels, m.in_length, len(m.convs), len(m.denses), convs, denses)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, OpCounts]:
        """Logits ``[N, n_classes]`` float32 of ``x [N, C, T]`` (float32; quantized with the
        model's input scale for int8) and the operations counted for the whole batch."""
        m = self.model
        if x.ndim != 3 or x.shape[1:] != (m.in_channels, m.in_length):
            raise SlimError(
                f"input must be [N, {m.in_channels}, {m.in_length}], got {list(x.shape)}"
            )
        n = x.shape[0]
        logits = np.zeros((n, self.n_classes), np.float32)
        ops = _Ops()
        if self.int8:
            xin = np.ascontiguousarray(m.quantize_input(x))
            fn = _lib().fh_slim_forward_s8
        else:
            xin = np.ascontiguousarray(x, dtype=np.float32)
            fn = _lib().fh_slim_forward_f32
        status = fn(
            ctypes.byref(self._net),
            xin.ctypes.data,
            n,
            logits.ctypes.data,
            self._buffer.ctypes.data,
            self.buffer_bytes,
            ctypes.byref(ops),
        )
        _check(status, "fh_slim_forward_s8" if self.int8 else "fh_slim_forward_f32")
        return logits, OpCounts(*(getattr(ops, f) for f in _OPS_FIELDS))


def score_margin(
    logits: np.ndarray, th: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, OpCounts]:
    """Score-margin policy in C on ``logits [N, K]``: ``(margin [N] float32, argmax [N] int32,
    easy [N] bool = margin > th, ops for the batch)``."""
    z = np.ascontiguousarray(logits, dtype=np.float32)
    if z.ndim != 2:
        raise SlimError(f"logits must be [N, K], got shape {list(z.shape)}")
    n, k = z.shape
    margin = np.zeros(n, np.float32)
    argmax = np.zeros(n, np.int32)
    easy = np.zeros(n, np.uint8)
    ops = _Ops()
    status = _lib().fh_slim_score_margin(
        z.ctypes.data,
        n,
        k,
        float(th),
        margin.ctypes.data,
        argmax.ctypes.data,
        easy.ctypes.data,
        ctypes.byref(ops),
    )
    _check(status, "fh_slim_score_margin")
    return margin, argmax, easy.astype(bool), OpCounts(*(getattr(ops, f) for f in _OPS_FIELDS))
