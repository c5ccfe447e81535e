"""The score-margin policy (Daghero et al. 2022 eq. (4)) and the deployed adaptive classifier.

``SM = max(y_s) - 2nd_max(y_s)`` over the softmax of M_s's logits; ``SM > Th`` commits M_s's
answer (the input is "easy"), otherwise M_l runs on the same input. Both models and the policy
run in the C library (``fedhar/ondevice/slim_infer.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedhar.ondevice.estimator import OpCounts
from fedhar.ondevice.slim_infer import SlimNetC, score_margin


def decide(
    margin: np.ndarray, pred_small: np.ndarray, pred_large: np.ndarray, th: float
) -> tuple[np.ndarray, np.ndarray]:
    """Eq. (4) on precomputed outputs: ``(pred [N], easy [N])`` with ``easy = margin > th``."""
    easy = margin > th
    return np.where(easy, pred_small, pred_large), easy


@dataclass
class AdaptiveClassifier:
    """M_s and M_l of one variable-width network (C views sharing the same weight arrays)."""

    small: SlimNetC
    large: SlimNetC

    def classify(self, x: np.ndarray, th: float) -> tuple[np.ndarray, np.ndarray]:
        """Adaptive predictions on windows ``x [N, C, T]`` at threshold ``th`` in [0, 1]:
        ``(pred [N] int64, easy_mask [N] bool)``. M_l runs only on the inputs that are not easy."""
        pred, easy, _ = self.classify_counted(x, th)
        return pred, easy

    def classify_counted(self, x: np.ndarray, th: float) -> tuple[np.ndarray, np.ndarray, OpCounts]:
        """Like :meth:`classify`, also returning the operations the C library counted for the
        whole batch (M_s on all, the policy on all, M_l on the hard inputs)."""
        if not 0.0 <= th <= 1.0:
            raise ValueError(f"th must be in [0, 1], got {th}")
        logits_s, ops = self.small.forward(x)
        _, argmax, easy, ops_policy = score_margin(logits_s, th)
        pred = argmax.astype(np.int64)
        ops = ops + ops_policy
        hard = np.flatnonzero(~easy)
        if hard.size:
            logits_l, ops_large = self.large.forward(np.ascontiguousarray(x[hard]))
            pred[hard] = logits_l.argmax(axis=1)
            ops = ops + ops_large
        return pred, easy, ops
