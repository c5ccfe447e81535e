"""ctypes binding of ``fedhar/ondevice/csrc/fh_qnet.h``: inference of a deployed
:class:`~fedhar.models.quantized.QNet` (packed 1/2/4/8-bit integer network) or
:class:`~fedhar.models.quantized.DynamicNet` (int8 weights, float activations).

The C layer structs point into C-typed copies of the network's arrays, which the binding keeps
alive; one C call runs a whole batch. Integers are narrowed through :mod:`fedhar.ondevice.cint`
(a ``ValueError`` names the field); a non-zero C status raises
:class:`~fedhar.ondevice.clib.CLibError` naming the layer field that failed.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

import numpy as np

from fedhar.models.quantized import DynamicLinear, DynamicNet, QLinear, QNet, QPool
from fedhar.ondevice import clib
from fedhar.ondevice.cint import c_int, c_ints
from fedhar.ondevice.estimator import OpCounts

__all__ = ["MEMORY_PARTS", "DynamicNetC", "QNetC", "layer_dims"]

_P = ctypes.POINTER
_KINDS = {"conv1d": 0, "dense": 1, "max": 2, "avg": 3, "gap": 4}
_PADDING = {"valid": 0, "same": 1}
MEMORY_PARTS: tuple[str, ...] = (
    "model",
    "ping",
    "pong",
    "unpacked_input",
    "unpacked_weights",
    "bit_columns",
    "buffer",
)
"""The fields of ``fh_qnet_memory`` (bytes): the model the kernels read, the scratch parts and
``buffer``, their sum (fh_qnet.h)."""


class _Dims(ctypes.Structure):
    _fields_ = [
        (f, ctypes.c_int32)
        for f in ("kind", "c_in", "c_out", "t_in", "t_out", "kernel", "stride", "padding")
    ]


class _QLayer(ctypes.Structure):
    _fields_ = [
        ("dims", _Dims),
        ("w_bits", ctypes.c_int32),
        ("in_bits", ctypes.c_int32),
        ("out_bits", ctypes.c_int32),
        ("weight", _P(ctypes.c_uint8)),
        ("bias", _P(ctypes.c_int32)),
        ("mult", _P(ctypes.c_int32)),
        ("rshift", _P(ctypes.c_int8)),
        ("logit_scale", _P(ctypes.c_float)),
    ]


class _DLayer(ctypes.Structure):
    _fields_ = [
        ("dims", _Dims),
        ("relu", ctypes.c_int32),
        ("weight", _P(ctypes.c_int8)),
        ("w_scale", _P(ctypes.c_float)),
        ("bias", _P(ctypes.c_float)),
    ]


def _net_struct(name: str, layer: type) -> type:
    fields = [(f, ctypes.c_int32) for f in ("in_channels", "in_length", "n_classes", "n_layers")]
    return type(name, (ctypes.Structure,), {"_fields_": [*fields, ("layers", _P(layer))]})


_QNetS = _net_struct("_QNetS", _QLayer)
_DNetS = _net_struct("_DNetS", _DLayer)


class _Memory(ctypes.Structure):
    _fields_ = [(f, ctypes.c_int64) for f in MEMORY_PARTS]


@functools.cache
def _lib() -> ctypes.CDLL:
    i32, vp, ops = ctypes.c_int32, ctypes.c_void_p, _P(clib.COpCounts)
    signatures: dict[str, tuple[type, ...]] = {}
    for prefix, net in (("fh_qnet", _QNetS), ("fh_dnet", _DNetS)):
        signatures[f"{prefix}_get_memory"] = (_P(net), _P(_Memory))
        signatures[f"{prefix}_forward"] = (_P(net), vp, i32, vp, vp, i32, ops)
    return clib.bind(signatures)


def layer_dims(layer: QLinear | DynamicLinear | QPool) -> ctypes.Structure:
    """The ``fh_qnet_dims`` of a layer (a ``ValueError`` names ``<layer> <field>``)."""
    if isinstance(layer, QPool):
        kind, c_in, c_out, k, stride, pad = (layer.kind, layer.c, layer.c, layer.size,
                                             layer.stride, "valid")  # fmt: skip
    else:
        kind, c_in, c_out, k, stride, pad = (layer.kind, layer.c_in, layer.c_out, layer.kernel,
                                             layer.stride, layer.padding)  # fmt: skip
    if kind not in _KINDS or pad not in _PADDING:
        raise ValueError(f"layer {layer.name!r}: unknown kind {kind!r} or padding {pad!r}")
    sizes = {"c_in": c_in, "c_out": c_out, "t_in": layer.t_in, "t_out": layer.t_out}
    sizes |= {"kernel": k, "stride": stride}
    return _Dims(
        _KINDS[kind],
        *(c_int(f"layer {layer.name} {f}", v) for f, v in sizes.items()),
        _PADDING[pad],
    )


class _NetC:
    """What both bindings share: the arrays kept alive, the memory and the batch call."""

    _prefix = ""
    _in_dtype: Any = np.int8

    def __init__(self, net: QNet | DynamicNet, layers: ctypes.Array, struct: type) -> None:
        self.net = net
        self.n_classes = net.n_classes
        self._layers = layers
        self._net = struct(
            c_int("in_channels", net.in_channels),
            c_int("in_length", net.in_length),
            c_int("n_classes", net.n_classes),
            c_int("layer count", len(net.layers)),
            layers,
        )
        mem = _Memory()
        clib.call(
            getattr(_lib(), f"{self._prefix}_get_memory"),
            ctypes.byref(self._net),
            ctypes.byref(mem),
            detail=f"network {net.spec_name!r}",
        )
        self.memory: dict[str, int] = {f: int(getattr(mem, f)) for f in MEMORY_PARTS}
        """Bytes by part, as ``fh_qnet_memory`` (:data:`MEMORY_PARTS`)."""
        self.buffer_bytes = self.memory["buffer"]
        self.model_bytes = self.memory["model"]
        self._buffer = np.zeros(max(self.buffer_bytes // 4 + 1, 1), np.uint32)

    def _point(self, dtype: Any, a: np.ndarray, ctype: Any, name: str) -> Any:
        """A C pointer to a kept C-typed copy of ``a`` (NULL for an empty array)."""
        if a.size == 0:
            return None
        if np.issubdtype(np.dtype(dtype), np.integer):
            kept = c_ints(name, a, np.dtype(dtype).name)
        else:
            kept = np.ascontiguousarray(a, dtype=dtype)
        self._keep.append(kept)
        return kept.ctypes.data_as(_P(ctype))

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, OpCounts]:
        net = self.net
        if x.ndim != 3 or x.shape[1:] != (net.in_channels, net.in_length):
            raise ValueError(
                f"input must be [N, {net.in_channels}, {net.in_length}], got {list(x.shape)}"
            )
        xin = np.ascontiguousarray(x, dtype=self._in_dtype)
        n = x.shape[0]
        logits = np.zeros((n, self.n_classes), np.float32)
        ops = clib.COpCounts()
        clib.call(
            getattr(_lib(), f"{self._prefix}_forward"),
            ctypes.byref(self._net),
            xin.ctypes.data,
            c_int("sample count N", n),
            logits.ctypes.data,
            self._buffer.ctypes.data,
            c_int("buffer bytes", self.buffer_bytes),
            ctypes.byref(ops),
            detail=f"x shape {list(x.shape)}, network {net.spec_name!r}",
        )
        return logits, ops.to_op_counts()


class QNetC(_NetC):
    """A C view of a :class:`~fedhar.models.quantized.QNet`.

    Attributes:
        buffer_bytes: scratch bytes of ``fh_qnet_forward`` (exact).
        model_bytes: bytes of the network's tensors the kernels read (= ``QNet.model_bytes()``).
        memory: both and the scratch parts, by :data:`MEMORY_PARTS`.
    """

    _prefix = "fh_qnet"
    _in_dtype = np.int8

    def __init__(self, qnet: QNet) -> None:
        self._keep: list[np.ndarray] = []
        layers = (_QLayer * len(qnet.layers))()
        for i, layer in enumerate(qnet.layers):
            s = layers[i]
            s.dims = layer_dims(layer)
            if isinstance(layer, QPool):
                s.in_bits = s.out_bits = c_int(f"layer {layer.name} bits", layer.bits)
                continue
            s.w_bits = c_int(f"layer {layer.name} w_bits", layer.w_bits)
            s.in_bits = c_int(f"layer {layer.name} in_bits", layer.in_bits)
            s.out_bits = c_int(f"layer {layer.name} out_bits", layer.out_bits)
            s.weight = self._point(np.uint8, layer.weight, ctypes.c_uint8, "weight byte")
            s.bias = self._point(np.int32, layer.bias, ctypes.c_int32, "bias")
            s.mult = self._point(np.int32, layer.mult, ctypes.c_int32, "mult")
            s.rshift = self._point(np.int8, layer.rshift, ctypes.c_int8, "rshift")
            s.logit_scale = self._point(np.float32, layer.logit_scale, ctypes.c_float, "")
        super().__init__(qnet, layers, _QNetS)

    def logits(self, x_q: np.ndarray) -> tuple[np.ndarray, OpCounts]:
        """Float32 logits ``[N, n_classes]`` of int8 inputs ``x_q [N, C, T]``
        (:meth:`QNet.quantize_input`) and the operations counted for the whole batch."""
        x = np.asarray(x_q)
        if x.dtype != np.int8:
            raise ValueError(f"x_q must be int8 (QNet.quantize_input), got {x.dtype}")
        return self._run(x)


class DynamicNetC(_NetC):
    """A C view of a :class:`~fedhar.models.quantized.DynamicNet` (attributes as
    :class:`QNetC`; ``unpacked_input`` holds the int8 quantized input of a layer)."""

    _prefix = "fh_dnet"
    _in_dtype = np.float32

    def __init__(self, dnet: DynamicNet) -> None:
        self._keep: list[np.ndarray] = []
        layers = (_DLayer * len(dnet.layers))()
        for i, layer in enumerate(dnet.layers):
            s = layers[i]
            s.dims = layer_dims(layer)
            if isinstance(layer, QPool):
                continue
            s.relu = int(layer.relu)
            s.weight = self._point(np.int8, layer.weight, ctypes.c_int8, "weight")
            s.w_scale = self._point(np.float32, layer.w_scale, ctypes.c_float, "")
            s.bias = self._point(np.float32, layer.bias, ctypes.c_float, "")
        super().__init__(dnet, layers, _DNetS)

    def logits(self, x: np.ndarray) -> tuple[np.ndarray, OpCounts]:
        """Float32 logits ``[N, n_classes]`` of float windows ``x [N, C, T]`` and the operations
        counted for the whole batch."""
        return self._run(np.asarray(x, np.float32))
