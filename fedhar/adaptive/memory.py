"""Deployed bytes of int8 static and variable-width networks (Daghero et al. 2022 Table 3).

Layout counted (that of :mod:`fedhar.adaptive.quant` and ``fedhar/ondevice/csrc/fh_slim.h``):

- shared by all widths: int8 weights of every conv and dense (full tensors), and the float32
  input scale (4 bytes);
- private to each deployed width: per conv output channel and per hidden dense feature an
  int32 bias, an int32 multiplier and an int8 shift (9 bytes) — the folded switchable BN; per
  class an int32 bias and a float32 logit scale (8 bytes).

A static model is the same network deployed at width 1.0 only.
"""

from __future__ import annotations

from collections.abc import Sequence

from fedhar.adaptive.slim import SlimNet

CHANNEL_BYTES = 9
CLASS_BYTES = 8
INPUT_SCALE_BYTES = 4


def weight_bytes(net: SlimNet) -> int:
    """Bytes of the shared int8 weights (one byte per weight of the full model)."""
    names = [b.conv for b in net.blocks] + [h.name for h in net.heads]
    return sum(int(net.layers[n].weight.numel()) for n in names)


def private_bytes(net: SlimNet, width: float) -> int:
    """Bytes private to ``width``: its folded switchable-BN / requantization data."""
    total = sum(CHANNEL_BYTES * c_out for _, c_out in net.conv_channels(width))
    for h, (_, n_out) in zip(net.heads, net.head_features(width), strict=True):
        total += (CLASS_BYTES if h.last else CHANNEL_BYTES) * n_out
    return total


def static_bytes(net: SlimNet) -> int:
    """Deployed bytes of ``net`` as a static model (full width only)."""
    return weight_bytes(net) + private_bytes(net, 1.0) + INPUT_SCALE_BYTES


def adaptive_bytes(net: SlimNet, deployed_widths: Sequence[float]) -> int:
    """Deployed bytes of ``net`` supporting ``deployed_widths`` (which must include 1.0)."""
    if 1.0 not in deployed_widths:
        raise ValueError(f"deployed widths must include 1.0, got {list(deployed_widths)}")
    return (
        weight_bytes(net)
        + sum(private_bytes(net, w) for w in set(deployed_widths))
        + INPUT_SCALE_BYTES
    )


def bn_overhead_fraction(net: SlimNet, deployed_widths: Sequence[float]) -> float:
    """Extra bytes of the reduced widths' switchable BN, relative to the static M_l."""
    base = static_bytes(net)
    return (adaptive_bytes(net, deployed_widths) - base) / base
