"""Variable-width network: weight sharing, switchable BN, joint training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fedhar.adaptive.export import export_f32
from fedhar.adaptive.slim import (
    SlimNet,
    TrainOptions,
    active,
    build_slim,
    joint_step,
    parse_template,
    step_widths,
    train,
)
from fedhar.models.spec import cnn3, daghero_cnn


def small_net() -> SlimNet:
    return build_slim(
        daghero_cnn(3, 16, 3, channels=(8, 8, 16), kernels=(3, 3, 3)), (0.25, 0.5, 1.0), seed=0
    )


def test_widths_slice_the_same_storage() -> None:
    net = small_net()
    conv = net.layers["conv2"].weight
    for w in net.widths:
        c_in, c_out = net.conv_channels(w)[1]
        view = conv[:c_out, :c_in]
        assert view.untyped_storage().data_ptr() == conv.untyped_storage().data_ptr()
        exported = export_f32(net, w).convs[1].weight
        assert exported.ctypes.data == conv.data_ptr()
        assert exported.shape == tuple(conv.shape)
    n_params = sum(p.numel() for n, p in net.named_parameters() if ".bns." not in n)
    static = build_slim(net.spec, (1.0,), seed=0)
    assert n_params == sum(p.numel() for n, p in static.named_parameters() if ".bns." not in n)


def test_active_sizes() -> None:
    net = small_net()
    assert net.conv_channels(0.25) == [(3, 2), (2, 2), (2, 4)]
    assert net.head_features(0.25) == [(4, 3)]
    assert active(3, 0.25) == 1


def test_switchable_bn_is_private_per_width() -> None:
    net = small_net()
    net.train()
    bns = net.layers["bn1"].bns
    before = [(bn.running_mean.clone(), bn.weight.clone()) for bn in bns]
    net(torch.randn(8, 3, 16) + 3.0, 0.25)
    assert not torch.equal(bns[0].running_mean, before[0][0])
    for bn, (mean, _) in zip(bns[1:], before[1:], strict=True):
        assert torch.equal(bn.running_mean, mean)
    assert [bn.num_features for bn in bns] == [2, 4, 8]


def test_joint_step_equals_sum_of_per_width_gradients() -> None:
    net = small_net()
    x, y = torch.randn(6, 3, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    loss_fn = nn.CrossEntropyLoss()
    expected = {n: torch.zeros_like(p) for n, p in net.named_parameters()}
    for w in net.widths:
        net.zero_grad()
        loss_fn(net(x, w), y).backward()
        for n, p in net.named_parameters():
            if p.grad is not None:
                expected[n] += p.grad
    start = {n: p.detach().clone() for n, p in net.named_parameters()}
    # The forward passes above moved the BN running stats; they do not affect training-mode
    # outputs, so the joint step sees the same gradients.
    joint_step(net, torch.optim.SGD(net.parameters(), lr=1.0), x, y, loss_fn)
    for n, p in net.named_parameters():
        torch.testing.assert_close(start[n] - p.detach(), expected[n], rtol=1e-5, atol=1e-6)


def test_unsupported_width_and_template_are_rejected() -> None:
    net = small_net()
    with pytest.raises(ValueError, match="not one of the supported widths"):
        net(torch.randn(1, 3, 16), 0.75)
    with pytest.raises(ValueError, match="conv1d"):
        parse_template(cnn3(3, 32, 4))
    with pytest.raises(ValueError, match="include the full width"):
        SlimNet(net.spec, (0.5,))


def test_seed_makes_weights_deterministic() -> None:
    a, b = small_net(), small_net()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_distilled_step_matches_labels_for_full_width_and_soft_targets_below() -> None:
    """In-place distillation by hand: the full width's cross-entropy on the labels plus, for
    every reduced width, the cross-entropy to the full width's detached softmax."""
    net = small_net()
    x, y = torch.randn(6, 3, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    loss_fn = nn.CrossEntropyLoss()
    net.zero_grad()
    logits_full = net(x, 1.0)
    teacher = torch.softmax(logits_full, dim=1).detach()
    total = loss_fn(logits_full, y)
    for w in net.widths[:-1]:
        total = total - (teacher * torch.log_softmax(net(x, w), dim=1)).sum(dim=1).mean()
    total.backward()
    expected = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    start = {n: p.detach().clone() for n, p in net.named_parameters()}
    losses = joint_step(net, torch.optim.SGD(net.parameters(), lr=1.0), x, y, loss_fn, distill=True)
    assert list(losses) == sorted(net.widths, reverse=True)  # the teacher runs first
    for n, p in net.named_parameters():
        torch.testing.assert_close(
            start[n] - p.detach(), expected.get(n, torch.zeros_like(p)), rtol=1e-5, atol=1e-6
        )


def test_sandwich_keeps_the_widest_and_narrowest() -> None:
    gen = torch.Generator().manual_seed(0)
    widths = (0.25, 0.5, 0.75, 1.0)
    drawn = set()
    for _ in range(20):
        chosen = step_widths(widths, 1, gen)
        assert chosen[0] == 1.0 and chosen[-1] == 0.25 and len(chosen) == 3
        drawn.add(chosen[1])
    assert drawn == {0.5, 0.75}  # both middle widths get their turn
    assert step_widths(widths, None, gen) == [1.0, 0.75, 0.5, 0.25]


def test_plateau_schedule_stops_on_stale_loss() -> None:
    """With a zero learning rate and one window repeated (so every epoch's loss is exactly the
    same) the loss never improves: plateau stops after ``patience`` stale epochs (the first
    epoch sets the best loss)."""
    net = small_net()
    x, y = np.repeat(torch.randn(1, 3, 16).numpy(), 16, axis=0), np.zeros(16, dtype=np.int64)
    history = train(
        net, x, y, epochs=20, batch_size=8, lr=0.0, seed=0,
        options=TrainOptions(schedule="plateau", patience=2),
    )  # fmt: skip
    assert len(history) == 3
