"""EdMIPS mixed-precision search (Cai & Vasconcelos 2020, as Daghero et al. 2022 §4.2 use it).

Every conv/dense layer holds two sets of architecture logits, softmaxed into coefficients: α
over its weight bits and β over its output activation bits, both over {1, 2, 4, 8}. The forward
pass simulates every bit-width at once (eq. 1):

* weights ``Ŵ = Σ_b α_b · W_b``, ``W_b`` the per-channel fake quantization at b bits
  (:func:`~fedhar.compress.fakequant.fake_weight`);
* activations ``y = Σ_a β_a · PACT_a(z; α)``, every bit-width quantizing the same clipped range
  ``[0, α]`` with one PACT clip per layer (calibrated by the ``mse`` rule at 8 bits, trained by
  PACT's gradient). With a clip per bit-width the mixture could lower the cross-entropy by
  scaling its output through a large-clip low-bit path rather than by being exact, and the
  search then chose 1-bit activations even at λ = 0; a shared range leaves only precision to
  choose;
* the 8-bit input as deployed; biases and average pools in float (a mixture of activations has
  no single step to round to). Fine-tuning restores both.

The loss is ``CE + λ · cost`` (eq. 2). ``cost`` is the expected cost of the network under the
current coefficients, ``Σ_layers Σ_{b,a} α_b β_a c(layer, b, a)``, where ``c`` is EdMIPS's
default, the weight bits ``b · numel(W)`` (then β does not enter it), or a caller's function
(e.g. expected cycles from the C kernels' counted operations). **Normalisation:** the cost is
expressed in units of 1/300 of the all-8-bit network's cost, ``300 · E[C] / C(8, 8)``, so that
``λ · cost`` is ``300 · λ`` at 8 bits (0.03 at λ = 1e-4, 0.3 at λ = 1e-3) whatever the model's
size or the cost's units. 300 was chosen on WISDM 2019 (daghero C16-32-32 K7, 4 search epochs):
across the paper's range 1e-4..1e-3 the weights then go from mostly 4–8 bits to mostly binary,
as the paper reports for its range (with 1000, λ = 1e-4 already binarized the last conv; with
100, λ = 1e-3 still kept the first conv at 8 bits).

Known behaviour: with the default cost, β is driven by the cross-entropy alone, and a mixture
can lower it by growing its outputs (a sharper softmax) rather than by being more exact; on
WISDM the search therefore picks low activation bits for the last conv and 2-bit (ternary,
scale max|w|) weights for the classifier even at λ = 0. Daghero et al. search with BatchNorm
in place, which absorbs such scale changes in the convs; here the folded network is searched.

After the search, each layer takes the argmax of α and of β (:func:`search`); :func:`sweep`
does that for several λ and fine-tunes each assignment with QAT.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fedhar.compress.calibration import (
    calibration_windows,
    clip_value,
    input_scale,
    linear_names,
    preactivations,
)
from fedhar.compress.fakequant import fake_input, fake_weight, pact
from fedhar.compress.qat import CALIB_WINDOWS, MIN_CLIP, QATNet, qat_finetune
from fedhar.compress.training import Schedule, check_xy, train
from fedhar.compress.walk import FoldedWalk, Linear
from fedhar.models.quantized import BITS, LayerBits
from fedhar.models.spec import ModelSpec

CostFn = Callable[[str, int, int], float]
"""``(layer name, w_bits, a_bits) → cost`` of one layer; ``a_bits`` is the layer's output
activation bits, 8 for the logits layer (whose output is float, so it should not matter)."""
COST_SCALE = 300.0
"""The all-8-bit network costs this much (see the module docstring)."""
LOGITS_A_BITS = 8
"""``a_bits`` passed to a cost function, and returned by :func:`search`, for the last layer."""


def weight_bits_cost(spec: ModelSpec) -> CostFn:
    """EdMIPS's default cost: the bits of a layer's weights, ``w_bits · numel(W)``."""
    numel = {
        layer.name: int(np.prod(layer.param_shapes()[f"{layer.name}.weight"]))
        for layer in spec.layers
        if layer.kind in ("conv1d", "dense")
    }
    return lambda name, w_bits, a_bits: float(w_bits * numel[name])


class SearchNet(FoldedWalk):
    """A folded model with every bit-width simulated at once, mixed by softmaxed logits.

    Attributes:
        in_scale: one step of the 8-bit input.
        alpha: layer name → weight-bit logits ``[4]`` (over :data:`BITS`).
        beta: hidden layer name → activation-bit logits ``[4]``.
        clips: hidden layer name → its PACT clip ``[1]``, shared by every activation bit-width.
    """

    def __init__(
        self,
        spec: ModelSpec,
        state: Mapping[str, np.ndarray],
        in_scale: float,
        clips: Mapping[str, float],
    ) -> None:
        super().__init__(spec, state)
        self.in_scale = float(in_scale)
        names = linear_names(spec)
        zeros = len(BITS)
        self.alpha = nn.ParameterDict({n: nn.Parameter(torch.zeros(zeros)) for n in names})
        self.beta = nn.ParameterDict({n: nn.Parameter(torch.zeros(zeros)) for n in names[:-1]})
        self.clips = nn.ParameterDict(
            {
                n: nn.Parameter(torch.tensor([float(clips[n])], dtype=torch.float32))
                for n in names[:-1]
            }
        )

    def arch_parameters(self) -> list[nn.Parameter]:
        """The α and β logits."""
        return [*self.alpha.values(), *self.beta.values()]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Weights, biases and PACT clips."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def chosen(self) -> dict[str, tuple[int, int]]:
        """Layer name → ``(argmax α, argmax β)`` bits (:data:`LOGITS_A_BITS` for the last)."""
        return {
            n: (
                BITS[int(self.alpha[n].argmax())],
                BITS[int(self.beta[n].argmax())] if n in self.beta else LOGITS_A_BITS,
            )
            for n in self.alpha
        }

    def cost_tables(self, cost: CostFn) -> dict[str, torch.Tensor]:
        """Layer name → its costs: ``[4, 4]`` over (weight bits, activation bits) for a hidden
        layer, ``[4]`` over weight bits for the last (float32, in ``cost``'s units)."""
        return {
            n: torch.tensor(
                [[cost(n, b, a) for a in BITS] for b in BITS]
                if n in self.beta
                else [cost(n, b, LOGITS_A_BITS) for b in BITS]
            )
            for n in self.alpha
        }

    def expected_cost(self, tables: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``Σ_layers Σ_{b,a} α_b β_a cost(layer, b, a)`` under the current coefficients, of
        :meth:`cost_tables` ``tables``."""
        total = torch.zeros(())
        for name, logits in self.alpha.items():
            cost = torch.softmax(logits, dim=0) @ tables[name]
            if name in self.beta:
                cost = cost @ torch.softmax(self.beta[name], dim=0)
            total = total + cost
        return total

    def quant_input(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return fake_input(x, self.in_scale), None

    def linear(self, layer: Linear, h: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
        p = torch.softmax(self.alpha[layer.spec.name], dim=0)
        w = sum(p[i] * fake_weight(layer.weight, b)[0] for i, b in enumerate(BITS))
        return layer.run(h, w, layer.bias)

    def activation(self, name: str, z: torch.Tensor) -> tuple[torch.Tensor, None]:
        p = torch.softmax(self.beta[name], dim=0)
        clips = torch.clamp(self.clips[name], min=MIN_CLIP)
        y = sum(p[i] * pact(z, clips, a) for i, a in enumerate(BITS))
        return y, None


def build_search(
    spec: ModelSpec, state: Mapping[str, np.ndarray], calib_x: np.ndarray
) -> SearchNet:
    """A :class:`SearchNet` of a folded model, uniform coefficients, calibrated on
    ``calib_x`` (input scale from the largest input; each layer's clip by the ``mse`` rule at
    8 bits)."""
    pre = preactivations(spec, state, calib_x)
    clips = {n: clip_value(z, 8, "mse") for n, z in pre.items()}
    return SearchNet(spec, state, input_scale(calib_x), clips)


def search(
    spec: ModelSpec,
    state: Mapping[str, np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    *,
    lam: float,
    epochs: int = 4,
    lr: float = 1e-3,
    arch_lr: float = 1e-2,
    batch_size: int = 128,
    seed: int = 0,
    class_weighted: bool = True,
    calib_x: np.ndarray | None = None,
    cost: CostFn | None = None,
) -> dict[str, tuple[int, int]]:
    """Searches per-layer bits of a folded float model; deterministic by ``seed``.

    Args:
        spec, state: a folded spec and its float32 tensors (the search's starting weights).
        x: normalized training windows ``[N, C, T]`` float32; y: labels ``[N]`` int64.
        lam: λ of the cost term (see the module docstring for the cost's normalisation).
        epochs, lr, batch_size, seed, class_weighted: the training schedule
            (:class:`~fedhar.compress.training.Schedule`); ``lr`` trains weights and clips.
        arch_lr: Adam learning rate of the α/β logits.
        calib_x: calibration windows (default: 512 of ``x`` drawn by ``seed``).
        cost: per-layer cost function (:data:`CostFn`); default :func:`weight_bits_cost`.

    Returns:
        Layer name → ``(w_bits, a_bits)``, the argmax of α and β (``a_bits`` of the last layer
        is :data:`LOGITS_A_BITS`).
    """
    check_xy(x, y, spec.input_channels, spec.input_length, spec.n_classes)
    if not lam >= 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    if not arch_lr > 0:
        raise ValueError(f"arch_lr must be > 0, got {arch_lr}")
    schedule = Schedule(epochs, lr, batch_size, seed, class_weighted)
    calib = calibration_windows(x, CALIB_WINDOWS, seed) if calib_x is None else calib_x
    net = build_search(spec, state, calib)
    tables = net.cost_tables(weight_bits_cost(spec) if cost is None else cost)
    eight = BITS.index(8)
    all8 = float(sum(t[eight, eight] if t.ndim == 2 else t[eight] for t in tables.values()))
    if not all8 > 0:
        raise ValueError(f"the all-8-bit network must cost more than 0, got {all8}")
    unit = COST_SCALE / all8
    groups = [
        {"params": net.weight_parameters()},
        {"params": net.arch_parameters(), "lr": arch_lr},
    ]
    train(
        net,
        x,
        y,
        spec.n_classes,
        schedule,
        groups,
        penalty=lambda: lam * unit * net.expected_cost(tables),
    )
    return net.chosen()


@dataclass(frozen=True)
class SweepPoint:
    """One λ of a sweep: the assignment the search chose and its QAT fine-tuned network."""

    lam: float
    bits: LayerBits
    net: QATNet


def sweep(
    spec: ModelSpec,
    state: Mapping[str, np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    lambdas: Sequence[float],
    *,
    search_epochs: int = 4,
    finetune_epochs: int = 4,
    lr: float = 1e-3,
    arch_lr: float = 1e-2,
    batch_size: int = 128,
    seed: int = 0,
    calib_x: np.ndarray | None = None,
    cost: CostFn | None = None,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
) -> list[SweepPoint]:
    """:func:`search` once per λ of ``lambdas`` (each from the same float model), then
    :func:`~fedhar.compress.qat.qat_finetune` of each chosen assignment from the float model
    (``finetune_epochs``; with ``x_val``/``y_val`` its best validation epoch). Arguments as
    :func:`search`. Returns one :class:`SweepPoint` per λ, in order."""
    out = []
    for lam in lambdas:
        bits = search(
            spec,
            state,
            x,
            y,
            lam=lam,
            epochs=search_epochs,
            lr=lr,
            arch_lr=arch_lr,
            batch_size=batch_size,
            seed=seed,
            calib_x=calib_x,
            cost=cost,
        )
        net = qat_finetune(
            spec,
            state,
            bits,
            x,
            y,
            epochs=finetune_epochs,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            calib_x=calib_x,
            x_val=x_val,
            y_val=y_val,
        )
        out.append(SweepPoint(float(lam), bits, net))
    return out
