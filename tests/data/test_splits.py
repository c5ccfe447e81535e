"""Chronological, LOSO, k-fold and validation splits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedhar.data.preprocess import make_windows
from fedhar.data.splits import kfold_users, loso_folds, split_chronological, validation_users
from fedhar.data.types import HarDataset, Segment, WindowSet


def _dataset(lengths: dict[tuple[str, int], list[int]]) -> HarDataset:
    segments = []
    for (user, label), sizes in lengths.items():
        for n in sizes:
            signal = np.zeros((n, 1), np.float32)
            segments.append(Segment(user, label, signal, 20.0, np.arange(n) / 20.0))
    return HarDataset("t", ["a", "b"], ["x"], 20.0, segments)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(20, 400), min_size=1, max_size=3),
    length=st.integers(20, 100),
    stride_ratio=st.sampled_from([0.25, 0.5, 1.0]),
    fraction=st.floats(0.1, 0.9),
)
def test_chronological_split_has_no_overlap_and_train_comes_first(
    sizes: list[int], length: int, stride_ratio: float, fraction: float
) -> None:
    ds = _dataset({("1", 0): sizes, ("1", 1): sizes[::-1], ("2", 0): sizes})
    ws = make_windows(ds, length, max(1, int(length * stride_ratio)))
    train, test = split_chronological(ws, fraction)
    for user in ("1", "2"):
        for cls in (0, 1):
            tr = train.start[(train.users == user) & (train.y == cls)]
            te = test.start[(test.users == user) & (test.y == cls)]
            n = np.count_nonzero((ws.users == user) & (ws.y == cls))
            if n == 0:
                continue
            assert te.size >= 1
            if tr.size:
                assert tr.max() + length <= te.min()  # no shared sample, train earlier
            assert tr.size + te.size >= n - int(
                np.ceil(length / max(1, int(length * stride_ratio)))
            )


def test_chronological_split_numbers() -> None:
    ds = _dataset({("1", 0): [1050]})
    ws = make_windows(ds, 100, 50)  # 20 windows
    train, test = split_chronological(ws, 0.5)
    assert len(test) == 10 and test.start.min() == 500
    assert len(train) == 9 and train.start.max() + 100 == 500  # the straddling window is dropped
    assert split_chronological(ws.subset(np.arange(1)), 0.5)[1].y.shape == (1,)


def test_chronological_split_keeps_user_and_class_blocks_apart() -> None:
    """User "1" class 10 and user "11" class 0 are different blocks (12 classes, as HAPT)."""
    ds = _dataset({("1", 10): [300], ("11", 0): [300]})
    ds.classes = [str(c) for c in range(12)]
    train, test = split_chronological(make_windows(ds, 100, 50), 0.5)  # 5 windows per block
    for part, per_block in ((train, 1), (test, 3)):
        blocks = sorted(zip(part.users.tolist(), part.y.tolist(), strict=True))
        assert blocks == [("1", 10)] * per_block + [("11", 0)] * per_block


def test_chronological_split_needs_start() -> None:
    ws = WindowSet(np.zeros((1, 1, 20)), np.zeros(1, np.int64), np.array(["1"]), np.zeros(1))
    with pytest.raises(ValueError, match="WindowSet.start"):
        split_chronological(ws, 0.5)
    with pytest.raises(ValueError, match="train_fraction"):
        split_chronological(ws, 1.0)


def test_loso_folds() -> None:
    folds = loso_folds(["10", "2", "1"])
    assert [f[0] for f in folds] == ["1", "2", "10"]
    assert folds[1] == ("2", ["1", "10"])
    with pytest.raises(ValueError):
        loso_folds(["1"])


def test_kfold_users_partitions_and_is_deterministic() -> None:
    users = [str(u) for u in range(1, 23)]
    folds = kfold_users(users, 5, seed=3)
    tests = [u for test, _ in folds for u in test]
    assert sorted(tests, key=int) == users
    assert all(
        set(test).isdisjoint(train) and len(test) + len(train) == 22 for test, train in folds
    )
    assert sorted(len(test) for test, _ in folds) == [4, 4, 4, 5, 5]
    assert kfold_users(list(reversed(users)), 5, seed=3) == folds
    assert kfold_users(users, 5, seed=4) != folds
    with pytest.raises(ValueError, match=r"k must be an integer in \[2, 22\]"):
        kfold_users(users, 23, seed=0)


def test_validation_users() -> None:
    users = [str(u) for u in range(1, 36)]
    val = validation_users(users, 0.2, seed=0)
    assert len(val) == 7 and set(val) <= set(users)
    assert validation_users(users[::-1], 0.2, seed=0) == val
    assert validation_users(users, 0.2, seed=1) != val
    assert len(validation_users(["1", "2"], 0.9, seed=0)) == 1
