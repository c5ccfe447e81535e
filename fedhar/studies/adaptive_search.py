"""Static architecture grid over the Fig. 4a template and the choice of M_l (eq. (5)).

Every grid model is trained (float32, cached by content: :mod:`fedhar.studies.adaptive_cache`),
scored by macro-F1 in float32 and int8, and priced from the C library's counted forward
operations on an MCU profile and, when the emulator is installed, from one window executed on
the emulated Cortex-M4F (:mod:`fedhar.adaptive.executed`). The static Pareto front is score vs
cycles. M_l
is the front model with the largest gain

    G_i = (P(M_i) - P(M_{i-1})) / (C(M_i) - C(M_{i-1}))                     (eq. 5)

(front ordered by increasing score) among those within ``score_drop`` of the best score.
Following the paper's caveat that a too small M_l leaves M_s unable to estimate its scores,
M_l must also keep ``min_small_channels`` channels per conv layer at some candidate width.
:func:`large_candidates` lists every model in that range (on the front, or anywhere in the grid
with ``large_pool: range``), for the study's hypervolume choices, which convert each and keep
the best adaptive trade-off.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from fedhar.adaptive.executed import execute_window
from fedhar.adaptive.export import export_f32
from fedhar.adaptive.memory import static_bytes
from fedhar.adaptive.modes import forward_ops, pareto_mask
from fedhar.adaptive.quant import quantize, quantize_weights
from fedhar.adaptive.slim import SlimNet, active
from fedhar.mcu import McuProfile
from fedhar.metrics import score
from fedhar.models.spec import ModelSpec, daghero_cnn
from fedhar.ondevice.slim_infer import SlimNetC


@dataclass(frozen=True)
class Candidate:
    """One trained static grid model.

    Attributes:
        channels, kernel, pool: its conv output channels, kernel size and max-pool size.
        f1_val, f1_test: float32 macro-F1 on the validation and test windows.
        cycles, energy_uj: one inference on the profile, from counted float32 operations.
        macs: counted MACs of one inference.
        bytes: deployed int8 bytes (:func:`fedhar.adaptive.memory.static_bytes`).
        f1_val_int8, f1_test_int8: the same scores of its int8 kernels.
        executed: cycles of one window executed on the emulated Cortex-M4F by precision
            (``float32``, ``int8``); empty when the emulator is not installed.
    """

    channels: tuple[int, ...]
    kernel: int
    f1_val: float
    f1_test: float
    cycles: float
    energy_uj: float
    macs: int
    bytes: int
    pool: int = 2
    f1_val_int8: float = float("nan")
    f1_test_int8: float = float("nan")
    executed: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Short name, e.g. ``C16-32-32 K7`` (``P4`` appended for a pool other than 2)."""
        name = "C" + "-".join(str(c) for c in self.channels) + f" K{self.kernel}"
        return name if self.pool == 2 else f"{name} P{self.pool}"

    def to_row(self) -> dict[str, Any]:
        """Plain data of the candidate (one line of the study's ``grid.jsonl``)."""
        return asdict(self)

    @staticmethod
    def from_row(row: Mapping[str, Any]) -> Candidate:
        """The candidate of a :meth:`to_row` row (read back from JSON; null scores are NaN)."""
        nan = {k: float("nan") for k in ("f1_val_int8", "f1_test_int8") if row.get(k) is None}
        return Candidate(**{**row, **nan, "channels": tuple(row["channels"])})


def conv_shape(spec: ModelSpec) -> tuple[tuple[int, ...], int, int]:
    """A grid model's conv output channels, its kernel size and its pool size (the same in
    every layer)."""
    conv = [layer for layer in spec.layers if layer.kind == "conv1d"]
    pools = [layer.kernel for layer in spec.layers if layer.kind == "maxpool1d"]
    return tuple(layer.out_channels for layer in conv), conv[0].kernel, pools[0] if pools else 1


def channel_triples(values: list[int]) -> list[list[int]]:
    """Every non-decreasing triple ``c1 <= c2 <= c3`` of ``values``."""
    return [list(t) for t in itertools.combinations_with_replacement(sorted(set(values)), 3)]


def grid_specs(
    in_channels: int,
    in_length: int,
    n_classes: int,
    channels: list[list[int]],
    kernels: list[int],
    pools: list[int],
) -> list[ModelSpec]:
    """The grid's model specs: every channel triple with every kernel and every pool size
    (the same K and pool in all layers)."""
    return [
        daghero_cnn(in_channels, in_length, n_classes, tuple(c), (k,) * len(c), p)
        for p in pools
        for k in kernels
        for c in channels
    ]


def _f1(runner: SlimNetC, x: np.ndarray, y: np.ndarray, n_classes: int) -> float:
    return score(y, runner.forward(x)[0].argmax(axis=1), n_classes).macro_f1


def evaluate_static(
    net: SlimNet,
    data: dict[str, tuple[np.ndarray, np.ndarray]],
    profile: McuProfile,
    calib_x: np.ndarray,
    executed_profile: McuProfile | None,
) -> Candidate:
    """Scores a trained static model ``net`` on ``data["val"]`` and ``"test"`` (each
    ``(x [N, C, T], y [N])``) through its float32 and int8 C kernels, prices one inference on
    ``profile`` from counted operations and, with ``executed_profile``, executes one window of
    each precision on the emulator."""
    n_classes = net.spec.n_classes
    f32 = export_f32(net, 1.0)
    s8 = quantize(net, 1.0, calib_x, quantize_weights(net))
    runners = {"": SlimNetC(f32), "_int8": SlimNetC(s8)}
    f1 = {
        f"{part}{q}": _f1(r, *data[part], n_classes)
        for part in ("val", "test")
        for q, r in runners.items()
    }
    ops = forward_ops(runners[""])
    cost = profile.cost(ops)
    executed = {}
    if executed_profile is not None:
        executed = {
            "float32": execute_window(f32, executed_profile).net.cycles,
            "int8": execute_window(s8, executed_profile).net.cycles,
        }
    channels, kernel, pool = conv_shape(net.spec)
    return Candidate(
        channels,
        kernel,
        f1["val"],
        f1["test"],
        cost.cycles,
        cost.joules * 1e6,
        ops.macs,
        static_bytes(net),
        pool,
        f1["val_int8"],
        f1["test_int8"],
        executed,
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


def large_candidates(
    cands: list[Candidate],
    score_drop: float,
    eligible: list[bool] | None = None,
    pool: str = "front",
) -> list[int]:
    """Indices of the models with ``f1_val`` at least ``best - score_drop`` (and
    ``eligible``, when given), in grid order: the models M_l may be. ``pool`` ``front`` keeps
    the validation-front ones only; ``range`` keeps every grid model.

    Raises:
        ValueError: when no model of the pool in the score range is eligible.
    """
    in_pool = front(cands, "val") if pool == "front" else np.ones(len(cands), dtype=bool)
    best = max(c.f1_val for c in cands)
    in_range = [
        int(i)
        for i in np.flatnonzero(in_pool)
        if cands[i].f1_val >= best - score_drop and (eligible is None or eligible[i])
    ]
    if not in_range:
        kind = "static Pareto model" if pool == "front" else "grid model"
        raise ValueError(
            f"adaptive: no {kind} within score_drop of the best one can host M_s "
            "(raise score_drop, lower min_small_channels, or add wider grid_channels)"
        )
    return in_range


def choose_large(
    cands: list[Candidate], score_drop: float, eligible: list[bool] | None = None
) -> tuple[int, dict[int, float]]:
    """Index of M_l: the largest-gain model of :func:`large_candidates`; with no gain among
    them, the cheapest of them. Also returns the gains.

    Raises:
        ValueError: when no front model in the score range is eligible.
    """
    in_range = large_candidates(cands, score_drop, eligible)
    g = gains(cands, front(cands, "val"))
    with_gain = [i for i in in_range if i in g]
    if with_gain:
        return max(with_gain, key=lambda i: g[i]), g
    return min(in_range, key=lambda i: cands[i].cycles), g
