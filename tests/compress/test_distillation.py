"""The training loop's knowledge distillation (fedhar.compress.training.SoftTargets)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fedhar.compress.training import Schedule, SoftTargets, train

K = 4


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv1d(3, 8, 5), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 12, K))


def _windows(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(240, 3, 16)).astype(np.float32)
    return x, rng.integers(0, K, 240)


def _logits(net: nn.Module, x: np.ndarray) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def test_the_loss_is_hintons_mix_of_cross_entropy_and_tempered_kl() -> None:
    rng = np.random.default_rng(1)
    teacher, student = rng.normal(size=(6, K)) * 3, rng.normal(size=(6, K)) * 3
    soft = SoftTargets(teacher, weight=0.3, temperature=2.5)
    hard = torch.tensor(1.7, dtype=torch.float64)
    got = soft.loss(hard, torch.from_numpy(student), torch.arange(6)).item()

    def softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    p, q = softmax(teacher / 2.5), softmax(student / 2.5)
    kl = float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1)))
    assert got == pytest.approx(0.7 * 1.7 + 0.3 * 2.5**2 * kl, rel=1e-6)


def test_weight_zero_trains_bit_identically_to_no_teacher() -> None:
    x, y = _windows()
    soft = SoftTargets(_logits(_net(9), x), weight=0.0, temperature=4.0)
    plain, distilled = _net(1), _net(1)
    schedule = Schedule(3, 0.01, 32, 0)
    train(plain, x, y, K, schedule, [{"params": plain.parameters()}])
    train(distilled, x, y, K, schedule, [{"params": distilled.parameters()}], soft=soft)
    for a, b in zip(plain.parameters(), distilled.parameters(), strict=True):
        assert torch.equal(a, b)


def test_distillation_alone_teaches_the_teachers_function_not_the_labels() -> None:
    """Labels unrelated to the inputs: cross-entropy alone cannot learn the teacher's mapping,
    distillation at weight 1 does."""
    x, y = _windows()
    teacher = _logits(_net(9), x)
    agree = {}
    for weight in (0.0, 1.0):
        net = _net(1)
        train(
            net, x, y, K, Schedule(40, 0.01, 32, 0), [{"params": net.parameters()}],
            soft=SoftTargets(teacher, weight, 2.0),
        )  # fmt: skip
        agree[weight] = float(np.mean(_logits(net, x).argmax(1) == teacher.argmax(1)))
    assert agree[1.0] > 0.75
    assert agree[1.0] > agree[0.0] + 0.4


def test_teacher_logits_of_another_shape_are_refused() -> None:
    x, y = _windows()
    net = _net(1)
    with pytest.raises(ValueError, match=r"teacher logits must be \[240, 4\]"):
        train(
            net, x, y, K, Schedule(1, 0.01, 32, 0), [{"params": net.parameters()}],
            soft=SoftTargets(np.zeros((10, K), np.float32), 0.5, 4.0),
        )  # fmt: skip
    with pytest.raises(ValueError, match="weight must lie in"):
        SoftTargets(np.zeros((10, K)), 1.5, 4.0)
