"""Int8 deployable view of a :class:`~fedhar.adaptive.slim.SlimNet`, and its fake-quant reference.

Weights are quantized once, per output channel and symmetric (``w ≈ s_w[c] · w_q``,
``w_q ∈ [-127, 127]``), over the full tensors: every width reads slices of the same int8
tensors. Activations are per-tensor symmetric with a scale calibrated per width (post-ReLU
maxima over calibration windows). What is private to a width is its per-channel requantization
data: the int32 bias (conv bias and switchable-BN shift, in accumulator units), and a signed
Q31 multiplier and right shift (BN scale folded in). Layouts match
``fedhar/ondevice/csrc/fh_slim.h``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fedhar.adaptive.export import folded_bn
from fedhar.adaptive.slim import SlimNet
from fedhar.models.quantized import q31
from fedhar.ondevice.slim_format import ConvS8, DenseS8, SlimS8

INT32_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class SharedInt8:
    """Int8 weights shared by every width: layer name → ``(w_q, s_w [C_out_full])``."""

    weights: dict[str, tuple[np.ndarray, np.ndarray]]


def quantize_weights(net: SlimNet) -> SharedInt8:
    """Per-output-channel symmetric int8 quantization of every conv and dense weight."""
    out = {}
    for name in [b.conv for b in net.blocks] + [h.name for h in net.heads]:
        w = net.layers[name].weight.detach().numpy().astype(np.float64)
        flat = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        scale = np.where(flat > 0, flat / 127.0, 1.0)
        shape = (-1,) + (1,) * (w.ndim - 1)
        w_q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
        out[name] = (np.ascontiguousarray(w_q), scale)
    return SharedInt8(out)


def _act_scale(t: torch.Tensor) -> float:
    m = float(t.abs().max()) if t.numel() else 0.0
    return m / 127.0 if m > 0 else 1.0 / 127.0


@torch.no_grad()
def quantize(net: SlimNet, width: float, calib_x: np.ndarray, shared: SharedInt8) -> SlimS8:
    """The int8 view of ``net`` at ``width``, activation scales calibrated on ``calib_x [N, C,
    T]`` (float32, normalized like the training data)."""
    if width not in net.widths:
        raise ValueError(f"width {width} is not one of the supported widths {net.widths}")
    net.eval()
    x = torch.from_numpy(np.ascontiguousarray(calib_x, dtype=np.float32))
    taps: list[torch.Tensor] = []
    net(x, width, taps)
    s_in = _act_scale(x)
    in_scale = s_in
    convs = []
    for i, (b, (c_in, c_out)) in enumerate(zip(net.blocks, net.conv_channels(width), strict=True)):
        w_q, s_w_full = shared.weights[b.conv]
        s_w = s_w_full[:c_out]
        scale, shift = folded_bn(net, i, width)
        s_out = _act_scale(taps[i])
        step = scale.astype(np.float64) * s_in * s_w
        safe = np.where(np.abs(step) > 1e-30, step, 1e-30)
        bias = np.clip(np.rint(shift / safe), -(2**30), 2**30).astype(np.int32)
        mult, rshift = q31(step / s_out)
        convs.append(ConvS8(w_q, c_in, c_out, b.pool, bias, mult, rshift, s_out))
        s_in = s_out
    denses = []
    hidden_taps = taps[len(net.blocks) :]
    for j, (h, (n_in, n_out)) in enumerate(zip(net.heads, net.head_features(width), strict=True)):
        w_q, s_w_full = shared.weights[h.name]
        s_w = s_w_full[:n_out]
        step = s_in * s_w
        b_real = net.layers[h.name].bias[:n_out].numpy().astype(np.float64)
        bias = np.clip(np.rint(b_real / step), -(2**30), 2**30).astype(np.int32)
        empty_i = np.zeros(0, np.int32)
        if h.last:
            denses.append(
                DenseS8(
                    w_q, n_in, n_out, False, bias, empty_i, empty_i, step.astype(np.float32), 1.0
                )
            )
        else:
            s_out = _act_scale(hidden_taps[j])
            mult, rshift = q31(step / s_out)
            denses.append(
                DenseS8(w_q, n_in, n_out, True, bias, mult, rshift, np.zeros(0, np.float32), s_out)
            )
            s_in = s_out
    return SlimS8(
        width, net.spec.input_channels, net.spec.input_length, in_scale, tuple(convs), tuple(denses)
    )


@torch.no_grad()
def fake_quant_logits(net: SlimNet, q: SlimS8, shared: SharedInt8, x: np.ndarray) -> np.ndarray:
    """Float reference of the int8 network: quantize-dequantize weights and activations with
    ``q``'s scales, computing in float32 with the float BN and biases. Logits ``[N, K]``."""
    net.eval()
    width = q.width

    def fq(t: torch.Tensor, s: float, lo: int) -> torch.Tensor:
        return torch.clamp(torch.round(t / s), lo, 127) * s

    h = fq(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), q.in_scale, -128)
    for i, (b, cq) in enumerate(zip(net.blocks, q.convs, strict=True)):
        w_q, s_w = shared.weights[b.conv]
        w = torch.from_numpy(
            (w_q[: cq.c_out, : cq.c_in] * s_w[: cq.c_out, None, None]).astype(np.float32)
        )
        scale, shift = (torch.from_numpy(a) for a in folded_bn(net, i, width))
        h = F.conv1d(h, w, padding="same") * scale[:, None] + shift[:, None]
        h = fq(torch.relu(h), cq.out_scale, 0)
        if b.pool > 1:
            h = F.max_pool1d(h, b.pool, b.pool)
    h = fq(h.mean(dim=2), q.convs[-1].out_scale, 0)
    for hd, dq in zip(net.heads, q.denses, strict=True):
        w_q, s_w = shared.weights[hd.name]
        w = torch.from_numpy(
            (w_q[: dq.n_out, : dq.n_in] * s_w[: dq.n_out, None]).astype(np.float32)
        )
        h = F.linear(h, w, net.layers[hd.name].bias[: dq.n_out])
        if hd.relu:
            h = fq(torch.relu(h), dq.out_scale, 0)
    return h.numpy()
