"""Classification metrics of the papers, computed from the confusion matrix.

The confusion matrix has a row and a column for every class ``0..n_classes-1``, so a class
that is absent from a user's test set is still there. In the macro-F1, a class that is neither
true nor predicted (F1 = 0/0) is left out of the average, while a class that is predicted but
never true counts with F1 = 0: scikit-learn's ``f1_score(labels=range(n_classes),
average="macro", zero_division=nan)``, which does not punish a user for lacking an activity.
Balanced accuracy is the mean recall over the classes present in the true labels, as
scikit-learn's ``balanced_accuracy_score``. ``tests/test_metrics.py`` checks all of them against
scikit-learn; computing them here keeps scikit-learn's import (over a second) out of every
process that scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scores:
    """Scores of one set of predictions.

    Attributes:
        macro_f1: unweighted mean of the per-class F1 over the classes present in the true or
            the predicted labels, in [0, 1].
        accuracy: share of correct predictions, in [0, 1].
        balanced_accuracy: mean recall over the classes present in the true labels.
        confusion: ``[n_classes, n_classes]`` counts; row = true class, column = predicted.
        n: number of predictions scored.
    """

    macro_f1: float
    accuracy: float
    balanced_accuracy: float
    confusion: list[list[int]]
    n: int


def score(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> Scores:
    """Scores predictions ``y_pred`` ``[N]`` against ``y_true`` ``[N]`` (class indices).

    Raises:
        ValueError: on empty or mismatched inputs, or a label outside ``[0, n_classes)``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_true and y_pred must be 1-D of equal length, got {y_true.shape} and {y_pred.shape}"
        )
    if y_true.size == 0:
        raise ValueError("cannot score an empty set of predictions")
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    for name, arr in (("y_true", y_true), ("y_pred", y_pred)):
        if arr.min() < 0 or arr.max() >= n_classes:
            raise ValueError(
                f"{name} holds labels outside [0, {n_classes}): min {arr.min()}, max {arr.max()}"
            )
    cm = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )
    tp = np.diag(cm).astype(np.float64)
    true_count, pred_count = cm.sum(axis=1), cm.sum(axis=0)
    f1_denominator = true_count + pred_count  # 2 tp + fp + fn
    seen = f1_denominator > 0
    present = true_count > 0
    return Scores(
        macro_f1=float(np.mean(2 * tp[seen] / f1_denominator[seen])),
        accuracy=float(tp.sum() / y_true.size),
        balanced_accuracy=float(np.mean(tp[present] / true_count[present])),
        confusion=cm.astype(int).tolist(),
        n=int(y_true.size),
    )
