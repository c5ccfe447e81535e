"""FedAvg's server side for federated pretraining: the sample-weighted mean of the clients'
parameters, and the pooled normalizer and class counts from statistics the clients send.

A client never sends a window. Before the first round it sends one float64 vector of
sufficient statistics (:func:`client_statistics`): its window count, per channel the sum and
the sum of squares of its samples, and its windows per class. Summed over the clients they
give the pooled per-channel mean and standard deviation and the pooled class counts
(:func:`pooled_statistics`), the same as fitting them on the pooled windows up to float64
rounding (``var = E[x^2] - E[x]^2``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fedhar.data.preprocess import Normalizer


def weighted_average(
    states: Sequence[Mapping[str, np.ndarray]], counts: Sequence[int]
) -> dict[str, np.ndarray]:
    """FedAvg: ``sum_k n_k w_k / sum_k n_k`` per parameter, accumulated in float64 and
    returned as float32 arrays of the parameters' shapes.

    Args:
        states: each client's parameters, name → float32 array; every client the same names
            and shapes.
        counts: each client's training windows ``n_k`` (> 0).

    Raises:
        ValueError: no client, a count that is not positive, or clients whose parameter names
            or shapes differ.
    """
    if not states or len(states) != len(counts):
        raise ValueError(f"expected one count per client state, got {len(states)} states and "
                         f"{len(counts)} counts")  # fmt: skip
    if any(n <= 0 for n in counts):
        raise ValueError(f"expected positive window counts, got {list(counts)}")
    names = list(states[0])
    total = float(sum(counts))
    out: dict[str, np.ndarray] = {}
    for name in names:
        acc = np.zeros(np.shape(states[0][name]), dtype=np.float64)
        for state, n in zip(states, counts, strict=True):
            if set(state) != set(names) or np.shape(state[name]) != acc.shape:
                raise ValueError(f"client parameters differ in names or shapes at {name!r}")
            acc += float(n) * np.asarray(state[name], dtype=np.float64)
        out[name] = (acc / total).astype(np.float32)
    return out


def client_statistics(x: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """A client's statistics ``[1 + 2C + K]`` float64: its window count N, the per-channel
    sums ``[C]`` and sums of squares ``[C]`` of its raw windows ``x [N, C, T]`` (sensor units),
    and its windows per class ``[K]`` (labels ``y [N]``)."""
    values = np.asarray(x, dtype=np.float64)
    return np.concatenate(
        [
            [float(len(values))],
            values.sum(axis=(0, 2)),
            (values * values).sum(axis=(0, 2)),
            np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes).astype(np.float64),
        ]
    )


@dataclass(frozen=True)
class Pooled:
    """What the server learns from the clients' statistics.

    Attributes:
        normalizer: per-channel mean and std over every client's samples.
        class_counts: windows per class over the clients ``[K]``.
    """

    normalizer: Normalizer
    class_counts: np.ndarray


def pooled_statistics(stats: Sequence[np.ndarray], channels: int, length: int) -> Pooled:
    """Sums the clients' :func:`client_statistics` (windows of ``channels`` × ``length``
    samples) into the pooled normalizer (std 1.0 where a channel is constant, as
    :meth:`Normalizer.fit`) and class counts."""
    total = np.sum(np.stack(stats), axis=0)
    n_values = total[0] * length
    sums = total[1 : 1 + channels]
    squares = total[1 + channels : 1 + 2 * channels]
    mean = sums / n_values
    std = np.sqrt(np.maximum(squares / n_values - mean * mean, 0.0))
    std = np.where(std > 1e-12, std, 1.0)
    return Pooled(Normalizer(mean, std), total[1 + 2 * channels :].astype(np.int64))
