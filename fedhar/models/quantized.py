"""The deployed form of a compressed model: integer layers at 1, 2, 4 or 8 bits, packed.

A :class:`QNet` is what the C kernels of ``fedhar/ondevice/csrc/fh_qnet.h`` execute, what a
quantized payload carries and what the QAT reference must reproduce. It is built from a
*folded* model (:func:`fold_spec`, :func:`fold_state`: every BatchNorm merged into the conv in
front of it) by :func:`quantize`, and turned back into float tensors by :func:`dequantize`.

Number formats (all symmetric, no zero points):

* **input**: signed 8-bit, ``x_q = clip(round(x / in_scale), -127, 127)``, one byte each;
* **weights** at ``w_bits`` b, per output channel c: ``w ≈ s_w[c] · q`` with
  ``q ∈ [-(2^(b-1) - 1), 2^(b-1) - 1]`` for b ≥ 2 (b = 2 is ternary) and ``q ∈ {-1, +1}``
  for b = 1. Stored as b-bit two's complement (b = 1: bit 1 means +1, bit 0 means -1);
* **activations** after a hidden conv or dense layer, at ``out_bits`` a (PACT: ReLU, then a
  clip at α): unsigned ``y_q ∈ [0, 2^a - 1]`` with scale ``α / (2^a - 1)``; pools keep the
  bits and the scale of what they pool;
* **logits**: float32, ``acc · logit_scale[m]``.

Packing: a tensor of n values at b bits is ``ceil(n·b / 8)`` bytes; value i sits at bit
``(i·b) mod 8`` (least significant first) of byte ``(i·b) div 8``, in C (row-major) order of the
tensor (weights ``[F, C, K]`` or ``[M, N]``; activations ``[C, T]`` or ``[F]``). 8-bit tensors
are plain bytes.

Integer arithmetic of one conv or dense layer (output channel c)::

    acc  = bias[c] + Σ q_w · x_q                   (int32; 'same' padding skips the taps
                                                    outside the input, as zeros would)
    prod = acc · mult[c]                           (int64)
    y_q  = clip(sign(prod) · ((|prod| + 2^(r-1)) >> r), 0, 2^a - 1)   with r = rshift[c]

``mult · 2^-rshift`` is the real multiplier ``s_in · s_w[c] / s_out`` (:func:`q31`), ``bias`` is
the folded float bias in accumulator units ``round(b / (s_in · s_w[c]))``. Average pools and
global average pooling round half up: ``(Σ + n div 2) div n``; max pools take the maximum.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from fedhar.models.spec import LayerSpec, ModelSpec

BITS: tuple[int, ...] = (1, 2, 4, 8)
"""Bit-widths of weights and activations."""
INPUT_BITS = 8
"""The sensor input is always signed 8-bit."""
_BIAS_LIMIT = 2**30


def weight_levels(bits: int) -> int:
    """Largest weight magnitude at ``bits``: 1 for 1 bit (±1), ``2^(b-1) - 1`` above."""
    _check_bits(bits)
    return 1 if bits == 1 else 2 ** (bits - 1) - 1


def act_levels(bits: int) -> int:
    """Largest unsigned activation at ``bits``: ``2^b - 1``."""
    _check_bits(bits)
    return 2**bits - 1


def _check_bits(bits: int) -> None:
    if bits not in BITS:
        raise ValueError(f"bit-width must be one of {BITS}, got {bits!r}")


def packed_bytes(n: int, bits: int) -> int:
    """Bytes of ``n`` values packed at ``bits`` bits: ``ceil(n · bits / 8)``."""
    return (n * bits + 7) // 8


def pack(values: np.ndarray, bits: int) -> np.ndarray:
    """Packs unsigned ``values`` (each in ``[0, 2^bits)``, any shape, C order) into uint8 bytes."""
    _check_bits(bits)
    v = np.ascontiguousarray(values).reshape(-1).astype(np.int64)
    if v.size and (v.min() < 0 or v.max() >= 2**bits):
        raise ValueError(f"values must lie in [0, {2**bits - 1}] to pack at {bits} bits")
    if bits == 8:
        return v.astype(np.uint8)
    per = 8 // bits
    padded = np.zeros(packed_bytes(v.size, bits) * per, dtype=np.int64)
    padded[: v.size] = v
    shifts = np.arange(per, dtype=np.int64) * bits
    return (padded.reshape(-1, per) << shifts).sum(axis=1).astype(np.uint8)


def unpack(packed: np.ndarray, bits: int, n: int) -> np.ndarray:
    """The first ``n`` unsigned values (int64) of ``packed`` at ``bits`` bits."""
    _check_bits(bits)
    if packed.size < packed_bytes(n, bits):
        raise ValueError(f"{packed.size} bytes hold fewer than {n} values at {bits} bits")
    b = np.asarray(packed, dtype=np.uint8).astype(np.int64)
    if bits == 8:
        return b[:n]
    per = 8 // bits
    shifts = np.arange(per, dtype=np.int64) * bits
    return ((b[:, None] >> shifts) & (2**bits - 1)).reshape(-1)[:n]


def encode_weights(q: np.ndarray, bits: int) -> np.ndarray:
    """Packs signed weight levels ``q`` (see the module docstring) at ``bits`` bits."""
    q = np.asarray(q, dtype=np.int64)
    top = weight_levels(bits)
    if bits == 1:
        if q.size and not np.all(np.abs(q) == 1):
            raise ValueError("1-bit weights must be -1 or +1")
        return pack((q > 0).astype(np.int64), 1)
    if q.size and np.abs(q).max() > top:
        raise ValueError(f"{bits}-bit weights must lie in [-{top}, {top}]")
    return pack(q & (2**bits - 1), bits)


def decode_weights(packed: np.ndarray, bits: int, n: int) -> np.ndarray:
    """Inverse of :func:`encode_weights`: ``n`` signed levels (int64)."""
    u = unpack(packed, bits, n)
    if bits == 1:
        return 2 * u - 1
    return np.where(u >= 2 ** (bits - 1), u - 2**bits, u)


def q31(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed Q31 multipliers and right shifts with ``mult · 2^-rshift ≈ real``.

    ``|real|`` must be below 2^30; values too small for a 62-bit shift round to 0.
    """
    real = np.asarray(real, dtype=np.float64)
    if np.any(np.abs(real) >= 2.0**30) or not np.all(np.isfinite(real)):
        raise ValueError("requantization multiplier out of range (|m| must be < 2^30)")
    frac, exp = np.frexp(np.abs(real))
    mult = np.rint(frac * 2.0**31)
    over = mult >= 2.0**31
    mult[over] /= 2.0
    exp[over] += 1
    rshift = 31 - exp
    small = rshift > 62
    mult[small] = np.rint(np.abs(real[small]) * 2.0**62)
    rshift[small] = 62
    mult = np.where(real < 0, -mult, mult)
    return mult.astype(np.int32), rshift.astype(np.int32)


# ---------------------------------------------------------------------------------------------
# Folding


def fold_spec(spec: ModelSpec) -> ModelSpec:
    """``spec`` without its BatchNorm layers (each is merged into the conv before it)."""
    layers = tuple(layer for layer in spec.layers if layer.kind != "batchnorm1d")
    for prev, layer in zip(spec.layers, spec.layers[1:], strict=False):
        if layer.kind == "batchnorm1d" and prev.kind != "conv1d":
            raise ValueError(f"batchnorm {layer.name!r} must follow a conv1d, not {prev.kind}")
    return replace(spec, layers=layers)


def fold_state(spec: ModelSpec, state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float32 tensors of :func:`fold_spec` ``(spec)``: for conv → BN (eval statistics),
    ``w' = w · γ/σ`` per output channel and ``b' = (b - μ) · γ/σ + β`` with
    ``σ = sqrt(running_var + eps)``; every other tensor as is."""
    out: dict[str, np.ndarray] = {}
    layers = spec.layers
    for i, layer in enumerate(layers):
        if layer.kind == "batchnorm1d":
            continue
        keys = layer.param_shapes()
        values = {k: np.asarray(state[k], dtype=np.float64) for k in keys}
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if layer.kind == "conv1d" and nxt is not None and nxt.kind == "batchnorm1d":
            p = nxt.name
            g = np.asarray(state[f"{p}.weight"], np.float64)
            beta = np.asarray(state[f"{p}.bias"], np.float64)
            mu = np.asarray(state[f"{p}.running_mean"], np.float64)
            var = np.asarray(state[f"{p}.running_var"], np.float64)
            k = g / np.sqrt(var + nxt.eps)
            values[f"{layer.name}.weight"] = values[f"{layer.name}.weight"] * k[:, None, None]
            values[f"{layer.name}.bias"] = (values[f"{layer.name}.bias"] - mu) * k + beta
        out.update({k: v.astype(np.float32) for k, v in values.items()})
    return out


# ---------------------------------------------------------------------------------------------
# The deployed network


@dataclass(frozen=True)
class QLinear:
    """A conv1d or dense layer of a :class:`QNet`.

    Attributes:
        kind: ``conv1d`` or ``dense``.
        name: the layer's name in the folded spec.
        c_in, c_out: input channels (features) and output channels (units).
        kernel, stride, padding: conv geometry (dense: 1, 1, ``valid``).
        t_in, t_out: input and output lengths (dense: 1, 1).
        w_bits: weight bits; ``weight`` holds ``c_out · c_in · kernel`` values packed.
        in_bits: bits of the input activation (8 and signed for the first layer).
        out_bits: bits of the output activation; 0 for the last layer (float logits).
        w_scale: ``[c_out]`` float32 per-channel weight scales.
        bias: ``[c_out]`` int32, in accumulator units.
        mult, rshift: ``[c_out]`` int32 and int8 requantization (hidden layers; empty for the last).
        logit_scale: ``[c_out]`` float32 ``s_in · s_w`` (last layer; empty otherwise).
        in_scale, out_scale: real value of one input and one output step (out: 0 for the last).
    """

    kind: str
    name: str
    c_in: int
    c_out: int
    kernel: int
    stride: int
    padding: str
    t_in: int
    t_out: int
    w_bits: int
    in_bits: int
    out_bits: int
    weight: np.ndarray
    w_scale: np.ndarray
    bias: np.ndarray
    mult: np.ndarray
    rshift: np.ndarray
    logit_scale: np.ndarray
    in_scale: float
    out_scale: float

    @property
    def n_weights(self) -> int:
        """Number of weight values."""
        return self.c_out * self.c_in * self.kernel

    @property
    def last(self) -> bool:
        """Whether this layer produces the logits."""
        return self.out_bits == 0

    def levels(self) -> np.ndarray:
        """Signed weight levels, shaped ``[c_out, c_in, kernel]`` (conv) or ``[c_out, c_in]``."""
        q = decode_weights(self.weight, self.w_bits, self.n_weights)
        shape = (
            (self.c_out, self.c_in, self.kernel)
            if self.kind == "conv1d"
            else (
                self.c_out,
                self.c_in,
            )
        )
        return q.reshape(shape)

    def model_bytes(self) -> int:
        """Deployed bytes: packed weights, int32 bias, and int32 mult + int8 rshift (hidden)
        or float32 logit scales (last), per output channel."""
        per_channel = 4 + (4 if self.last else 4 + 1)
        return packed_bytes(self.n_weights, self.w_bits) + self.c_out * per_channel


@dataclass(frozen=True)
class QPool:
    """A max or average pool (``kind`` ``max``/``avg``; ``size`` and ``stride`` samples), or
    global average pooling (``kind`` ``gap``: size = stride = t_in, t_out = 1), on ``c`` channels
    of ``bits``-bit activations."""

    kind: str
    name: str
    c: int
    t_in: int
    t_out: int
    size: int
    stride: int
    bits: int


@dataclass(frozen=True)
class QNet:
    """A deployed integer network: int8 input ``[C, T]`` → float logits ``[n_classes]``.

    ``layers`` are in execution order; ``flatten`` and ``relu`` need no layer of their own
    (the layout is already channel-major; ReLU is the requantization clamp).
    """

    spec_name: str
    in_channels: int
    in_length: int
    n_classes: int
    in_scale: float
    layers: tuple[QLinear | QPool, ...]

    def linears(self) -> list[QLinear]:
        """The conv and dense layers."""
        return [layer for layer in self.layers if isinstance(layer, QLinear)]

    def bits(self) -> dict[str, tuple[int, int]]:
        """Layer name → ``(w_bits, out_bits)`` (out_bits 0 for the logits)."""
        return {q.name: (q.w_bits, q.out_bits) for q in self.linears()}

    def model_bytes(self) -> int:
        """Deployed model bytes: every :meth:`QLinear.model_bytes`."""
        return sum(q.model_bytes() for q in self.linears())

    def activation_bytes(self) -> list[int]:
        """Packed bytes of every activation tensor, from the int8 input to the last hidden
        output (one entry per layer input, then the logits' input)."""
        sizes = [self.in_channels * self.in_length]
        for layer in self.layers:
            if isinstance(layer, QLinear):
                if not layer.last:
                    sizes.append(packed_bytes(layer.c_out * layer.t_out, layer.out_bits))
            else:
                sizes.append(packed_bytes(layer.c * layer.t_out, layer.bits))
        return sizes

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Int8 input ``[N, C, T]`` of float windows ``x`` (normalized as in training)."""
        return np.clip(np.rint(np.asarray(x, np.float64) / self.in_scale), -127, 127).astype(
            np.int8
        )


LayerBits = Mapping[str, tuple[int, int]]
"""Layer name → ``(w_bits, a_bits)`` for every conv and dense layer of a folded spec; the last
layer's ``a_bits`` is ignored (logits are float)."""


def _weight_levels_of(w: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.asarray(w, np.float64).reshape(w.shape[0], -1)
    if bits == 1:
        scale = np.abs(rows).mean(axis=1)
        scale = np.where(scale > 0, scale, 1.0)
        q = np.where(rows >= 0, 1, -1)
    else:
        top = weight_levels(bits)
        scale = np.abs(rows).max(axis=1) / top
        scale = np.where(scale > 0, scale, 1.0)
        q = np.clip(np.rint(rows / scale[:, None]), -top, top)
    return q.astype(np.int64).reshape(w.shape), scale.astype(np.float32)


def quantize_weights(w: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric levels ``q`` (int64, ``w``'s shape) and scales ``[F]``:
    ``s = max|w_c| / (2^(b-1) - 1)`` and ``q = clip(round(w / s))`` for b ≥ 2; for b = 1,
    ``s = mean|w_c|`` and ``q = sign(w)`` (0 counts as +1)."""
    _check_bits(bits)
    return _weight_levels_of(w, bits)


POOL_KINDS = ("maxpool1d", "avgpool1d", "gap1d")
"""Spec layer kinds that become a :class:`QPool`."""


def pool_of(layer: LayerSpec, bits: int) -> QPool:
    """The :class:`QPool` of a pooling spec layer, on activations of ``bits`` bits."""
    c, t = layer.in_shape
    if layer.kind == "gap1d":
        return QPool("gap", layer.name, c, t, 1, t, t, bits)
    return QPool(
        layer.kind[:3], layer.name, c, t, layer.out_shape[1], layer.kernel, layer.stride, bits
    )


def _linear_layers(spec: ModelSpec) -> list[LayerSpec]:
    return [layer for layer in spec.layers if layer.kind in ("conv1d", "dense")]


def quantize(
    spec: ModelSpec,
    state: Mapping[str, np.ndarray],
    bits: LayerBits,
    act_scales: Mapping[str, float],
    in_scale: float,
) -> QNet:
    """The :class:`QNet` of a folded model.

    Args:
        spec: a folded spec (:func:`fold_spec`): every conv and dense but the last followed by
            a ReLU; pools, GAP and flatten anywhere.
        state: its float32 tensors (:func:`fold_state`).
        bits: ``(w_bits, a_bits)`` per conv/dense layer name.
        act_scales: layer name → the real value of one output step of that layer's activation
            (PACT: ``α / (2^a - 1)``), for every conv/dense layer but the last.
        in_scale: real value of one input step.

    Raises:
        ValueError: a BatchNorm left in ``spec``, a hidden layer without ReLU, a missing or
            invalid bit-width or scale.
    """
    lin = _linear_layers(spec)
    if not lin:
        raise ValueError(f"model {spec.name!r} has no conv or dense layer")
    out: list[QLinear | QPool] = []
    s_in, b_in = float(in_scale), INPUT_BITS
    for i, layer in enumerate(spec.layers):
        nxt = spec.layers[i + 1] if i + 1 < len(spec.layers) else None
        if layer.kind == "batchnorm1d":
            raise ValueError(f"fold the BatchNorm {layer.name!r} first (fold_spec, fold_state)")
        if layer.kind in ("conv1d", "dense"):
            last = layer is lin[-1]
            if not last and (nxt is None or nxt.kind != "relu"):
                raise ValueError(f"hidden layer {layer.name!r} must be followed by a ReLU")
            if layer.name not in bits:
                raise ValueError(f"no bit-widths for layer {layer.name!r}")
            w_bits, a_bits = bits[layer.name]
            _check_bits(w_bits)
            w = np.asarray(state[f"{layer.name}.weight"])
            b = np.asarray(state[f"{layer.name}.bias"], np.float64)
            q, s_w = quantize_weights(w, w_bits)
            step = s_in * s_w.astype(np.float64)
            bias = np.clip(np.rint(b / step), -_BIAS_LIMIT, _BIAS_LIMIT).astype(np.int32)
            conv = layer.kind == "conv1d"
            c_in = layer.in_shape[0]
            t_in = layer.in_shape[1] if conv else 1
            t_out = layer.out_shape[1] if conv else 1
            empty_i = np.zeros(0, np.int32)
            if last:
                mult, rshift = empty_i, np.zeros(0, np.int8)
                logit_scale = step.astype(np.float32)
                out_bits, s_out = 0, 0.0
            else:
                _check_bits(a_bits)
                s_out = float(act_scales[layer.name])
                if not s_out > 0:
                    raise ValueError(f"activation scale of {layer.name!r} must be > 0")
                mult, r = q31(step / s_out)
                rshift = r.astype(np.int8)
                logit_scale = np.zeros(0, np.float32)
                out_bits = a_bits
            out.append(
                QLinear(
                    layer.kind,
                    layer.name,
                    c_in,
                    layer.out_channels,
                    layer.kernel if conv else 1,
                    layer.stride if conv else 1,
                    layer.padding if conv else "valid",
                    t_in,
                    t_out,
                    w_bits,
                    b_in,
                    out_bits,
                    encode_weights(q, w_bits),
                    s_w,
                    bias,
                    mult,
                    rshift,
                    logit_scale,
                    s_in,
                    s_out,
                )
            )
            s_in, b_in = s_out, out_bits
        elif layer.kind in POOL_KINDS:
            out.append(pool_of(layer, b_in))
    return QNet(
        spec.name, spec.input_channels, spec.input_length, spec.n_classes, in_scale, tuple(out)
    )


def dequantize(net: QNet) -> dict[str, np.ndarray]:
    """Float32 tensors of the folded spec that ``net`` deploys: ``w = s_w · q`` and
    ``b = bias · s_in · s_w`` (what a client trains from)."""
    out: dict[str, np.ndarray] = {}
    for q in net.linears():
        levels = q.levels().astype(np.float64)
        s_w = q.w_scale.astype(np.float64)
        shape = (-1,) + (1,) * (levels.ndim - 1)
        out[f"{q.name}.weight"] = (levels * s_w.reshape(shape)).astype(np.float32)
        out[f"{q.name}.bias"] = (q.bias.astype(np.float64) * q.in_scale * s_w).astype(np.float32)
    return out


# ---------------------------------------------------------------------------------------------
# Integer reference (numpy, bit-exact with the C kernels)


def _requant(acc: np.ndarray, mult: np.ndarray, rshift: np.ndarray, top: int) -> np.ndarray:
    prod = acc.astype(np.int64) * mult.astype(np.int64)
    r = rshift.astype(np.int64)
    half = np.left_shift(np.int64(1), r - 1)
    mag = (np.abs(prod) + half) >> r
    return np.clip(np.where(prod < 0, -mag, mag), 0, top)


def _conv_acc(q: QLinear, x: np.ndarray) -> np.ndarray:
    """``[N, F, To]`` int64 accumulators of conv ``q`` on ``x [N, C, T]`` (bias included)."""
    w = q.levels()
    n, c, t = x.shape
    k = q.kernel
    pad = (k - 1) // 2 if q.padding == "same" else 0
    xp = np.zeros((n, c, t + k - 1 if q.padding == "same" else t), np.int64)
    xp[:, :, pad : pad + t] = x
    starts = np.arange(q.t_out) * q.stride
    cols = xp[:, :, starts[:, None] + np.arange(k)[None, :]]  # [N, C, To, K]
    acc = np.einsum("nctk,fck->nft", cols, w)
    return acc + q.bias.astype(np.int64)[None, :, None]


def reference_logits(net: QNet, x_q: np.ndarray) -> np.ndarray:
    """Float64 logits ``[N, n_classes]`` of int8 inputs ``x_q [N, C, T]``, in the exact integer
    arithmetic of the module docstring (the C kernels must match them to the last bit of
    their float32 rounding)."""
    h = np.asarray(x_q).astype(np.int64)
    for layer in net.layers:
        if isinstance(layer, QPool):
            if h.ndim == 2:
                h = h[:, :, None]
            starts = np.arange(layer.t_out) * layer.stride
            win = h[:, :, starts[:, None] + np.arange(layer.size)[None, :]]
            if layer.kind == "max":
                h = win.max(axis=3)
            else:
                h = (win.sum(axis=3) + layer.size // 2) // layer.size
            if layer.kind == "gap":
                h = h[:, :, 0]
            continue
        if layer.kind == "conv1d":
            acc = _conv_acc(layer, h)
            mshape: tuple[int, ...] = (1, -1, 1)
        else:
            acc = h.reshape(h.shape[0], -1) @ layer.levels().T + layer.bias.astype(np.int64)
            mshape = (1, -1)
        if layer.last:
            scale = layer.logit_scale.astype(np.float64).reshape(mshape)
            return (acc * scale).reshape(acc.shape[0], -1)
        h = _requant(
            acc,
            layer.mult.reshape(mshape),
            layer.rshift.reshape(mshape),
            act_levels(layer.out_bits),
        )
    raise ValueError("the network has no last layer")


# ---------------------------------------------------------------------------------------------
# Dynamic-range quantization (contoli2023): int8 weights, float activations

FLOAT_BITS = 32
"""The ``bits`` of a :class:`QPool` inside a :class:`DynamicNet`: float32 activations."""
DYNAMIC_FLOOR = 1e-30
"""A tensor whose largest magnitude is at most this quantizes to zeros (no scale is taken)."""


@dataclass(frozen=True)
class DynamicLinear:
    """A conv1d or dense layer of a :class:`DynamicNet`.

    At run time the layer's float input tensor (one sample, all of ``[C, T]`` or ``[F]``) gets
    the scale ``s = max|x| / 127`` and is quantized to int8 (:func:`dynamic_input`); then
    ``y[c] = float32(acc) · (s · w_scale[c]) + bias[c]`` with the int32 ``acc = Σ q_w · x_q``
    ('same' padding skips the taps outside the input), and ReLU when ``relu``.

    Attributes:
        kind, name, c_in, c_out, kernel, stride, padding, t_in, t_out: as in :class:`QLinear`.
        relu: whether a ReLU follows (every layer but the last).
        weight: ``[c_out · c_in · kernel]`` int8 levels in ``[-127, 127]``, C order of
            ``[c_out, c_in, kernel]`` (conv) or ``[c_out, c_in]`` (dense).
        w_scale: ``[c_out]`` float32 per-channel weight scales (``max|w_c| / 127``).
        bias: ``[c_out]`` float32 folded biases.
    """

    kind: str
    name: str
    c_in: int
    c_out: int
    kernel: int
    stride: int
    padding: str
    t_in: int
    t_out: int
    relu: bool
    weight: np.ndarray
    w_scale: np.ndarray
    bias: np.ndarray

    @property
    def n_weights(self) -> int:
        """Number of weight values."""
        return self.c_out * self.c_in * self.kernel

    def model_bytes(self) -> int:
        """Deployed bytes: int8 weights, float32 weight scale and float32 bias per channel."""
        return self.n_weights + 8 * self.c_out


@dataclass(frozen=True)
class DynamicNet:
    """A dynamic-range network: float32 input ``[C, T]`` → float32 logits ``[n_classes]``.

    ``layers`` are in execution order; pools are :class:`QPool` with ``bits`` =
    :data:`FLOAT_BITS` (max, average and global average pooling on floats).
    """

    spec_name: str
    in_channels: int
    in_length: int
    n_classes: int
    layers: tuple[DynamicLinear | QPool, ...]

    def linears(self) -> list[DynamicLinear]:
        """The conv and dense layers."""
        return [layer for layer in self.layers if isinstance(layer, DynamicLinear)]

    def model_bytes(self) -> int:
        """Deployed model bytes: every :meth:`DynamicLinear.model_bytes`."""
        return sum(d.model_bytes() for d in self.linears())


def quantize_dynamic(spec: ModelSpec, state: Mapping[str, np.ndarray]) -> DynamicNet:
    """The :class:`DynamicNet` of a folded model (:func:`fold_spec`, :func:`fold_state`):
    per-channel symmetric int8 weights (:func:`quantize_weights` at 8 bits), float32 biases.

    Raises:
        ValueError: a BatchNorm left in ``spec``, a hidden layer without ReLU, no conv/dense.
    """
    lin = _linear_layers(spec)
    if not lin:
        raise ValueError(f"model {spec.name!r} has no conv or dense layer")
    out: list[DynamicLinear | QPool] = []
    for i, layer in enumerate(spec.layers):
        nxt = spec.layers[i + 1] if i + 1 < len(spec.layers) else None
        if layer.kind == "batchnorm1d":
            raise ValueError(f"fold the BatchNorm {layer.name!r} first (fold_spec, fold_state)")
        if layer.kind in ("conv1d", "dense"):
            last = layer is lin[-1]
            if not last and (nxt is None or nxt.kind != "relu"):
                raise ValueError(f"hidden layer {layer.name!r} must be followed by a ReLU")
            q, s_w = quantize_weights(np.asarray(state[f"{layer.name}.weight"]), 8)
            conv = layer.kind == "conv1d"
            out.append(
                DynamicLinear(
                    layer.kind,
                    layer.name,
                    layer.in_shape[0],
                    layer.out_channels,
                    layer.kernel if conv else 1,
                    layer.stride if conv else 1,
                    layer.padding if conv else "valid",
                    layer.in_shape[1] if conv else 1,
                    layer.out_shape[1] if conv else 1,
                    not last,
                    q.reshape(-1).astype(np.int8),
                    s_w,
                    np.asarray(state[f"{layer.name}.bias"], np.float32).copy(),
                )
            )
        elif layer.kind in POOL_KINDS:
            out.append(pool_of(layer, FLOAT_BITS))
    return DynamicNet(spec.name, spec.input_channels, spec.input_length, spec.n_classes, tuple(out))


def dynamic_input(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run-time int8 quantization of float32 tensors ``x [N, ...]``, one scale per sample, in
    the float32 steps of the C kernel: ``m = max|x|``; ``inv = 127 / m`` and ``s = m / 127``
    (both 0 when ``m`` ≤ :data:`DYNAMIC_FLOOR`); ``v = x · inv``;
    ``q = clip(trunc(v ± 0.5), -127, 127)`` (round half away from zero).

    Returns:
        ``(q int64 with x's shape, s float32 [N])``.
    """
    f32 = np.float32
    flat = np.asarray(x, f32).reshape(len(x), -1)
    m = np.abs(flat).max(axis=1) if flat.shape[1] else np.zeros(len(x), f32)
    live = m > f32(DYNAMIC_FLOOR)
    safe = np.where(live, m, f32(1))
    inv = np.where(live, f32(127) / safe, f32(0)).astype(f32)
    s = np.where(live, m / f32(127), f32(0)).astype(f32)
    v = flat * inv[:, None]
    r = v + np.where(v < 0, f32(-0.5), f32(0.5))
    q = np.clip(np.trunc(r), -127, 127).astype(np.int64)
    return q.reshape(np.shape(x)), s


def _dynamic_sum(d: DynamicLinear, q: np.ndarray) -> np.ndarray:
    """Int64 sums ``Σ q_w · x_q``: ``[N, F, To]`` (conv, ``q [N, C, T]``) or ``[N, F]``."""
    w = d.weight.astype(np.int64)
    if d.kind == "dense":
        return q.reshape(len(q), -1) @ w.reshape(d.c_out, d.c_in).T
    k = d.kernel
    pad = (k - 1) // 2 if d.padding == "same" else 0
    xp = np.zeros((len(q), d.c_in, d.t_in + 2 * pad + k), np.int64)
    xp[:, :, pad : pad + d.t_in] = q
    taps = (np.arange(d.t_out) * d.stride)[:, None] + np.arange(k)[None, :]
    return np.einsum("nctk,fck->nft", xp[:, :, taps], w.reshape(d.c_out, d.c_in, k))


def _float_pool(p: QPool, h: np.ndarray) -> np.ndarray:
    """Float32 max/average/global average pool of ``h [N, C, T]``, summing left to right."""
    win = h[:, :, (np.arange(p.t_out) * p.stride)[:, None] + np.arange(p.size)[None, :]]
    if p.kind == "max":
        out = win.max(axis=3)
    else:
        acc = win[..., 0]
        for j in range(1, p.size):
            acc = acc + win[..., j]
        out = acc / np.float32(p.size)
    return out[:, :, 0] if p.kind == "gap" else out


def reference_dynamic_logits(net: DynamicNet, x: np.ndarray) -> np.ndarray:
    """Float32 logits ``[N, n_classes]`` of float32 windows ``x [N, C, T]``, in the float32
    arithmetic of the C kernel (``fh_dnet_forward``): bit-exact on a build without fused
    multiply-add contraction."""
    h = np.asarray(x, np.float32)
    for layer in net.layers:
        if isinstance(layer, QPool):
            h = _float_pool(layer, h if h.ndim == 3 else h[:, :, None])
            continue
        q, s = dynamic_input(h)
        acc = _dynamic_sum(layer, q).astype(np.float32)
        step = (s[:, None] * layer.w_scale.astype(np.float32)[None, :]).astype(np.float32)
        if acc.ndim == 3:
            step = step[:, :, None]
        y = acc * step + layer.bias.astype(np.float32).reshape((1, -1) + (1,) * (acc.ndim - 2))
        h = np.where(y > 0, y, np.float32(0)) if layer.relu else y
    return h.reshape(len(h), -1).astype(np.float32)
