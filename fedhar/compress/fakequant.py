"""Differentiable fake quantizers whose forward values are those of the deployed integer network.

Every quantizer here returns *real* values (integer levels times their scale) in the dtype of
its input, so a network built from them computes in float what
:func:`fedhar.models.quantized.reference_logits` computes in integers (see that module for the
number formats). The gradients are the usual ones of quantization-aware training:

* rounding passes the gradient straight through (STE);
* weights (:func:`fake_weight`): per output channel, symmetric, at 1, 2, 4 or 8 bits, computed
  by :func:`fedhar.models.quantized.quantize_weights` itself; the gradient flows to the float
  weight unchanged (STE), the scale is treated as a constant;
* activations (:func:`pact`): PACT (Choi et al. 2018), ``y = clip(x, 0, α)`` quantized to
  ``2^a - 1`` levels of ``α / (2^a - 1)``, with PACT's gradients ``∂y/∂x = 1[0 ≤ x < α]`` and
  ``∂y/∂α = 1[x ≥ α]``;
* the sensor input (:func:`fake_input`): signed 8-bit at a fixed scale;
* biases (:func:`fake_bias`): rounded to accumulator units;
* average pools (:func:`rounded_avg_pool`): the mean of the integer levels rounded half up.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from fedhar.models.quantized import act_levels, quantize_weights

BIAS_LIMIT = 2**30
"""Largest bias magnitude, in accumulator units, that the deployed layers store."""


def ste(x: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``value`` in the forward pass (exactly: ``x - x`` adds 0), the gradient of ``x`` in the
    backward pass."""
    return value.detach() + (x - x.detach())


def fake_weight(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fake-quantized weights ``s_w[c] · q`` (``w``'s shape and dtype) and the scales ``[F]``.

    Args:
        w: ``[F, C, K]`` conv or ``[M, N]`` dense weights.
        bits: 1, 2, 4 or 8. The levels and the float32 scales are exactly those of
            :func:`~fedhar.models.quantized.quantize_weights`, which a deployed layer stores.
    """
    q, scale = quantize_weights(w.detach().cpu().numpy().astype(np.float64), bits)
    s = torch.from_numpy(scale).to(device=w.device, dtype=w.dtype)
    levels = torch.from_numpy(q).to(device=w.device, dtype=w.dtype)
    return ste(w, levels * s.reshape((-1,) + (1,) * (w.ndim - 1))), s


def fake_bias(b: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """Bias ``[F]`` rounded to accumulator units ``step = s_in · s_w`` ``[F]`` (clipped to
    ±2^30 units, as deployed); the gradient flows to ``b`` unchanged."""
    units = torch.clamp(torch.round(b.detach() / step.detach()), -BIAS_LIMIT, BIAS_LIMIT)
    return ste(b, units * step.detach())


def fake_input(x: torch.Tensor, scale: float) -> torch.Tensor:
    """The signed 8-bit input ``clip(round(x / scale), -127, 127) · scale`` (``scale`` is one
    step in normalized units; round half to even, as :meth:`QNet.quantize_input`)."""
    return ste(x, torch.clamp(torch.round(x / scale), -127, 127) * scale)


class _Pact(torch.autograd.Function):
    """PACT's clip-and-quantize with its own gradients (see :func:`pact`)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: torch.Tensor, levels: int) -> torch.Tensor:  # noqa: ANN001
        ctx.save_for_backward(x, alpha)
        step = alpha / levels
        return torch.clamp(torch.floor(x / step + 0.5), 0, levels) * step

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:  # noqa: ANN001
        x, alpha = ctx.saved_tensors
        inside = (x >= 0) & (x < alpha)
        grad_alpha = (grad * (x >= alpha).to(grad.dtype)).sum().reshape(alpha.shape)
        return grad * inside.to(grad.dtype), grad_alpha, None


def pact(x: torch.Tensor, alpha: torch.Tensor, bits: int) -> torch.Tensor:
    """PACT activation of pre-activations ``x`` (any shape) with clip ``alpha`` (a 1-element
    tensor, the same units as ``x``) at ``bits`` a: ``clip(floor(x / s + 1/2), 0, 2^a - 1) · s``
    with ``s = α / (2^a - 1)``, which is ReLU, the clip and the deployed requantization (round
    half up) in one. Gradients: ``∂y/∂x = 1[0 ≤ x < α]``, ``∂y/∂α = Σ 1[x ≥ α]`` (PACT eq. 3)."""
    return _Pact.apply(x, alpha, act_levels(bits))


def rounded_avg_pool(h: torch.Tensor, scale: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """Average pool of activations ``h [N, C, T]`` that are integer levels times ``scale``, as
    the deployed pool computes it: ``(Σ levels + size div 2) div size`` per window, times
    ``scale``. The gradient is that of a plain average pool."""
    levels = torch.round(h.detach() / scale.detach())
    total = torch.round(F.avg_pool1d(levels, size, stride) * size)
    pooled = torch.floor((total + size // 2) / size) * scale.detach()
    return ste(F.avg_pool1d(h, size, stride), pooled)
