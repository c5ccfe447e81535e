"""Classification metrics of the papers, computed through scikit-learn.

Metrics take explicit ``labels=range(n_classes)``, so a class that is absent from a user's test
set still has a row and a column in the confusion matrix. In the macro-F1, a class that is
neither true nor predicted (F1 = 0/0) is left out of the average (``zero_division=nan``), while a
class that is predicted but never true counts with F1 = 0. This is sklearn's default macro-F1
over the labels seen, and it does not punish a user for lacking an activity.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
)


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
    labels = list(range(n_classes))
    macro_f1 = f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=np.nan)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    with warnings.catch_warnings():
        # Warns when y_pred holds a class absent from y_true; that class is rightly ignored.
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(y_true, y_pred)
    return Scores(
        macro_f1=float(macro_f1),
        accuracy=float(accuracy_score(y_true, y_pred)),
        balanced_accuracy=float(balanced),
        confusion=cm.astype(int).tolist(),
        n=int(y_true.size),
    )
