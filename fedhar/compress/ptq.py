"""Contoli et al. 2023's post-training formats of a trained float model, from its folded form.

* ``float32``: the folded float network (:func:`folded_float`);
* ``dynamic`` (dynamic-range quantization): int8 per-channel weights, float activations
  quantized per tensor on the fly at every conv/dense input (:func:`ptq_dynamic`, a float64
  torch reference of the deployed kernels' arithmetic);
* ``full_int8`` (full-integer quantization): weights and activations at 8 bits, activation
  steps calibrated on a calibration set (:func:`ptq_full_int8`).

Full-integer calibration rule: on WISDM 2019 (phone, classes A–E, 20 Hz, windows of 60,
users split as ``wisdm2019_adaptive``; daghero C16-32-32 K7), ``max`` and ``mse`` both scored a
validation macro-F1 of 0.9905 and the 99.9th/99.99th percentiles 0.9901 (float: 0.9901): at 8
bits clipping buys nothing, so :data:`FULL_INT8_CLIP` is ``max``, which clips no calibration
value (TFLite's rule).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from fedhar.compress.calibration import ClipRule, folded_float, linear_names
from fedhar.compress.qat import build_qat, to_qnet
from fedhar.compress.walk import FoldedWalk, Linear, float64_logits
from fedhar.models.quantized import QNet, quantize_weights
from fedhar.models.spec import ModelSpec

__all__ = ["FULL_INT8_CLIP", "DynamicRef", "folded_float", "ptq_dynamic", "ptq_full_int8"]

FULL_INT8_CLIP: ClipRule = "max"
"""Clip rule of the full-integer activation steps (see the module docstring)."""


class DynamicRef(FoldedWalk):
    """Dynamic-range quantization of a folded model: at every conv/dense input ``h`` of one
    window, ``s = max|h| / 127`` (1 when ``h`` is all 0), ``h_q = clip(round(h / s), -127,
    127)``; weights ``w ≈ s_w · q`` by ``quantize_weights(w, 8)``; ``y = acc · s · s_w + b``
    with the int32 accumulator ``acc = Σ q · h_q`` and the float bias ``b``. ReLU and pools are
    float."""

    def quant_input(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return x, None

    def linear(self, layer: Linear, h: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
        top = h.detach().abs().reshape(len(h), -1).amax(dim=1)
        s = torch.where(top > 0, top / 127.0, torch.ones_like(top))
        shape = (-1,) + (1,) * (h.ndim - 1)
        h_q = torch.clamp(torch.round(h / s.reshape(shape)), -127, 127)
        q, s_w8 = quantize_weights(layer.weight.detach().cpu().numpy().astype(np.float64), 8)
        acc = layer.run(h_q, torch.from_numpy(q).to(h.dtype), None)
        s_w = torch.from_numpy(s_w8).to(h.dtype)
        step = s.reshape(shape) * (s_w.reshape(1, -1, 1) if acc.ndim == 3 else s_w.reshape(1, -1))
        b = layer.bias.reshape((1, -1, 1) if acc.ndim == 3 else (1, -1))
        return acc * step + b

    def activation(self, name: str, z: torch.Tensor) -> tuple[torch.Tensor, None]:
        return torch.relu(z), None

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Float64 logits ``[N, n_classes]`` of normalized windows ``x [N, C, T]``."""
        return float64_logits(self, x)


def ptq_dynamic(spec: ModelSpec, state: Mapping[str, np.ndarray]) -> DynamicRef:
    """The dynamic-range format of a folded model (``spec`` from
    :func:`~fedhar.models.quantized.fold_spec`, ``state`` from
    :func:`~fedhar.models.quantized.fold_state`); see :class:`DynamicRef`."""
    return DynamicRef(spec, state).eval()


def ptq_full_int8(
    spec: ModelSpec,
    state: Mapping[str, np.ndarray],
    calib_x: np.ndarray,
    clip_rule: ClipRule = FULL_INT8_CLIP,
) -> QNet:
    """The full-integer format of a folded model: 8-bit weights and activations, the input
    step from ``max|calib_x|`` and each activation step ``α / 255`` with α by ``clip_rule``
    (:func:`~fedhar.compress.calibration.clip_value`) on the folded float network's
    pre-activations of the calibration windows ``calib_x [N, C, T]`` (normalized)."""
    bits = {name: (8, 8) for name in linear_names(spec)}
    return to_qnet(build_qat(spec, state, bits, calib_x, clip_rule))
