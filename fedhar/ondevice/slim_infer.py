"""ctypes binding of ``fedhar/ondevice/csrc/fh_slim.h``: width-sliced inference and the score
margin.

The C structs point straight into the numpy arrays of a
:class:`~fedhar.ondevice.slim_format.SlimF32` or :class:`~fedhar.ondevice.slim_format.SlimS8` (the
shared full weight tensors, no copies); one C call runs a whole batch. Bad arrays raise
``ValueError`` before any C call; a non-zero C status raises
:class:`~fedhar.ondevice.clib.CLibError`. The library is loaded by :mod:`fedhar.ondevice.clib`.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass

import numpy as np

from fedhar.ondevice import clib
from fedhar.ondevice.cint import c_int, c_ints
from fedhar.ondevice.estimator import OpCounts
from fedhar.ondevice.slim_format import SlimF32, SlimS8

_P = ctypes.POINTER
_CTYPES: dict[type, type] = {
    np.float32: ctypes.c_float,
    np.int8: ctypes.c_int8,
    np.int32: ctypes.c_int32,
}


class _NetDims(ctypes.Structure):
    _fields_ = [(f, ctypes.c_int32) for f in ("in_channels", "in_length", "n_conv", "n_dense")]


class _ConvDims(ctypes.Structure):
    _fields_ = [
        (f, ctypes.c_int32) for f in ("c_in_full", "c_out_full", "c_in", "c_out", "kernel", "pool")
    ]


class _DenseDims(ctypes.Structure):
    _fields_ = [(f, ctypes.c_int32) for f in ("n_in_full", "n_out_full", "n_in", "n_out", "relu")]


# The tensors each C layer struct points to, after its dims: (field, numpy dtype, shared).
# A shared tensor is the full one that every width reads: it is never copied, so it must already
# have the dtype and be C-contiguous. The others belong to one width and are converted if needed.
_Tensors = tuple[tuple[str, type, bool], ...]
_CONV_F32: _Tensors = (
    ("weight", np.float32, True),
    ("scale", np.float32, False),
    ("shift", np.float32, False),
)
_DENSE_F32: _Tensors = (("weight", np.float32, True), ("bias", np.float32, True))
_CONV_S8: _Tensors = (
    ("weight", np.int8, True),
    ("bias", np.int32, False),
    ("mult", np.int32, False),
    ("rshift", np.int32, False),
)
# An int8 dense struct has all five pointers; a hidden layer requantizes like a conv block (the
# same four tensors), the last one scales its logits. The pointers a layer does not use stay NULL.
_DENSE_S8_HIDDEN: _Tensors = _CONV_S8
_DENSE_S8_LAST: _Tensors = (
    ("weight", np.int8, True),
    ("bias", np.int32, False),
    ("logit_scale", np.float32, False),
)
_DENSE_S8: _Tensors = (*_DENSE_S8_HIDDEN, ("logit_scale", np.float32, False))


def _layer_struct(name: str, dims: type, tensors: _Tensors) -> type:
    """A ctypes mirror of one fh_slim layer struct: ``dims``, then one pointer per tensor."""
    fields = [("dims", dims), *((f, _P(_CTYPES[dtype])) for f, dtype, _ in tensors)]
    return type(name, (ctypes.Structure,), {"_fields_": fields})


def _net_struct(name: str, conv: type, dense: type) -> type:
    """A ctypes mirror of an fh_slim network struct."""
    fields = [("dims", _NetDims), ("conv", _P(conv)), ("dense", _P(dense))]
    return type(name, (ctypes.Structure,), {"_fields_": fields})


@dataclass(frozen=True)
class _Kind:
    """The C structs and entry points of one element type."""

    conv: type
    dense: type
    net: type
    buffer_size: str
    forward: str


_ConvF32 = _layer_struct("_ConvF32", _ConvDims, _CONV_F32)
_DenseF32 = _layer_struct("_DenseF32", _DenseDims, _DENSE_F32)
_ConvS8 = _layer_struct("_ConvS8", _ConvDims, _CONV_S8)
_DenseS8 = _layer_struct("_DenseS8", _DenseDims, _DENSE_S8)
_F32 = _Kind(
    _ConvF32,
    _DenseF32,
    _net_struct("_NetF32", _ConvF32, _DenseF32),
    "fh_slim_f32_get_buffer_size",
    "fh_slim_forward_f32",
)
_S8 = _Kind(
    _ConvS8,
    _DenseS8,
    _net_struct("_NetS8", _ConvS8, _DenseS8),
    "fh_slim_s8_get_buffer_size",
    "fh_slim_forward_s8",
)


@functools.cache
def _lib() -> ctypes.CDLL:
    i32, vp, ops = ctypes.c_int32, ctypes.c_void_p, _P(clib.COpCounts)
    signatures: dict[str, tuple[type, ...]] = {
        "fh_slim_score_margin": (vp, i32, i32, ctypes.c_float, vp, vp, vp, ops),
    }
    for kind in (_F32, _S8):
        signatures[kind.buffer_size] = (_P(kind.net), _P(i32))
        signatures[kind.forward] = (_P(kind.net), vp, i32, vp, vp, i32, ops)
    return clib.bind(signatures)


def _describe(m: SlimF32 | SlimS8) -> str:
    """The sizes of a network at one width, for error messages."""
    convs = ", ".join(f"{c.c_in}->{c.c_out}" for c in m.convs)
    denses = ", ".join(f"{d.n_in}->{d.n_out}" for d in m.denses)
    return (
        f"width {m.width}, input [{m.in_channels}, {m.in_length}], conv channels [{convs}], "
        f"dense units [{denses}]"
    )


class SlimNetC:
    """A C view of one width of a slim network (float32 or int8). Keeps the numpy arrays its
    structs point into alive; builds nothing per call but the output arrays."""

    def __init__(self, model: SlimF32 | SlimS8) -> None:
        self.model = model
        self.int8 = isinstance(model, SlimS8)
        self.n_classes = model.denses[-1].n_out
        self._kind = _S8 if self.int8 else _F32
        self._keep: list[np.ndarray] = []
        self._net = self._build(model)
        size = ctypes.c_int32(0)
        clib.call(
            getattr(_lib(), self._kind.buffer_size),
            ctypes.byref(self._net),
            ctypes.byref(size),
            detail=_describe(model),
        )
        self.buffer_bytes = int(size.value)
        self._buffer = np.zeros(max(self.buffer_bytes, 1), np.uint8)

    def _point(self, struct: ctypes.Structure, layer: object, tensors: _Tensors) -> None:
        """Points the struct's tensor fields into the layer's arrays of the same names."""
        for field, dtype, shared in tensors:
            a = getattr(layer, field)
            if shared and (a.dtype != dtype or not a.flags.c_contiguous):
                raise ValueError(
                    f"{field} is shared by every width and must be a C-contiguous "
                    f"{np.dtype(dtype)} array, got {a.dtype} (contiguous: {a.flags.c_contiguous})"
                )
            if np.issubdtype(dtype, np.integer):
                a = c_ints(field, a, np.dtype(dtype).name)
            else:
                a = np.ascontiguousarray(a, dtype=dtype)
            self._keep.append(a)
            setattr(struct, field, a.ctypes.data_as(_P(_CTYPES[dtype])))

    def _build(self, m: SlimF32 | SlimS8) -> ctypes.Structure:
        kind = self._kind
        convs = (kind.conv * len(m.convs))()
        for i, c in enumerate(m.convs):
            c_out_full, c_in_full, k = c.weight.shape
            sizes = {"c_in_full": c_in_full, "c_out_full": c_out_full, "c_in": c.c_in}
            sizes |= {"c_out": c.c_out, "kernel": k, "pool": c.pool}
            convs[i].dims = _ConvDims(*(c_int(f"conv {i} {f}", v) for f, v in sizes.items()))
            self._point(convs[i], c, _CONV_S8 if self.int8 else _CONV_F32)
        denses = (kind.dense * len(m.denses))()
        for i, d in enumerate(m.denses):
            n_out_full, n_in_full = d.weight.shape
            sizes = {"n_in_full": n_in_full, "n_out_full": n_out_full, "n_in": d.n_in}
            sizes |= {"n_out": d.n_out}
            denses[i].dims = _DenseDims(
                *(c_int(f"dense {i} {f}", v) for f, v in sizes.items()), int(d.relu)
            )
            if not self.int8:
                self._point(denses[i], d, _DENSE_F32)
            else:
                self._point(denses[i], d, _DENSE_S8_HIDDEN if d.relu else _DENSE_S8_LAST)
        self._structs = (convs, denses)
        dims = _NetDims(
            c_int("in_channels", m.in_channels),
            c_int("in_length", m.in_length),
            c_int("conv block count", len(m.convs)),
            c_int("dense layer count", len(m.denses)),
        )
        return kind.net(dims, convs, denses)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, OpCounts]:
        """Logits ``[N, n_classes]`` float32 of ``x [N, C, T]`` (float32; quantized with the
        model's input scale for int8) and the operations counted for the whole batch."""
        m = self.model
        if x.ndim != 3 or x.shape[1:] != (m.in_channels, m.in_length):
            raise ValueError(
                f"input must be [N, {m.in_channels}, {m.in_length}], got {list(x.shape)}"
            )
        n = x.shape[0]
        logits = np.zeros((n, self.n_classes), np.float32)
        ops = clib.COpCounts()
        if isinstance(m, SlimS8):
            xin = np.ascontiguousarray(m.quantize_input(x))
        else:
            xin = np.ascontiguousarray(x, dtype=np.float32)
        clib.call(
            getattr(_lib(), self._kind.forward),
            ctypes.byref(self._net),
            xin.ctypes.data,
            c_int("sample count N", n),
            logits.ctypes.data,
            self._buffer.ctypes.data,
            self.buffer_bytes,
            ctypes.byref(ops),
            detail=f"x shape {list(x.shape)}, {_describe(m)}",
        )
        return logits, ops.to_op_counts()


def score_margin(
    logits: np.ndarray, th: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, OpCounts]:
    """Score-margin policy in C on ``logits [N, K]``: ``(margin [N] float32, argmax [N] int32,
    easy [N] bool = margin > th, ops for the batch)``."""
    z = np.ascontiguousarray(logits, dtype=np.float32)
    if z.ndim != 2:
        raise ValueError(f"logits must be [N, K], got shape {list(z.shape)}")
    n, k = z.shape
    margin = np.zeros(n, np.float32)
    argmax = np.zeros(n, np.int32)
    easy = np.zeros(n, np.uint8)
    ops = clib.COpCounts()
    clib.call(
        _lib().fh_slim_score_margin,
        z.ctypes.data,
        c_int("sample count N", n),
        c_int("class count K", k),
        float(th),
        margin.ctypes.data,
        argmax.ctypes.data,
        easy.ctypes.data,
        ctypes.byref(ops),
        detail=f"logits shape [{n}, {k}], th {th}",
    )
    return margin, argmax, easy.astype(bool), ops.to_op_counts()
