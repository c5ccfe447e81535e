"""zhou2024's differentiable building blocks: DCS channel gates and Gumbel-softmax operator
sampling (§IV-A, eqs. 1-4; §IV-B, eqs. 5-7).

- :class:`DCSGate`: a continuous score ``v`` per channel, binarized ``b = [v > 0.5]`` in the
  forward pass and passed straight through (``dL/dv = dL/db``, eq. 4) in the backward pass;
  the layer multiplies ``[N, C, T]`` activations by ``b`` per channel (eqs. 1-2).
- :func:`gumbel_one_hot`: a one-hot operator choice ``argmax_j (g_j + log alpha_j)`` (eq. 5)
  whose gradient is that of the tempered softmax of eq. 7 (straight-through Gumbel-softmax).
- :func:`temperature`: the paper's schedule ``tau = tau0 exp(-0.05 epoch)``, tau0 = 5 (§V-A4).

Choices of this module (the paper gives none): ``v`` starts at 1.0 (every channel kept); a
gate whose scores all fall to 0.5 or below keeps its highest-scoring channel, so no layer is
ever emptied; ``log alpha`` is the trainable parameter (the paper's alpha must stay positive
for its log; parameterizing the log is the usual way to keep it so).
"""

from __future__ import annotations

import math

import torch
from torch import nn

GATE_THRESHOLD = 0.5
"""``thres`` of eq. 3 (zhou2024 §IV-A: "set at 0.5 in this study")."""
TAU0 = 5.0
"""Initial Gumbel-softmax temperature (zhou2024 §V-A4)."""
TAU_DECAY = 0.05
"""Per-epoch exponent of the temperature decay (zhou2024 §V-A4)."""


class _BinarizeSTE(torch.autograd.Function):
    """``b = [v > thres]`` (at least one 1, at the largest ``v``); gradient passed through."""

    @staticmethod
    def forward(ctx: object, v: torch.Tensor, thres: float) -> torch.Tensor:  # noqa: ARG004
        b = (v > thres).to(v.dtype)
        if not bool(b.any()):
            b[torch.argmax(v)] = 1.0
        return b

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ARG004
        return grad, None


def binarize(v: torch.Tensor, thres: float = GATE_THRESHOLD) -> torch.Tensor:
    """Eq. 3 forward, eq. 4 backward: 0/1 of ``v [C]`` with the identity as its gradient."""
    return _BinarizeSTE.apply(v, thres)


class DCSGate(nn.Module):
    """Differentiable channel-wise scaling gate over the ``channels`` axis of ``[N, C, T]``."""

    def __init__(self, channels: int, init: float = 1.0) -> None:
        super().__init__()
        self.v = nn.Parameter(torch.full((channels,), float(init)))

    def bits(self) -> torch.Tensor:
        """``b [C]``, 0/1 with the straight-through gradient."""
        return binarize(self.v)

    def count(self) -> torch.Tensor:
        """Active channels ``sum(b)`` as a differentiable scalar (integer-valued)."""
        return self.bits().sum()

    def kept(self) -> list[int]:
        """Indices of the kept channels, ascending."""
        with torch.no_grad():
            return [int(i) for i in torch.nonzero(self.bits()).flatten()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [N, C, T]`` times ``b`` per channel."""
        return x * self.bits()[None, :, None]


def gumbel_one_hot(
    log_alpha: torch.Tensor, tau: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A one-hot sample ``[J]`` of eq. 5 with the gradient of eq. 7's softmax at ``tau``.

    The Gumbel noise ``g = -log(-log u)``, ``u ~ U(0, 1)``, is drawn from ``generator`` (seeded
    by the caller), so a seed fixes every choice.
    """
    if tau <= 0:
        raise ValueError(f"temperature must be > 0, got {tau}")
    u = torch.rand(log_alpha.shape, generator=generator, dtype=log_alpha.dtype)
    g = -torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))
    soft = torch.softmax((log_alpha + g) / tau, dim=-1)
    hard = torch.zeros_like(soft)
    hard[torch.argmax(log_alpha.detach() + g)] = 1.0
    return hard - soft.detach() + soft


def temperature(epoch: int, tau0: float = TAU0, decay: float = TAU_DECAY) -> float:
    """``tau0 * exp(-decay * epoch)`` (zhou2024 §V-A4)."""
    return tau0 * math.exp(-decay * epoch)
