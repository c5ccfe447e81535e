"""The deterministic training loop of QAT and of the mixed-precision search.

Adam over parameter groups, (class-weighted) cross-entropy plus an optional penalty and an
optional distillation term, a batch order drawn from a generator seeded by ``seed``, and
torch's deterministic kernels: the same inputs and seed give bit-identical parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedhar.models.training import class_weights, deterministic_torch


@dataclass(frozen=True)
class Schedule:
    """How long and how fast to train.

    Attributes:
        epochs: passes over the training windows (>= 1).
        lr: Adam learning rate of the weights and PACT clips (> 0).
        batch_size: windows per step (>= 1).
        seed: seeds the batch order.
        class_weighted: weigh the cross-entropy by inverse class frequency
            (:func:`~fedhar.models.training.class_weights`), as float pretraining does.
    """

    epochs: int
    lr: float
    batch_size: int
    seed: int
    class_weighted: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}"
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


@dataclass(frozen=True)
class SoftTargets:
    """A teacher's logits for knowledge distillation (Hinton et al. 2015).

    Attributes:
        logits: ``[N, K]`` teacher logits, one row per training window, in the windows' order.
        weight: w in ``(1 - w) CE + w T^2 KL(softmax(teacher / T) || softmax(model / T))``,
            in ``[0, 1]``.
        temperature: T (> 0); ``T^2`` keeps the term's gradients on the cross-entropy's scale.
    """

    logits: np.ndarray
    weight: float
    temperature: float

    def __post_init__(self) -> None:
        if not 0 <= self.weight <= 1 or not self.temperature > 0:
            raise ValueError(
                f"distillation weight must lie in [0, 1] and temperature be > 0, got "
                f"{self.weight}, {self.temperature}"
            )

    def loss(self, hard: torch.Tensor, logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """The mixed loss of a batch: ``hard`` its cross-entropy, ``logits [B, K]`` the model's
        on the windows ``idx`` (indices into :attr:`logits`)."""
        t = self.temperature
        teacher = torch.from_numpy(np.ascontiguousarray(self.logits[idx.numpy()], np.float32))
        kl = F.kl_div(
            F.log_softmax(logits / t, dim=1), F.softmax(teacher / t, dim=1), reduction="batchmean"
        )
        return (1 - self.weight) * hard + self.weight * t * t * kl


def check_xy(x: np.ndarray, y: np.ndarray, channels: int, length: int, n_classes: int) -> None:
    """Raises ValueError unless ``x`` is ``[N, channels, length]`` and ``y`` is ``[N]`` of
    labels in ``[0, n_classes)`` with N >= 1."""
    if np.ndim(x) != 3 or tuple(np.shape(x)[1:]) != (channels, length):
        raise ValueError(f"windows must be [N, {channels}, {length}], got {np.shape(x)}")
    if np.shape(y) != (len(x),) or len(x) == 0:
        raise ValueError(f"labels must be [{len(x)}] for {len(x)} windows, got {np.shape(y)}")
    if np.min(y) < 0 or np.max(y) >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got {np.min(y)}..{np.max(y)}")


def train(
    net: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    schedule: Schedule,
    groups: Sequence[dict[str, Any]],
    penalty: Callable[[], torch.Tensor] | None = None,
    after_epoch: Callable[[int], None] | None = None,
    soft: SoftTargets | None = None,
) -> list[float]:
    """Trains ``net`` (float32) on windows ``x [N, C, T]`` and labels ``y [N]``.

    Args:
        groups: Adam parameter groups (``params`` and optionally their own ``lr``).
        penalty: added to every batch's loss (e.g. EdMIPS's ``λ · cost``).
        after_epoch: called with the 1-based epoch after each epoch.
        soft: a teacher's logits on ``x`` to distil from (unset: cross-entropy alone).

    Returns:
        The mean batch loss of each epoch (nats, penalty included).
    """
    if soft is not None and soft.logits.shape != (len(x), n_classes):
        raise ValueError(f"teacher logits must be [{len(x)}, {n_classes}], got {soft.logits.shape}")
    with deterministic_torch():
        weights = class_weights(y, n_classes) if schedule.class_weighted else torch.ones(n_classes)
        loss_fn = nn.CrossEntropyLoss(weight=weights)
        opt = torch.optim.Adam(list(groups), lr=schedule.lr)
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
        gen = torch.Generator().manual_seed(schedule.seed)
        losses = []
        net.train()
        for epoch in range(1, schedule.epochs + 1):
            order = torch.randperm(len(xt), generator=gen)
            total, steps = 0.0, 0
            for start in range(0, len(order), schedule.batch_size):
                idx = order[start : start + schedule.batch_size]
                logits = net(xt[idx])
                loss = loss_fn(logits, yt[idx])
                if soft is not None:
                    loss = soft.loss(loss, logits, idx)
                if penalty is not None:
                    loss = loss + penalty()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach())
                steps += 1
            losses.append(total / steps)
            if after_epoch is not None:
                after_epoch(epoch)
                net.train()
        net.eval()
        return losses
