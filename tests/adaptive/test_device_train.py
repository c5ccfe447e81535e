"""Personalizing a two-width network through the C library (fedhar.adaptive.device_train):
the per-width slices, the sandwich steps against a PyTorch reference, and resuming from a
checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedhar.adaptive.device_train import (
    SlimJob,
    inverse_frequency,
    put_width_state,
    slim_net,
    slim_state,
    width_spec,
    width_state,
)
from fedhar.adaptive.slim import build_slim, class_weights
from fedhar.models.spec import daghero_cnn


def _net():
    spec = daghero_cnn(3, 40, 4, channels=(8, 8, 16), kernels=(7, 7, 7))
    net = build_slim(spec, (0.25, 1.0), seed=1)
    gen = torch.Generator().manual_seed(3)  # not the global RNG: tests run in any order
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
    return net.eval()


def _data(n: int = 50):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 3, 40)).astype(np.float32)
    y = rng.integers(0, 4, n)
    return x, y


def test_width_spec_logits_match_the_slim_network() -> None:
    net = _net()
    x, _ = _data(10)
    state = slim_state(net)
    from fedhar.ondevice.ctrain import Trainer

    for w in net.widths:
        t = Trainer(width_spec(net, w), mode="full")
        t.load_state_dict(width_state(net, state, w))
        with torch.no_grad():
            ref = net(torch.from_numpy(x), w).numpy()
        np.testing.assert_allclose(t.logits(x), ref, rtol=1e-4, atol=1e-5)


def test_width_state_round_trips_into_its_slices() -> None:
    net = _net()
    state = slim_state(net)
    copy = {k: v.copy() for k, v in state.items()}
    part = width_state(net, state, 0.25)
    part = {k: v + 1.0 for k, v in part.items()}
    put_width_state(net, copy, 0.25, part)
    changed = {k for k in state if not np.array_equal(state[k], copy[k])}
    assert "layers.conv1.weight" in changed and "layers.bn1.bns.0.weight" in changed
    assert "layers.bn1.bns.1.weight" not in changed  # M_l's private BatchNorm untouched
    w = copy["layers.conv2.weight"]
    assert np.array_equal(w[2:], state["layers.conv2.weight"][2:])  # outside the slice
    np.testing.assert_array_equal(w[:2, :2], state["layers.conv2.weight"][:2, :2] + 1.0)


def _torch_sandwich(net, x, y, order, lr, batch_size):
    """The same job in PyTorch: each batch, M_l steps (plain SGD), then M_s on the result;
    BatchNorm in eval mode (frozen statistics, trained gamma and beta), as in the C library."""
    net.eval()
    loss_fn = torch.nn.CrossEntropyLoss(weight=class_weights(y, net.spec.n_classes))
    params = list(net.parameters())
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        if idx.size < 2:
            continue
        xb, yb = torch.from_numpy(x[idx]), torch.from_numpy(y[idx])
        for w in (1.0, 0.25):
            for p in params:
                p.grad = None
            loss_fn(net(xb, w), yb).backward()
            with torch.no_grad():
                for p in params:
                    if p.grad is not None:
                        p -= lr * p.grad
    return net.eval()


@pytest.mark.parametrize("mode", ["full", "tl"])
def test_an_epoch_matches_the_pytorch_sandwich(mode: str) -> None:
    net = _net()
    x, y = _data(50)
    order = np.random.default_rng(5).permutation(len(y))
    job = SlimJob(net, mode, lr=0.05, momentum=0.0, batch_size=16, tl_layers=1)
    result = job.epoch(job.start(slim_state(net)), x, y, order)
    ref_net = slim_net(net, slim_state(net))
    if mode == "tl":
        for name, p in ref_net.named_parameters():
            p.requires_grad_(name.startswith("layers.fc."))
    ref = slim_state(_torch_sandwich(ref_net, x, y, order, 0.05, 16))
    got = result.checkpoint.state
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-4, atol=2e-5, err_msg=k)
    moved = [k for k in ref if not np.array_equal(got[k], slim_state(net)[k])]
    if mode == "tl":
        assert moved == ["layers.fc.weight", "layers.fc.bias"]
    else:
        assert "layers.conv1.weight" in moved and "layers.conv3.weight" in moved
        for width in (0, 1):  # both widths' private BatchNorms are trained
            assert any(f".bns.{width}.weight" in k for k in moved), moved
        assert not any("running" in k for k in moved)  # statistics stay frozen
    assert result.ops.macs > 0 and np.isfinite(result.loss)


def test_resumed_epochs_equal_straight_ones_and_depend_on_the_data() -> None:
    net = _net()
    x, y = _data(40)
    job = SlimJob(net, "full", lr=0.02, momentum=0.9, batch_size=16)
    orders = [np.random.default_rng(e).permutation(len(y)) for e in range(2)]
    ck = job.start(slim_state(net))
    a = job.epoch(job.epoch(ck, x, y, orders[0]).checkpoint, x, y, orders[1])
    b1 = job.epoch(ck, x, y, orders[0])
    b = job.epoch(b1.checkpoint, x, y, orders[1])  # a fresh pair of contexts each epoch
    assert all(np.array_equal(a.checkpoint.state[k], b.checkpoint.state[k]) for k in ck.state)
    assert set(b1.checkpoint.optimizer) == {"1", "0.25"}
    assert b1.checkpoint.nbytes() > sum(v.nbytes for v in ck.state.values())
    y2 = y.copy()
    y2[:5] = (y2[:5] + 1) % 4
    c = job.epoch(ck, x, y2, orders[0])
    assert not np.array_equal(
        c.checkpoint.state["layers.fc.weight"], b1.checkpoint.state["layers.fc.weight"]
    )


def test_inverse_frequency_weights_present_classes_only() -> None:
    w = inverse_frequency(np.array([0, 0, 0, 1]), 3)
    np.testing.assert_allclose(w, [0.5, 1.5, 0.0])
    np.testing.assert_allclose(w, class_weights(np.array([0, 0, 0, 1]), 3).numpy())
