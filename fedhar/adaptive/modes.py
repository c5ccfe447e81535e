"""Operating modes of an adaptive network: the Th sweep, eq. (3) costs and Pareto marks.

Costs come from the operations the C library counts for one forward pass at each width and for
the policy, priced by an MCU profile:

    C(Th) = C(M_s) + C(policy) + (1 - P_e(Th)) · C(M_l)                    (eq. 3)

The modes table is what the device simulation reads to map a threshold to accuracy and cost.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from fedhar.mcu import Cost, McuProfile
from fedhar.metrics import score
from fedhar.ondevice.estimator import OpCounts
from fedhar.ondevice.slim_infer import SlimNetC, score_margin

MODE_COLUMNS: tuple[str, ...] = (
    "th",
    "f1",
    "accuracy",
    "p_easy",
    "cycles_avg",
    "seconds_avg",
    "energy_uj_avg",
    "f1_int8",
    "p_easy_int8",
    "pareto",
)


@dataclass(frozen=True)
class Outputs:
    """What M_s, the policy and M_l say on a set of windows (every window through both).

    Attributes:
        pred_small, pred_large: ``[N]`` int64 class predictions of M_s and M_l.
        margin: ``[N]`` float32 score margin of M_s's softmax.
    """

    pred_small: np.ndarray
    pred_large: np.ndarray
    margin: np.ndarray


@dataclass(frozen=True)
class ExpectedCost:
    """Per-inference costs of the three parts of eq. (3) on one MCU profile."""

    small: Cost
    policy: Cost
    large: Cost

    def at(self, p_easy: float) -> Cost:
        """Expected cost per inference when a share ``p_easy`` of inputs stops after M_s."""
        hard = 1.0 - p_easy
        return Cost(
            self.small.cycles + self.policy.cycles + hard * self.large.cycles,
            self.small.seconds + self.policy.seconds + hard * self.large.seconds,
            self.small.joules + self.policy.joules + hard * self.large.joules,
        )


@dataclass(frozen=True)
class Mode:
    """One operating mode (one threshold). Costs are averages per inference; ``f1_int8`` and
    ``p_easy_int8`` are the same threshold on the int8 kernels."""

    th: float
    f1: float
    accuracy: float
    p_easy: float
    cycles_avg: float
    seconds_avg: float
    energy_uj_avg: float
    f1_int8: float
    p_easy_int8: float
    pareto: bool

    def row(self) -> dict[str, float | bool]:
        """Plain data, keys in :data:`MODE_COLUMNS` order."""
        return asdict(self)


def forward_ops(model: SlimNetC) -> OpCounts:
    """Counted operations of one forward pass of ``model`` (one window; counts do not depend
    on the data)."""
    m = model.model
    _, ops = model.forward(np.zeros((1, m.in_channels, m.in_length), np.float32))
    return ops


def policy_ops(n_classes: int) -> OpCounts:
    """Counted operations of the score-margin policy on one input."""
    _, _, _, ops = score_margin(np.zeros((1, n_classes), np.float32), 0.5)
    return ops


def expected_cost(small: SlimNetC, large: SlimNetC, profile: McuProfile) -> ExpectedCost:
    """Prices M_s, the policy and M_l on ``profile`` from the C library's counts."""
    return ExpectedCost(
        profile.cost(forward_ops(small)),
        profile.cost(policy_ops(small.n_classes)),
        profile.cost(forward_ops(large)),
    )


def collect_outputs(small: SlimNetC, large: SlimNetC, x: np.ndarray) -> Outputs:
    """Runs M_s, the policy and M_l on every window of ``x [N, C, T]`` in the C library."""
    logits_s, _ = small.forward(x)
    logits_l, _ = large.forward(x)
    margin, argmax, _, _ = score_margin(logits_s, 0.0)
    return Outputs(argmax.astype(np.int64), logits_l.argmax(axis=1).astype(np.int64), margin)


def thresholds(n: int = 100, th_min: float = 1e-3) -> np.ndarray:
    """``n`` thresholds log-spaced from ``th_min`` to 1 (the paper's 100-value sweep)."""
    if n < 2 or not 0.0 < th_min < 1.0:
        raise ValueError(f"need n >= 2 and th_min in (0, 1), got n={n}, th_min={th_min}")
    return np.logspace(np.log10(th_min), 0.0, n)


def pareto_mask(score_values: np.ndarray, cost_values: np.ndarray) -> np.ndarray:
    """Pareto-optimal points (higher score, lower cost): ``[N]`` bool. A point is marked when no
    other point has lower-or-equal cost and higher-or-equal score; of identical points, only the
    first (lowest index) is marked, so repeated operating modes count once."""
    s = np.asarray(score_values, dtype=np.float64)
    c = np.asarray(cost_values, dtype=np.float64)
    order = np.lexsort((np.arange(len(s)), -s, c))
    mask = np.zeros(len(s), dtype=bool)
    best = -np.inf
    for i in order:
        if s[i] > best:
            mask[i] = True
            best = s[i]
    return mask


def hypervolume(
    score_values: np.ndarray, cost_values: np.ndarray, ref_score: float, ref_cost: float
) -> float:
    """Area dominated by the points' Pareto front above ``ref_score`` and below ``ref_cost``
    (score × cost units): the larger, the better the trade-off."""
    s = np.asarray(score_values, dtype=np.float64)
    c = np.asarray(cost_values, dtype=np.float64)
    front = np.flatnonzero(pareto_mask(s, c))
    front = front[np.argsort(c[front])]
    area = 0.0
    for k, i in enumerate(front):
        next_cost = c[front[k + 1]] if k + 1 < len(front) else ref_cost
        area += max(0.0, min(next_cost, ref_cost) - c[i]) * max(0.0, s[i] - ref_score)
    return area


def sweep(
    y: np.ndarray,
    outputs: Outputs,
    costs: ExpectedCost,
    ths: np.ndarray,
    n_classes: int,
    outputs_int8: Outputs | None = None,
) -> list[Mode]:
    """The modes table: for every threshold, macro-F1, P_e and eq. (3) costs per inference,
    then Pareto marks over (f1, cycles_avg). With ``outputs_int8``, also the int8 F1 and P_e."""
    rows = []
    for th in ths:
        easy = outputs.margin > th
        pred = np.where(easy, outputs.pred_small, outputs.pred_large)
        s = score(y, pred, n_classes)
        p_easy = float(easy.mean())
        cost = costs.at(p_easy)
        f1_q, pe_q = float("nan"), float("nan")
        if outputs_int8 is not None:
            easy_q = outputs_int8.margin > th
            pred_q = np.where(easy_q, outputs_int8.pred_small, outputs_int8.pred_large)
            f1_q, pe_q = score(y, pred_q, n_classes).macro_f1, float(easy_q.mean())
        rows.append((float(th), s.macro_f1, s.accuracy, p_easy, cost, f1_q, pe_q))
    mask = pareto_mask(np.array([r[1] for r in rows]), np.array([r[4].cycles for r in rows]))
    return [
        Mode(th, f1, acc, pe, cost.cycles, cost.seconds, cost.joules * 1e6, f1_q, pe_q, bool(m))
        for (th, f1, acc, pe, cost, f1_q, pe_q), m in zip(rows, mask, strict=True)
    ]


def replicate_indices(y: np.ndarray, cls: int, factor: int) -> np.ndarray:
    """Indices ``[N + (factor - 1) · n_cls]`` into windows with labels ``y [N]`` that list every
    window once and every window of class ``cls`` ``factor - 1`` more times (Fig. 12's test
    set with that class replicated ``factor``×)."""
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    y = np.asarray(y)
    extra = np.tile(np.flatnonzero(y == cls), factor - 1)
    return np.concatenate([np.arange(len(y)), extra])
