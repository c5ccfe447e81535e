"""The bi-level search of zhou2024 §IV-C (eqs. 8-10) over a :class:`~fedhar.compress.nas.SuperNet`.

First-order DARTS alternation, as the paper follows DARTS' "iterative optimization procedure":
for each training batch, one Adam step of the weights ``w`` and gate scores ``v`` on the
training loss, then one Adam step of the architecture parameters ``alpha`` on a validation
batch; both losses are eq. 10, each on a freshly drawn path. The temperature follows
:func:`~fedhar.compress.gates.temperature` per epoch. Optimizers as §V-A4: Adam for ``w, v``
(default lr 1e-4), Adam for ``alpha`` with lr 5e-3, betas (0.5, 0.999), weight decay 1e-3.
At the end the most probable candidate of every layer is chosen and re-instantiated.

Deterministic: the batch orders come from a generator seeded by ``seed``, the Gumbel draws
from the supernet's own seeded generator, and torch's deterministic kernels are on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn

from fedhar.compress.gates import TAU0, TAU_DECAY, DCSGate, temperature
from fedhar.compress.nas import Architecture, SuperNet, search_loss
from fedhar.models.spec import ModelSpec
from fedhar.models.training import deterministic_torch


@dataclass(frozen=True)
class SearchOptions:
    """Hyper-parameters of one search (defaults: zhou2024 §V-A4 where it gives them).

    Attributes:
        epochs: passes over the training windows.
        batch_size: windows per step.
        lr: Adam learning rate of weights and gate scores.
        lr_alpha: Adam learning rate of the architecture parameters.
        lr_gates: Adam learning rate of the DCS gate scores ``v`` (None: ``lr``). The gates
            start at 1 and prune below 0.5, so at ``lr`` 1e-4 a score needs thousands of
            steps to cross; a rate of their own lets the hardware terms act within a search.
        lr_sensor_gates: Adam learning rate of the sensor-channel gate (None: ``lr_gates``).
            Where every convolution runs on every sensor channel (DCL, TinyHAR), one sensor
            gate prices 1/C of the model's MACs, some 25 times a filter's, and Adam steps by
            about the rate whatever the gradient, so at one rate the sensor gates close first.
        beta1: weight of the expected MACs (in units of ``macs_scale`` MACs).
        beta2: weight of eq. 13's memory penalty.
        budget_bytes: the memory budget ``L_Mem`` in bytes (of the estimator's arena).
        memory_mode: ``full`` or ``tl``: the on-device training job the arena is sized for.
        macs_scale: MACs per unit of the complexity term (1e6: MMACs).
        tau0, tau_decay: the temperature schedule.
        seed: seeds the batch orders.
    """

    epochs: int = 200
    batch_size: int = 256
    lr: float = 1e-4
    lr_alpha: float = 5e-3
    lr_gates: float | None = None
    lr_sensor_gates: float | None = None
    beta1: float = 0.0
    beta2: float = 0.0
    budget_bytes: float = 96 * 1024
    memory_mode: str = "full"
    macs_scale: float = 1e6
    tau0: float = TAU0
    tau_decay: float = TAU_DECAY
    seed: int = 0


@dataclass
class SearchResult:
    """The found architecture, its plain model and the per-epoch trace.

    Attributes:
        architecture: kernels, kept sensors and kept filters.
        spec: the plain model; ``state``: its weights; ``sensors``: the input channels it reads.
        macs: the estimator's forward MACs of ``spec`` per window.
        history: per epoch, ``tau``, mean train ``loss`` (nats + hardware terms) and the
            ``macs`` of the most probable path at the epoch's end.
    """

    architecture: Architecture
    spec: ModelSpec
    state: dict[str, torch.Tensor]
    sensors: list[int]
    macs: int
    history: list[dict[str, float]] = field(default_factory=list)


class Searchable(Protocol):
    """What :func:`bilevel` needs of a supernet: ``layers`` whose ``log_alpha`` are the
    architecture parameters, DCS gates among its modules, :meth:`sample` (draw a path at a
    temperature), :meth:`fix_argmax` (take the most probable path) and
    :meth:`expected_macs`."""

    layers: nn.ModuleList
    sensor_gate: DCSGate

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...
    def sample(self, tau: float) -> None: ...
    def fix_argmax(self) -> None: ...
    def expected_macs(self) -> torch.Tensor: ...


def bilevel(
    net: Searchable,
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    options: SearchOptions,
    loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> list[dict[str, float]]:
    """The alternation of the module docstring on ``net`` with ``loss_of(logits, labels)``
    (eq. 10); leaves ``net`` in eval mode on its most probable path and returns the per-epoch
    history (``epoch``, ``tau``, mean train ``loss``, ``macs`` of the most probable path)."""
    alphas = [layer.log_alpha for layer in net.layers]
    alpha_ids = {id(p) for p in alphas}
    gate_ids = {id(m.v) for m in net.modules() if isinstance(m, DCSGate)}
    assert id(net.sensor_gate.v) in gate_ids
    weights = [p for p in net.parameters() if id(p) not in alpha_ids | gate_ids]
    sensors = net.sensor_gate.v
    gates = [p for p in net.parameters() if id(p) in gate_ids and p is not sensors]
    lr_gates = options.lr if options.lr_gates is None else options.lr_gates
    lr_sensors = lr_gates if options.lr_sensor_gates is None else options.lr_sensor_gates
    opt_w = torch.optim.Adam(
        [
            {"params": weights, "lr": options.lr},
            {"params": gates, "lr": lr_gates},
            {"params": [sensors], "lr": lr_sensors},
        ]
    )
    opt_a = torch.optim.Adam(alphas, lr=options.lr_alpha, betas=(0.5, 0.999), weight_decay=1e-3)
    xt, yt = torch.from_numpy(np.asarray(x, np.float32)), torch.from_numpy(np.asarray(y, np.int64))
    xv = torch.from_numpy(np.asarray(x_val, np.float32))
    yv = torch.from_numpy(np.asarray(y_val, np.int64))
    gen = torch.Generator().manual_seed(options.seed)
    history: list[dict[str, float]] = []

    with deterministic_torch():
        net.train()
        for epoch in range(options.epochs):
            tau = temperature(epoch, options.tau0, options.tau_decay)
            order = torch.randperm(len(xt), generator=gen)
            val_order = torch.randperm(len(xv), generator=gen)
            total, steps = 0.0, 0
            for step, start in enumerate(range(0, len(order), options.batch_size)):
                idx = order[start : start + options.batch_size]
                net.sample(tau)
                loss = loss_of(net(xt[idx]), yt[idx])
                opt_w.zero_grad()
                opt_a.zero_grad()
                loss.backward()
                opt_w.step()
                total += float(loss.detach())
                steps += 1
                v_start = (step * options.batch_size) % len(xv)
                vidx = val_order[v_start : v_start + options.batch_size]
                net.sample(tau)
                opt_w.zero_grad()
                opt_a.zero_grad()
                loss_of(net(xv[vidx]), yv[vidx]).backward()
                opt_a.step()
            net.fix_argmax()
            macs = float(net.expected_macs().detach())
            history.append({"epoch": epoch + 1, "tau": tau, "loss": total / steps, "macs": macs})
        net.eval()
        net.fix_argmax()
    return history


def search(
    net: SuperNet,
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    options: SearchOptions,
) -> SearchResult:
    """Searches ``net`` on training windows ``x [N, C, T]`` / ``y [N]`` with validation windows
    ``x_val`` / ``y_val`` for the architecture step; returns the chosen plain model."""

    def loss_of(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return search_loss(
            net, logits, labels, options.beta1, options.beta2, options.budget_bytes,
            options.macs_scale, options.memory_mode,
        )  # fmt: skip

    history = bilevel(net, x, y, x_val, y_val, options, loss_of)
    spec, state, sensors = net.to_spec()
    return SearchResult(
        net.architecture(), spec, state, sensors, int(round(history[-1]["macs"])), history
    )
