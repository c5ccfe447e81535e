"""zhou2024's searchable first stage for the C library's CNN family, its hardware-aware loss
and the re-instantiation of a found architecture as a plain :class:`ModelSpec` (§IV, eq. 10).

**Search space** (§IV-B, Fig. 4), over ``[N, C, T]`` windows: a DCS gate on the C sensor
channels, then ``2 N`` layers alternating stride 2 and stride 1, ``N = floor(log2(T / 4))``
(fewer with ``n_stride2``). Each layer holds candidate convolutions of kernel 1, 3, 5 and 7
(each followed by ReLU and its own DCS gate over its filters) and, where the layer's input and
output widths agree, the identity; one candidate is drawn per forward pass by
:func:`~fedhar.compress.gates.gumbel_one_hot`. Then global average pooling, an optional dense
``hidden`` layer with ReLU, and the classifier: every piece is a layer the C library trains.

Choices of this module (the paper draws Fig. 4 without sizes): stride-1 layers are ``same``
padded and stride-2 layers ``valid`` (the C library has ``same`` for stride 1 only); a
stride-2 layer offers only kernels no longer than its shortest possible input, so every path
is valid; stride-2 layers offer no identity (they carry the temporal reduction); the
classifier head after global pooling stands in for the baselines' later stages, which the
C library cannot run (see :mod:`fedhar.models.baselines`).

**Costs.** :meth:`SuperNet.expected_macs` is eq. 11 without its squares: ``sum_i sum_j
p_ij MACs_ij``, each term the MACs the C library's estimator
(:func:`fedhar.ondevice.estimator.estimate_inference`) counts for that layer at unit width
times the active input and output widths (its conv and dense rules are bilinear in them), so
for the drawn architecture it equals the estimator's MACs of the re-instantiated model. The
squares are left out so that the term *is* a MAC count. :meth:`SuperNet.peak_memory` is the
estimator's arena total for training the drawn architecture on the device (``mode`` ``full``
or ``tl``, plain SGD as ``fedhar estimate``'s default) in place of eq. 12's inference memory,
because fedhar deploys models to personalize them; its gradient with respect to each gate's
width is the change of the estimator's total when that width grows by one (the estimator is
not differentiable). Eq. 13's penalty is :func:`memory_penalty`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn
from torch.nn import functional as F

from fedhar.compress.gates import DCSGate, gumbel_one_hot
from fedhar.models.spec import LayerSpec, ModelSpec, SpecBuilder, nas_cnn
from fedhar.ondevice.estimator import estimate_inference, estimate_training

KERNELS: tuple[int, ...] = (1, 3, 5, 7)
"""Candidate kernels of every searchable layer (zhou2024 §IV-B)."""
IDENTITY = 0
"""Kernel value that stands for the identity operator in an architecture."""


def default_stride2(length: int) -> int:
    """``N = floor(log2(s0 / 4))`` stride-2 layers for windows of ``length`` samples (§IV-B)."""
    return max(0, math.floor(math.log2(length / 4)))


@lru_cache(maxsize=4096)
def _unit_macs(kind: str, t_in: int, kernel: int, stride: int, padding: str) -> int:
    """The estimator's forward MACs of one layer at one input and one output channel."""
    if kind == "conv1d":
        t_out = t_in if padding == "same" else (t_in - kernel) // stride + 1
        layer = LayerSpec(
            "conv1d", "probe", (1, t_in), (1, t_out), out_channels=1, kernel=kernel,
            stride=stride, padding=padding,
        )  # fmt: skip
    else:
        layer = LayerSpec("dense", "probe", (1,), (1,), out_channels=1)
    return estimate_inference(ModelSpec("probe", 1, t_in, 1, (layer,))).macs


@dataclass(frozen=True)
class Architecture:
    """A drawn or chosen path: the kernel per layer (:data:`IDENTITY` for the identity), the
    kept sensor channels and the kept filters of every non-identity layer (indices into the
    candidate's full filter set)."""

    kernels: tuple[int, ...]
    sensors: tuple[int, ...]
    filters: tuple[tuple[int, ...], ...]


class SearchLayer(nn.Module):
    """One searchable layer: candidate convs (each conv → ReLU → [BatchNorm →] DCS gate) and
    maybe identity."""

    def __init__(
        self, c_in: int, filters: int, stride: int, kernels: tuple[int, ...],
        batchnorm: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.stride = stride
        self.padding = "same" if stride == 1 else "valid"
        self.kernels = kernels + ((IDENTITY,) if stride == 1 and c_in == filters else ())
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in, filters, k, stride=stride, padding=self.padding) for k in kernels
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(filters) for _ in kernels) if batchnorm else None
        self.gates = nn.ModuleList(DCSGate(filters) for _ in kernels)
        self.log_alpha = nn.Parameter(torch.full((len(self.kernels),), math.log(1e-3)))

    def out_length(self, t_in: int, j: int) -> int:
        """Output samples of candidate ``j`` on ``t_in`` input samples."""
        k = self.kernels[j]
        if k == IDENTITY or self.padding == "same":
            return t_in
        return (t_in - k) // self.stride + 1

    def run(self, x: torch.Tensor, j: int) -> torch.Tensor:
        """Candidate ``j`` on ``x [N, C, T]``."""
        if self.kernels[j] == IDENTITY:
            return x
        h = F.relu(self.convs[j](x))
        if self.norms is not None:
            h = self.norms[j](h)
        return self.gates[j](h)


def search_layers(
    c_in: int, length: int, filters: int, n_stride2: int, batchnorm: bool = False
) -> nn.ModuleList:
    """The ``2 n_stride2`` searchable layers (stride 2, 1, 2, 1, ...) on ``c_in`` input
    channels of ``length`` samples; a stride-2 layer offers only kernels no longer than its
    shortest possible input."""
    layers = []
    c, t_min = c_in, length
    for stride in [2, 1] * n_stride2:
        kernels = KERNELS if stride == 1 else tuple(k for k in KERNELS if k <= t_min)
        layers.append(SearchLayer(c, filters, stride, kernels, batchnorm))
        if stride == 2:
            t_min = (t_min - max(kernels)) // 2 + 1
        c = filters
    return nn.ModuleList(layers)


class PathSearch(nn.Module):
    """Base of the supernets: searchable ``layers`` (:class:`SearchLayer`) and the current
    one-hot ``choice`` of one candidate per layer, drawn from the seeded ``generator``."""

    layers: nn.ModuleList
    generator: torch.Generator
    choice: list[torch.Tensor]

    def sample(self, tau: float) -> None:
        """Draws one candidate per layer (eq. 5) at temperature ``tau``, for the next passes."""
        self.choice = [
            gumbel_one_hot(layer.log_alpha, tau, self.generator) for layer in self.layers
        ]

    def fix_argmax(self) -> None:
        """Chooses each layer's most probable candidate (the found architecture)."""
        self.choice = []
        for layer in self.layers:
            one_hot = torch.zeros_like(layer.log_alpha)
            one_hot[torch.argmax(layer.log_alpha.detach())] = 1.0
            self.choice.append(one_hot)

    def picked(self) -> list[int]:
        """The current candidate of every layer (an index into its ``kernels``)."""
        if len(self.choice) != len(self.layers):
            raise RuntimeError("call sample() or fix_argmax() before running the supernet")
        return [int(torch.argmax(p.detach())) for p in self.choice]


class SuperNet(PathSearch):
    """The gated, operator-searchable CNN for ``[N, channels, length]`` windows.

    Args:
        channels: sensor channels C (the input gate's width).
        length: window samples T.
        n_classes: classes K.
        filters: filters of every candidate convolution.
        hidden: units of the dense layer after global pooling (0: none).
        n_stride2: stride-2 layers N (default :func:`default_stride2`).
        seed: seeds the weights and the Gumbel generator.
    """

    def __init__(
        self, channels: int, length: int, n_classes: int, filters: int = 16, hidden: int = 0,
        n_stride2: int | None = None, seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        n2 = default_stride2(length) if n_stride2 is None else n_stride2
        self.channels, self.length, self.n_classes, self.hidden = (
            channels,
            length,
            n_classes,
            hidden,
        )
        self.sensor_gate = DCSGate(channels)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self._build(channels, length, n_classes, filters, hidden, n2)
        self.generator = torch.Generator().manual_seed(seed)
        self.choice: list[torch.Tensor] = []

    def _build(
        self, channels: int, length: int, n_classes: int, filters: int, hidden: int, n2: int
    ) -> None:
        self.layers = search_layers(channels, length, filters, n2)
        width = filters if n2 else channels
        self.fc1 = nn.Linear(width, hidden) if hidden else None
        self.classifier = nn.Linear(hidden or width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [N, C, T]`` → logits ``[N, K]`` along the current choice (eq. 6: the drawn
        candidate's output times its one-hot weight, which carries eq. 7's gradient)."""
        h = self.sensor_gate(x)
        for layer, p, j in zip(self.layers, self.choice, self.picked(), strict=True):
            h = p[j] * layer.run(h, j)
        h = h.mean(dim=2)
        if self.fc1 is not None:
            h = F.relu(self.fc1(h))
        return self.classifier(h)

    def _widths(self) -> list[list[torch.Tensor]]:
        """Active output width of every candidate of every layer (identity: the input's)."""
        return [[g.count() for g in layer.gates] for layer in self.layers]

    def expected_macs(self) -> torch.Tensor:
        """``sum_i sum_j p_ij MACs_ij`` along the current choice's lengths and widths, in MACs
        (differentiable in the gates and the architecture parameters)."""
        widths = self._widths()
        c = self.sensor_gate.count()
        t = self.length
        total = torch.zeros(())
        for layer, p, j, w in zip(self.layers, self.choice, self.picked(), widths, strict=True):
            out = torch.zeros(())
            for jj, k in enumerate(layer.kernels):
                if k == IDENTITY:
                    out = out + p[jj] * c
                    continue
                unit = _unit_macs("conv1d", t, k, layer.stride, layer.padding)
                total = total + p[jj] * unit * c * w[jj]
                out = out + p[jj] * w[jj]
            t = layer.out_length(t, j)
            c = out
        dense = _unit_macs("dense", 1, 0, 0, "")
        if self.fc1 is not None:
            total = total + dense * c * self.hidden
            c = torch.tensor(float(self.hidden))
        return total + dense * c * self.n_classes

    def architecture(self) -> Architecture:
        """The current choice as kernels, kept sensors and kept filters."""
        kernels, kept = [], []
        for layer, j in zip(self.layers, self.picked(), strict=True):
            kernels.append(layer.kernels[j])
            kept.append(() if layer.kernels[j] == IDENTITY else tuple(layer.gates[j].kept()))
        return Architecture(tuple(kernels), tuple(self.sensor_gate.kept()), tuple(kept))

    def to_spec(self) -> tuple[ModelSpec, dict[str, torch.Tensor], list[int]]:
        """The current choice as a plain model: its spec (:func:`fedhar.models.spec.nas_cnn`
        of the choice, as a run scenario's ``model: nas`` builds it), its ``state_dict`` (the
        kept slices of the supernet's weights) and the sensor channels it reads (feed it
        ``x[:, kept]``).

        With the gates applied, the plain model's logits equal the supernet's on the same
        choice: a gated-off filter is zero after ReLU, so dropping it and the next layer's
        weights on it changes nothing."""
        arch = self.architecture()
        picked = self.picked()
        spec = nas_cnn(
            self.channels,
            self.length,
            self.n_classes,
            kernels=[layer.kernels[j] for layer, j in zip(self.layers, picked, strict=True)],
            filters=[len(kept) for kept in arch.filters],
            strides=[layer.stride for layer in self.layers],
            hidden=self.fc1.out_features if self.fc1 else 0,
            sensors=list(arch.sensors),
        )
        state: dict[str, torch.Tensor] = {}
        rows = list(arch.sensors)
        n = 0
        for layer, j, kept in zip(self.layers, picked, arch.filters, strict=True):
            if layer.kernels[j] == IDENTITY:
                continue
            n += 1
            conv = layer.convs[j]
            state[f"conv{n}.weight"] = conv.weight.detach()[list(kept)][:, rows].clone()
            state[f"conv{n}.bias"] = conv.bias.detach()[list(kept)].clone()
            rows = list(kept)
        head = (
            [("fc1", self.fc1), ("fc2", self.classifier)]
            if self.fc1
            else [("fc1", self.classifier)]
        )
        for i, (key, linear) in enumerate(head):
            weight = linear.weight.detach()
            state[f"{key}.weight"] = (weight[:, rows] if i == 0 else weight).clone()
            state[f"{key}.bias"] = linear.bias.detach().clone()
        return spec, state, list(arch.sensors)

    def peak_memory(self, mode: str = "full") -> torch.Tensor:
        """The estimator's arena bytes for training the current choice on the device (``mode``
        ``full`` or ``tl``), differentiable in the gates' widths by forward differences."""
        counts = [self.sensor_gate.count()] + [
            layer.gates[j].count()
            for layer, j in zip(self.layers, self.picked(), strict=True)
            if layer.kernels[j] != IDENTITY
        ]
        return forward_difference(lambda widths: _arena_total(self, mode, widths), counts)


def _arena_total(net: SuperNet, mode: str, widths: list[int]) -> float:
    """Estimator arena bytes of ``net``'s current path at the given widths (sensors first)."""
    b = SpecBuilder(widths[0], net.length)
    n = 0
    for layer, j in zip(net.layers, net.picked(), strict=True):
        if layer.kernels[j] == IDENTITY:
            continue
        n += 1
        b.conv1d(f"conv{n}", widths[n], layer.kernels[j], layer.stride, layer.padding)
        b.relu(f"relu{n}")
    b.gap1d("gap")
    if net.hidden:
        b.dense("fc1", net.hidden).relu("relu_fc1")
    spec = b.dense("out", net.n_classes).build("probe")
    return float(estimate_training(spec, mode=mode, momentum=False).memory_bytes["total"])


def forward_difference(
    cost: Callable[[list[int]], float], counts: Sequence[torch.Tensor]
) -> torch.Tensor:
    """``cost`` of the integer widths ``counts`` (gate counts) as a scalar whose gradient with
    respect to each count is ``cost`` with that width one larger minus ``cost`` (for costs
    that are not differentiable, such as the estimator's arena or a peak over layers)."""
    return _ForwardDifference.apply(cost, *counts)


class _ForwardDifference(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cost: Callable[[list[int]], float], *counts: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        widths = [int(round(float(c))) for c in counts]
        base = cost(widths)
        slopes = []
        for i in range(len(widths)):
            bumped = list(widths)
            bumped[i] += 1
            slopes.append(cost(bumped) - base)
        ctx.slopes = slopes
        return torch.tensor(base)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None | torch.Tensor, ...]:  # noqa: ANN001
        return (None, *(grad * s for s in ctx.slopes))


def memory_penalty(peak: torch.Tensor, budget_bytes: float) -> torch.Tensor:
    """Eq. 13: ``log(peak / budget)`` above the budget, 0 within it."""
    if peak.item() > budget_bytes:
        return torch.log(peak / budget_bytes)
    return torch.zeros(())


def hardware_loss(
    logits: torch.Tensor, labels: torch.Tensor, beta1: float, macs: Callable[[], torch.Tensor],
    beta2: float, peak: Callable[[], torch.Tensor], budget_bytes: float,
    macs_scale: float = 1e6,
) -> torch.Tensor:  # fmt: skip
    """Eq. 10: cross-entropy + ``beta1`` × ``macs()`` / ``macs_scale`` + ``beta2`` × eq. 13 on
    ``peak()`` bytes against ``budget_bytes`` (a term whose beta is 0 is not computed)."""
    loss = F.cross_entropy(logits, labels)
    if beta1:
        loss = loss + beta1 * macs() / macs_scale
    if beta2:
        loss = loss + beta2 * memory_penalty(peak(), budget_bytes)
    return loss


def search_loss(
    net: SuperNet, logits: torch.Tensor, labels: torch.Tensor, beta1: float, beta2: float,
    budget_bytes: float, macs_scale: float = 1e6, mode: str = "full",
) -> torch.Tensor:  # fmt: skip
    """:func:`hardware_loss` with ``net``'s expected MACs and the estimator's arena bytes for
    training it on the device in ``mode``."""
    return hardware_loss(
        logits, labels, beta1, net.expected_macs, beta2, lambda: net.peak_memory(mode),
        budget_bytes, macs_scale,
    )  # fmt: skip
