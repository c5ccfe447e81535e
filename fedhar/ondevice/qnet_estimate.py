"""Analytic operations and memory of the compressed-inference kernels (``csrc/fh_qnet.c``),
from a network's shapes and bit-widths alone: pure Python, no library call.

:func:`estimate_qnet` gives, for a :class:`~fedhar.models.quantized.QNet` or a
:class:`~fedhar.models.quantized.DynamicNet`, the operations one sample costs (exactly what the
C counters add per sample) and the memory by part (exactly what ``fh_qnet_get_memory``
reports: :data:`fedhar.ondevice.qnet_infer.MEMORY_PARTS`). The counting rules are stated at the
top of ``fh_qnet.c``; this module restates them layer by layer. Units: bytes; counts per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedhar.models.quantized import DynamicLinear, DynamicNet, QLinear, QNet, QPool, packed_bytes
from fedhar.ondevice.estimator import ZERO, OpCounts

__all__ = ["estimate_qnet", "layer_ops"]

_POPC = 12
"""Steps of one SWAR popcount of a 32-bit word."""


@dataclass(frozen=True)
class _Geom:
    """Loop geometry of a conv/dense layer (a dense layer is a 'valid' conv of one channel)."""

    c_in: int
    t_in: int
    k: int
    stride: int
    pad: int
    t_out: int
    c_out: int

    @property
    def row(self) -> int:
        return self.c_in * self.k

    def window_taps(self) -> int:
        """Σ over output steps of the in-bounds taps of one (filter, channel) pair."""
        start = np.arange(self.t_out, dtype=np.int64) * self.stride - self.pad
        lo = np.maximum(-start, 0)
        end = np.minimum(start + self.k, self.t_in)
        return int((end - (start + lo)).sum())


def _geom(q: QLinear | DynamicLinear) -> _Geom:
    if q.kind == "dense":
        return _Geom(1, q.c_in, q.c_in, 1, 0, 1, q.c_out)
    pad = (q.kernel - 1) // 2 if q.padding == "same" else 0
    return _Geom(q.c_in, q.t_in, q.kernel, q.stride, pad, q.t_out, q.c_out)


def _linear_ops(q: QLinear) -> OpCounts:
    """One sample through a conv/dense layer of a QNet (not binary)."""
    g = _geom(q)
    n_in, outs, n_w = g.c_in * g.t_in, g.c_out * g.t_out, g.row * g.c_out
    taps = g.window_taps() * g.c_in * g.c_out
    ops = OpCounts(macs=taps, bytes_moved=2 * taps)
    if q.in_bits < 8:
        ops += OpCounts(bitops=2 * n_in, bytes_moved=2 * n_in)
    if q.w_bits < 8:
        ops += OpCounts(bitops=4 * n_w, bytes_moved=2 * n_w)
    if q.last:
        return ops + OpCounts(adds=outs, muls=outs, bytes_moved=8 * g.c_out + 4 * outs)
    pack = 2 * outs if q.out_bits < 8 else 0
    return ops + OpCounts(
        adds=2 * outs,
        muls=outs,
        cmps=2 * outs,
        bitops=outs + pack,
        bytes_moved=9 * g.c_out + packed_bytes(outs, q.out_bits),
    )


def _binary_ops(q: QLinear) -> OpCounts:
    """One sample through a binary conv/dense layer (AND and popcount)."""
    g = _geom(q)
    nw = (g.row + 31) // 32
    tail = g.row - 32 * (nw - 1)
    outs = g.c_out * g.t_out
    window_bits = g.window_taps() * g.c_in
    sh = (np.arange(g.c_out, dtype=np.int64) * g.row) % 8
    full = (sh + 32 + 7) // 8
    last_word = (sh + tail + 7) // 8
    gathered = int((full * (nw - 1) + last_word).sum())
    per_step = OpCounts(
        bitops=_POPC * nw + gathered * 2 - g.c_out * nw,
        adds=nw,
        bytes_moved=8 * nw + gathered,
    )
    ops = per_step.scaled(g.t_out) + OpCounts(
        bitops=4 * window_bits + (1 + _POPC) * nw * outs + outs,
        adds=nw * outs + outs,
        bytes_moved=9 * window_bits + 4 * nw * outs,
    )
    if q.last:
        return ops + OpCounts(adds=outs, muls=outs, bytes_moved=12 * outs)
    store = (
        OpCounts(bitops=5 * outs, bytes_moved=2 * outs)
        if q.out_bits < 8
        else OpCounts(bytes_moved=outs)
    )
    return (
        ops
        + store
        + OpCounts(adds=2 * outs, muls=outs, cmps=2 * outs, bitops=outs, bytes_moved=9 * outs)
    )


def _pool_ops(p: QPool, signed_in: bool) -> OpCounts:
    """One sample through an integer pool (bits < 8: unpacked first, packed after)."""
    n_in, outs, k = p.c * p.t_in, p.c * p.t_out, p.size
    ops = OpCounts(bytes_moved=outs * k + packed_bytes(outs, p.bits))
    if p.bits < 8:
        ops += OpCounts(bitops=2 * n_in + 2 * outs, bytes_moved=2 * n_in)
    if p.kind == "max":
        return ops + OpCounts(cmps=outs * (k - 1))
    ops += OpCounts(adds=outs * k, divs=outs)
    return ops + (OpCounts(cmps=outs, adds=outs) if signed_in else ZERO)


def _dynamic_ops(d: DynamicLinear) -> OpCounts:
    """One sample through a dynamic-range conv/dense layer."""
    g = _geom(d)
    n_in, outs = g.c_in * g.t_in, g.c_out * g.t_out
    taps = g.window_taps() * g.c_in * g.c_out
    return OpCounts(
        macs=taps,
        cmps=4 * n_in + 1 + (outs if d.relu else 0),
        divs=2,
        muls=n_in + g.c_out + outs,
        adds=n_in + outs,
        bytes_moved=9 * n_in + 2 * taps + 8 * g.c_out + 4 * outs,
    )


def _float_pool_ops(p: QPool) -> OpCounts:
    outs, k = p.c * p.t_out, p.size
    ops = OpCounts(bytes_moved=4 * (outs * k + outs))
    if p.kind == "max":
        return ops + OpCounts(cmps=outs * (k - 1))
    return ops + OpCounts(adds=outs * (k - 1), divs=outs)


def layer_ops(net: QNet | DynamicNet) -> list[OpCounts]:
    """Operations of one sample, per layer of ``net`` (in execution order)."""
    out: list[OpCounts] = []
    signed_in = True
    for layer in net.layers:
        if isinstance(layer, DynamicLinear):
            out.append(_dynamic_ops(layer))
        elif isinstance(layer, QLinear):
            binary = layer.w_bits == 1 and layer.in_bits == 1
            out.append(_binary_ops(layer) if binary else _linear_ops(layer))
            signed_in = False
        elif isinstance(net, DynamicNet):
            out.append(_float_pool_ops(layer))
        else:
            out.append(_pool_ops(layer, signed_in))
    return out


def _memory(net: QNet | DynamicNet) -> dict[str, int]:
    """Bytes by part, as ``fh_qnet_get_memory`` computes them."""
    mem = dict.fromkeys(("ping", "pong", "unpacked_input", "unpacked_weights", "bit_columns"), 0)
    buffers = ("ping", "pong")
    last = len(net.layers) - 1
    for i, layer in enumerate(net.layers):
        if isinstance(layer, QPool):
            n_in, n_out = layer.c * layer.t_in, layer.c * layer.t_out
            bits = layer.bits
        else:
            n_in, n_out = layer.c_in * layer.t_in, layer.c_out * layer.t_out
            bits = 32 if isinstance(layer, DynamicLinear) else layer.out_bits
        if isinstance(layer, DynamicLinear):
            mem["unpacked_input"] = max(mem["unpacked_input"], n_in)
        elif isinstance(layer, QLinear):
            row = layer.c_in * layer.kernel
            if layer.w_bits == 1 and layer.in_bits == 1:
                mem["bit_columns"] = max(mem["bit_columns"], 4 * ((row + 31) // 32))
            else:
                if layer.in_bits < 8:
                    mem["unpacked_input"] = max(mem["unpacked_input"], n_in)
                if layer.w_bits < 8:
                    mem["unpacked_weights"] = max(mem["unpacked_weights"], row)
        elif bits < 8:
            mem["unpacked_input"] = max(mem["unpacked_input"], n_in)
        if i != last:
            key = buffers[i % 2]
            mem[key] = max(mem[key], 4 * n_out if bits == 32 else packed_bytes(n_out, bits))
    return {"model": net.model_bytes(), **mem, "buffer": sum(mem.values())}


def estimate_qnet(net: QNet | DynamicNet) -> tuple[OpCounts, dict[str, int]]:
    """Operations of one sample and memory bytes by part of ``net`` on the fh_qnet kernels.

    Returns:
        ``(ops, memory)``: ``ops`` equal the C counters of a batch divided by its size;
        ``memory`` has the keys of :data:`fedhar.ondevice.qnet_infer.MEMORY_PARTS` (``model``:
        bytes of the tensors the kernels read; ``buffer``: the scratch bytes, the sum of the
        other parts) and equals what the C library reports, byte for byte.
    """
    total = ZERO
    for ops in layer_ops(net):
        total += ops
    return total, _memory(net)
