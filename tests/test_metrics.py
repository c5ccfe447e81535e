"""Metrics agree with scikit-learn on hand-made and random cases, absent classes included."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from fedhar.metrics import score


def test_perfect_predictions() -> None:
    y = np.array([0, 1, 2, 2, 1])
    s = score(y, y, 3)
    assert s.macro_f1 == 1.0 and s.accuracy == 1.0 and s.balanced_accuracy == 1.0
    assert s.confusion == [[1, 0, 0], [0, 2, 0], [0, 0, 2]]
    assert s.n == 5


def test_hand_case_matches_sklearn() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0, 2])
    s = score(y_true, y_pred, 3)
    # class 0: P=1/2 R=1/2 F=1/2; class 1: P=2/3 R=1 F=4/5; class 2: P=1 R=2/3 F=4/5
    assert s.macro_f1 == pytest.approx((0.5 + 0.8 + 0.8) / 3)
    assert s.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert s.accuracy == pytest.approx(5 / 7)
    assert s.balanced_accuracy == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert s.confusion == confusion_matrix(y_true, y_pred).tolist()


def test_class_absent_from_both_is_left_out_of_macro_f1() -> None:
    # A user who never did class 3 or 4 (and the model never predicts them).
    y_true = np.array([0, 0, 1, 2])
    y_pred = np.array([0, 1, 1, 2])
    s = score(y_true, y_pred, 5)
    assert s.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert len(s.confusion) == 5 and all(len(row) == 5 for row in s.confusion)
    assert s.confusion[4] == [0, 0, 0, 0, 0]


def test_predicted_but_absent_class_counts_as_zero_f1() -> None:
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 3, 1, 1])
    s = score(y_true, y_pred, 4)
    expected = f1_score(y_true, y_pred, labels=[0, 1, 3], average="macro", zero_division=0)
    assert s.macro_f1 == pytest.approx(expected)
    assert s.macro_f1 == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)
    assert s.accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    assert s.balanced_accuracy == pytest.approx((0.5 + 1.0) / 2)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "n", "match"),
    [
        ([0, 1], [0], 2, "equal length"),
        ([], [], 2, "empty"),
        ([0, 2], [0, 1], 2, "outside"),
        ([0, 1], [0, -1], 2, "outside"),
    ],
)
def test_bad_inputs(y_true: list[int], y_pred: list[int], n: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        score(np.array(y_true), np.array(y_pred), n)


@given(
    st.integers(2, 7).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.lists(
                st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1, max_size=60
            ),
        )
    )
)
@settings(max_examples=300, deadline=None)
def test_random_predictions_match_sklearn(case: tuple[int, list[tuple[int, int]]]) -> None:
    """Every metric equals scikit-learn's on random labels, with absent and unpredicted
    classes, to float rounding."""
    k, pairs = case
    y_true = np.array([t for t, _ in pairs])
    y_pred = np.array([p for _, p in pairs])
    s = score(y_true, y_pred, k)
    labels = list(range(k))
    expected = f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=np.nan)
    assert s.macro_f1 == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert s.accuracy == pytest.approx(accuracy_score(y_true, y_pred), rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # y_pred holds a class absent from y_true
        balanced = balanced_accuracy_score(y_true, y_pred)
    assert s.balanced_accuracy == pytest.approx(balanced, rel=1e-12)
    assert s.confusion == confusion_matrix(y_true, y_pred, labels=labels).tolist()
