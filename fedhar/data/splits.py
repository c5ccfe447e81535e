"""Train/test splits: chronological per user and activity, leave-one-subject-out, k-fold by
users, and validation users for early stopping. All are deterministic (by ``seed`` where
randomness is involved) and independent of the order in which users are given."""

from __future__ import annotations

import numpy as np

from fedhar.data.types import WindowSet


def _sorted_users(users: list[str]) -> list[str]:
    """Unique user ids, numeric ids sorted numerically, then the others."""
    unique = {str(u) for u in users}
    return sorted(unique, key=lambda u: (0, int(u), "") if u.isdigit() else (1, 0, u))


def split_chronological(ws: WindowSet, train_fraction: float) -> tuple[WindowSet, WindowSet]:
    """Splits each user's windows of each class in time: the first ``train_fraction`` of the
    windows of every (user, class) block go to train (TR_i), the rest to test (TS_i).

    No window of the train set shares a sample with a window of the test set: the split point
    of a block is the first sample of its first test window, and train windows that reach past
    it (overlapping windows, stride < length) are dropped. Each (user, class) block with at
    least one window keeps at least one test window when ``train_fraction < 1``.

    Args:
        ws: windows with ``order`` and ``start`` (as built by ``make_windows``).
        train_fraction: share of each block's windows for training, in (0, 1).

    Returns:
        ``(train, test)`` windows, each in the input's row order.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}")
    if ws.start is None:
        raise ValueError(
            "split_chronological needs WindowSet.start (window start sample indices); "
            "build windows with fedhar.data.preprocess.make_windows"
        )
    length = ws.x.shape[2]
    train = np.zeros(len(ws), dtype=bool)
    test = np.zeros(len(ws), dtype=bool)
    _, user_index = np.unique(ws.users, return_inverse=True)
    keys = user_index.reshape(-1).astype(np.int64) * (int(ws.y.max(initial=0)) + 1) + ws.y
    for key in np.unique(keys):
        rows = np.flatnonzero(keys == key)
        rows = rows[np.argsort(ws.order[rows], kind="stable")]
        n_train = min(int(round(train_fraction * rows.size)), rows.size - 1)
        boundary = ws.start[rows[n_train]]
        head = rows[:n_train]
        train[head[ws.start[head] + length <= boundary]] = True
        test[rows[n_train:]] = True
    return ws.subset(train), ws.subset(test)


def loso_folds(users: list[str]) -> list[tuple[str, list[str]]]:
    """Leave-one-subject-out folds: for each user (sorted), ``(test_user, pretraining_users)``
    where the pretraining users are all the others."""
    ordered = _sorted_users(users)
    if len(ordered) < 2:
        raise ValueError(f"loso_folds needs at least 2 users, got {len(ordered)}")
    return [(u, [v for v in ordered if v != u]) for u in ordered]


def kfold_users(users: list[str], k: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """``k`` folds of users: ``(test_users, train_users)`` per fold. Users are shuffled by
    ``seed`` and dealt into folds whose sizes differ by at most one; every user is a test
    user exactly once. Lists are sorted."""
    ordered = _sorted_users(users)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= len(ordered):
        raise ValueError(
            f"k must be an integer in [2, {len(ordered)}] (the number of users), got {k!r}"
        )
    perm = np.random.default_rng(seed).permutation(len(ordered))
    folds = np.array_split(perm, k)
    out = []
    for fold in folds:
        test = {ordered[i] for i in fold}
        out.append(([u for u in ordered if u in test], [u for u in ordered if u not in test]))
    return out


def validation_users(users: list[str], fraction: float, seed: int) -> list[str]:
    """The users held out for early stopping: ``round(fraction × n)`` of them (at least one,
    and at least one user left for training), chosen by ``seed``; sorted."""
    ordered = _sorted_users(users)
    if len(ordered) < 2:
        raise ValueError(f"validation_users needs at least 2 users, got {len(ordered)}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    n_val = min(max(1, int(round(fraction * len(ordered)))), len(ordered) - 1)
    chosen = set(np.random.default_rng(seed).permutation(len(ordered))[:n_val].tolist())
    return [u for i, u in enumerate(ordered) if i in chosen]


def split_by_users(
    ws: WindowSet, test_users: list[str], val_fraction: float, seed: int, key: str
) -> tuple[WindowSet, WindowSet, WindowSet]:
    """Train, validation and test windows of a user split: ``test_users`` test, a
    ``val_fraction`` of the others (:func:`validation_users`, by ``seed``) validate, the rest
    train. ``key`` names the setting that gave ``test_users`` in error messages.

    Raises:
        ValueError: a test user absent from the windows, or fewer than 2 other users.
    """
    present = _sorted_users(list(ws.users))
    missing = [u for u in test_users if u not in present]
    if missing:
        raise ValueError(
            f"{key}: users {missing} have no windows (users present: {' '.join(present)})"
        )
    others = [u for u in present if u not in test_users]
    if len(others) < 2:
        raise ValueError(
            f"{key}: expected at least 2 other users to train and validate on, got {others}"
        )
    val = validation_users(others, val_fraction, seed)
    users = np.asarray([str(u) for u in ws.users])
    is_test, is_val = np.isin(users, test_users), np.isin(users, val)
    return ws.subset(~is_test & ~is_val), ws.subset(is_val), ws.subset(is_test)
