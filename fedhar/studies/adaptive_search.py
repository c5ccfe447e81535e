"""Static architecture grid over the Fig. 4a template and the choice of M_l (eq. (5)).

Every grid model is trained (float32), scored by macro-F1 and priced from the C library's
counted forward operations on an MCU profile. The static Pareto front is score vs cycles. M_l
is the front model with the largest gain

    G_i = (P(M_i) - P(M_{i-1})) / (C(M_i) - C(M_{i-1}))                     (eq. 5)

(front ordered by increasing score) among those within ``score_drop`` of the best score.
Following the paper's caveat that a too small M_l leaves M_s unable to estimate its scores,
M_l must also keep ``min_small_channels`` channels per conv layer at some candidate width.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fedhar.adaptive.export import export_f32
from fedhar.adaptive.memory import static_bytes
from fedhar.adaptive.modes import forward_ops, pareto_mask
from fedhar.adaptive.slim import SlimNet, active, build_slim, predict_logits, train
from fedhar.mcu import McuProfile
from fedhar.metrics import score
from fedhar.models.spec import ModelSpec, daghero_cnn
from fedhar.ondevice.slim_infer import SlimNetC


@dataclass(frozen=True)
class Candidate:
    """One trained static grid model.

    Attributes:
        channels, kernel: its conv output channels and kernel size.
        f1_val, f1_test: macro-F1 on the validation and test windows.
        cycles, energy_uj: one inference on the profile, from counted float32 operations.
        macs: counted MACs of one inference.
        bytes: deployed int8 bytes (:func:`fedhar.adaptive.memory.static_bytes`).
    """

    channels: tuple[int, ...]
    kernel: int
    f1_val: float
    f1_test: float
    cycles: float
    energy_uj: float
    macs: int
    bytes: int

    @property
    def label(self) -> str:
        """Short name, e.g. ``C16-32-32 K7``."""
        return "C" + "-".join(str(c) for c in self.channels) + f" K{self.kernel}"

    def to_row(self) -> dict[str, Any]:
        """Plain data of the candidate (one line of the study's ``grid.jsonl``)."""
        return asdict(self)

    @staticmethod
    def from_row(row: Mapping[str, Any]) -> Candidate:
        """The candidate of a :meth:`to_row` row (read back from JSON)."""
        return Candidate(**{**row, "channels": tuple(row["channels"])})


def conv_shape(spec: ModelSpec) -> tuple[tuple[int, ...], int]:
    """A grid model's conv output channels and its kernel size (the same in every layer)."""
    conv = [layer for layer in spec.layers if layer.kind == "conv1d"]
    return tuple(layer.out_channels for layer in conv), conv[0].kernel


def grid_specs(
    in_channels: int,
    in_length: int,
    n_classes: int,
    channels: list[list[int]],
    kernels: list[int],
    pool: int,
) -> list[ModelSpec]:
    """The grid's model specs: every channel triple with every kernel (same K in all layers)."""
    return [
        daghero_cnn(in_channels, in_length, n_classes, tuple(c), (k,) * len(c), pool)
        for k in kernels
        for c in channels
    ]


def evaluate_static(
    spec: ModelSpec,
    data: dict[str, tuple[np.ndarray, np.ndarray]],
    profile: McuProfile,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
) -> tuple[Candidate, SlimNet]:
    """Trains one static model on ``data["train"]`` and scores it on ``"val"`` and ``"test"``
    (each ``(x [N, C, T], y [N])``)."""
    net = build_slim(spec, (1.0,), seed)
    train(net, *data["train"], epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    f1 = {}
    for part in ("val", "test"):
        x, y = data[part]
        f1[part] = score(y, predict_logits(net, x, 1.0).argmax(axis=1), spec.n_classes).macro_f1
    ops = forward_ops(SlimNetC(export_f32(net, 1.0)))
    cost = profile.cost(ops)
    channels, kernel = conv_shape(spec)
    return (
        Candidate(
            channels,
            kernel,
            f1["val"],
            f1["test"],
            cost.cycles,
            cost.joules * 1e6,
            ops.macs,
            static_bytes(net),
        ),
        net,
    )


def front(cands: list[Candidate], part: str) -> np.ndarray:
    """Pareto marks ``[len(cands)]`` of score (``f1_val`` or ``f1_test``) vs cycles."""
    scores = np.array([getattr(c, f"f1_{part}") for c in cands])
    return pareto_mask(scores, np.array([c.cycles for c in cands]))


def gains(cands: list[Candidate], on_front: np.ndarray) -> dict[int, float]:
    """Eq. (5) gain of every validation-front model but the least accurate: index → G_i in
    F1 per cycle."""
    idx = sorted(np.flatnonzero(on_front), key=lambda i: (cands[i].f1_val, cands[i].cycles))
    out = {}
    for prev, cur in zip(idx, idx[1:], strict=False):
        d_cost = cands[cur].cycles - cands[prev].cycles
        out[int(cur)] = (cands[cur].f1_val - cands[prev].f1_val) / max(d_cost, 1e-12)
    return out


def small_fits(channels: tuple[int, ...], width: float, min_channels: int) -> bool:
    """True when M_s at ``width`` keeps at least ``min_channels`` channels in every conv."""
    return all(active(c, width) >= min_channels for c in channels)


def choose_large(
    cands: list[Candidate], score_drop: float, eligible: list[bool] | None = None
) -> tuple[int, dict[int, float]]:
    """Index of M_l: the largest-gain validation-front model among those with ``f1_val`` at
    least ``best - score_drop`` (and ``eligible``, when given); with no gain among them, the
    cheapest of them. Also returns the gains.

    Raises:
        ValueError: when no front model in the score range is eligible.
    """
    on_front = front(cands, "val")
    g = gains(cands, on_front)
    best = max(c.f1_val for c in cands)
    in_range = [
        int(i)
        for i in np.flatnonzero(on_front)
        if cands[i].f1_val >= best - score_drop and (eligible is None or eligible[i])
    ]
    if not in_range:
        raise ValueError(
            "adaptive: no static Pareto model within score_drop of the best one can host M_s "
            "(raise score_drop, lower min_small_channels, or add wider grid_channels)"
        )
    with_gain = [i for i in in_range if i in g]
    if with_gain:
        return max(with_gain, key=lambda i: g[i]), g
    return min(in_range, key=lambda i: cands[i].cycles), g
