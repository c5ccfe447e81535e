"""An adaptive front set against the static Pareto front at the same cost or the same score.

The static front is its Pareto points ordered by cost, joined by straight lines (linear in
cycles, as time-sharing between two neighbouring static models would achieve on average):

- at a cost between two front points its score is the line's; above the dearest point it
  stays at that point's score (the best static model is affordable); below the cheapest point
  there is no static model, so no comparison is made there;
- at a score up to the cheapest point's, the cost of reaching it is the cheapest point's; at a
  score between two points, the line's cost; above the best static score there is none.
"""

from __future__ import annotations

import numpy as np

from fedhar.adaptive.modes import pareto_mask


def front_line(score_values: np.ndarray, cost_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Pareto points of ``(score, cost)`` ``[N]`` arrays as ``(cost [M], score [M])``
    ordered by increasing cost (and so by increasing score)."""
    s = np.asarray(score_values, dtype=np.float64)
    c = np.asarray(cost_values, dtype=np.float64)
    on = np.flatnonzero(pareto_mask(s, c))
    on = on[np.argsort(c[on], kind="stable")]
    return c[on], s[on]


def score_at(front_cost: np.ndarray, front_score: np.ndarray, cost: float) -> float:
    """The static front's score at ``cost`` cycles; NaN below its cheapest point."""
    if len(front_cost) == 0 or cost < front_cost[0]:
        return float("nan")
    return float(np.interp(cost, front_cost, front_score))


def cost_at(front_cost: np.ndarray, front_score: np.ndarray, score_value: float) -> float:
    """Cycles the static front needs to reach ``score_value``; NaN above its best score."""
    if len(front_cost) == 0 or score_value > front_score[-1]:
        return float("nan")
    if score_value <= front_score[0]:
        return float(front_cost[0])
    k = int(np.searchsorted(front_score, score_value, side="left"))
    s0, s1 = front_score[k - 1], front_score[k]
    c0, c1 = front_cost[k - 1], front_cost[k]
    return float(c0 + (score_value - s0) / (s1 - s0) * (c1 - c0))


def max_gap_to_static_front(
    modes_score: np.ndarray,
    modes_cost: np.ndarray,
    static_score: np.ndarray,
    static_cost: np.ndarray,
) -> float:
    """Largest ``static front score - mode score`` at the mode's cost over the adaptive Pareto
    modes that are not cheaper than every static model (positive: the adaptive front lies
    below the static one there). NaN when no mode can be compared."""
    fc, fs = front_line(static_score, static_cost)
    mc, ms = front_line(modes_score, modes_cost)
    gaps = [score_at(fc, fs, c) - s for c, s in zip(mc, ms, strict=True)]
    gaps = [g for g in gaps if g == g]
    return max(gaps) if gaps else float("nan")


def cycles_saving_at_equal_f1(
    modes_score: np.ndarray,
    modes_cost: np.ndarray,
    static_score: np.ndarray,
    static_cost: np.ndarray,
) -> float:
    """Largest relative saving ``1 - mode cost / static cost at the mode's score`` over the
    adaptive Pareto modes whose score the static front reaches; negative when every such mode
    costs more than the static front. NaN when no mode can be compared."""
    fc, fs = front_line(static_score, static_cost)
    mc, ms = front_line(modes_score, modes_cost)
    savings = []
    for c, s in zip(mc, ms, strict=True):
        static = cost_at(fc, fs, s)
        if static == static:
            savings.append(1.0 - c / static)
    return max(savings) if savings else float("nan")
