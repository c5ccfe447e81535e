"""Deployable float32 view of a :class:`~fedhar.adaptive.slim.SlimNet` at one width.

The exported layers hold the *full* weight tensors (numpy views of the shared PyTorch
parameters, never copies) plus the active sizes at that width; the C kernels read the first
rows/columns with the full tensors' strides. Each width's switchable BatchNorm is folded into a
per-channel affine ``y = scale · Σ(w·x) + shift`` (the conv bias folded into ``shift``), so the
private per-width data is ``2 · C'`` floats per conv layer.
"""

from __future__ import annotations

import numpy as np
import torch

from fedhar.adaptive.slim import SlimNet
from fedhar.ondevice.slim_format import ConvF32, DenseF32, SlimF32


def shared_array(param: torch.Tensor) -> np.ndarray:
    """A numpy view (no copy) of a contiguous float32 CPU parameter's storage."""
    arr = param.detach().numpy()
    if not arr.flags.c_contiguous or arr.dtype != np.float32:
        raise ValueError("parameters must be contiguous float32 CPU tensors")
    return arr


def folded_bn(net: SlimNet, block_index: int, width: float) -> tuple[np.ndarray, np.ndarray]:
    """``(scale, shift)`` ``[C']`` of conv block ``block_index``'s BN at ``width`` with the conv
    bias folded in: ``bn(conv + b) = scale · conv + shift``."""
    b = net.blocks[block_index]
    bn = net.layers[b.bn].bns[net.widths.index(width)]
    c_out = bn.num_features
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - scale * bn.running_mean + scale * net.layers[b.conv].bias[:c_out]
    return scale.numpy().astype(np.float32), shift.numpy().astype(np.float32)


def export_f32(net: SlimNet, width: float) -> SlimF32:
    """The float32 deployable view of ``net`` at ``width`` (eval-mode BN statistics)."""
    if width not in net.widths:
        raise ValueError(f"width {width} is not one of the supported widths {net.widths}")
    convs = []
    for i, (b, (c_in, c_out)) in enumerate(zip(net.blocks, net.conv_channels(width), strict=True)):
        scale, shift = folded_bn(net, i, width)
        weight = shared_array(net.layers[b.conv].weight)
        convs.append(ConvF32(weight, c_in, c_out, b.pool, scale, shift))
    denses = []
    for h, (n_in, n_out) in zip(net.heads, net.head_features(width), strict=True):
        dense = net.layers[h.name]
        denses.append(
            DenseF32(shared_array(dense.weight), shared_array(dense.bias), n_in, n_out, h.relu)
        )
    return SlimF32(
        width, net.spec.input_channels, net.spec.input_length, tuple(convs), tuple(denses)
    )
