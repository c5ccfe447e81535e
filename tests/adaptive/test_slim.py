"""Variable-width network: weight sharing, switchable BN, joint training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedhar.adaptive.export import export_f32
from fedhar.adaptive.slim import SlimNet, active, build_slim, joint_step, parse_template
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
