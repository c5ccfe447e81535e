"""Cross-layer equalization of a folded ReLU network before quantization.

A ReLU network is positively homogeneous per channel: dividing output channel ``i`` of a
conv/dense layer (its weights and bias) by ``s_i > 0`` and multiplying the next linear layer's
input weights on that channel by ``s_i`` changes no logit in float, as long as only ReLU,
max/average pooling, global average pooling or flattening lie between the two (Nagel et al.
2019, "Data-Free Quantization Through Weight Equalization and Bias Correction", ICCV, §4.1).
fedhar's integer kernels quantize every activation tensor with one step (PACT, per tensor), so
a layer whose channels span very different ranges loses its small channels: the found model of
``scenarios/hapt_nas.yaml`` (8 convolutions, no BatchNorm) has per-channel 99.9th percentiles
of 0.1 to 705 in one layer, and 8-bit post-training quantization drops its validation F1 from
0.955 to 0.603.

Nagel et al. balance the two layers' *weight* ranges (``s_i = sqrt(r1_i / r2_i)``); that gave
0.743 here. This module balances what each quantizer sees: channel ``i``'s calibrated
activation range ``a_i`` (the ``quantile`` of its ReLU output on calibration windows) against
its outgoing weight range ``w_i`` (the largest ``|W_next[:, i]|``), ``s_i = sqrt(a_i / w_i)``,
so that both become ``sqrt(a_i w_i)``: 0.938 at 8 bits on the same model (fully equalizing the
activations, ``s_i = a_i / w_i``, gave 0.779). Dead channels (``a_i`` or ``w_i`` zero) are left
alone. Measured with fedhar's fake quantization (:mod:`fedhar.compress.qat`), validation users
of ``scenarios/hapt_nas.yaml``, the selected ``b1=0.1 b2=1`` model, 512 calibration windows.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fedhar.compress.calibration import preactivations
from fedhar.models.spec import ModelSpec

HOMOGENEOUS: tuple[str, ...] = ("relu", "maxpool1d", "avgpool1d", "gap1d", "flatten")
"""Layer kinds that commute with a positive per-channel scale (flatten repeats it per step)."""
QUANTILE = 0.999
"""Default quantile of a channel's ReLU output taken as its range (one outlier in 10^3)."""


def equalizable_pairs(spec: ModelSpec) -> list[tuple[str, str, int]]:
    """``(layer, next_layer, repeat)`` for every pair of consecutive conv/dense layers with only
    :data:`HOMOGENEOUS` layers between them; ``repeat`` is how many input columns of the next
    layer each channel feeds (its steps when flattened, else 1)."""
    pairs = []
    prev: str | None = None
    repeat = 1
    for layer in spec.layers:
        if layer.kind in ("conv1d", "dense"):
            if prev is not None:
                pairs.append((prev, layer.name, repeat))
            prev, repeat = layer.name, 1
        elif layer.kind == "flatten":
            repeat = layer.in_shape[1] if len(layer.in_shape) == 2 else 1
        elif layer.kind not in HOMOGENEOUS:
            prev = None
    return pairs


def equalize(
    spec: ModelSpec,
    state: Mapping[str, np.ndarray],
    calib_x: np.ndarray,
    quantile: float = QUANTILE,
) -> dict[str, np.ndarray]:
    """The folded float32 ``state`` of ``spec`` with every :func:`equalizable_pairs` pair
    rescaled by ``s_i = sqrt(a_i / w_i)`` (module docstring), ``a_i`` from the calibration
    windows ``calib_x [N, C, T]`` (normalized). The float network's logits do not change
    (up to float rounding).

    Raises:
        ValueError: ``quantile`` outside (0, 1].
    """
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    out = {k: np.asarray(v, dtype=np.float32).copy() for k, v in state.items()}
    pre = preactivations(spec, out, calib_x)  # unchanged by the rescaling: computed once
    for name, nxt, repeat in equalizable_pairs(spec):
        z = np.maximum(np.moveaxis(pre[name], 1, 0), 0.0)
        a = np.quantile(z.reshape(z.shape[0], -1), quantile, axis=1)
        w_next = out[f"{nxt}.weight"]
        cols = np.abs(w_next).reshape(w_next.shape[0], len(a), repeat, -1)
        w = cols.max(axis=(0, 2, 3))
        live = (a > 0) & (w > 0)
        s = np.where(live, np.sqrt(np.where(live, a, 1.0) / np.where(live, w, 1.0)), 1.0)
        s = s.astype(np.float32)
        w_self = out[f"{name}.weight"]
        out[f"{name}.weight"] = w_self / s.reshape(-1, *[1] * (w_self.ndim - 1))
        out[f"{name}.bias"] = out[f"{name}.bias"] / s
        scale_in = np.repeat(s, repeat).reshape(1, -1, *[1] * (w_next.ndim - 2))
        out[f"{nxt}.weight"] = w_next * scale_in
    return out
