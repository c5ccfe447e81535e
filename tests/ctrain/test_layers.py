"""Each layer's forward, input gradient and weight gradient against PyTorch autograd.

The layer under test sits between a trainable 1x1 "pre" conv and a dense "head". One SGD step
with lr 1 and no momentum turns every gradient into a parameter change, so:
- the logits check the forward pass of the whole chain;
- the layer's own parameter change checks its weight gradient;
- the pre conv's weight change is sum_t dL/dx * x, so it checks the layer's input gradient;
- the head's weight change checks the layer's forward output.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from _ctrain_support import data, rel_err, twins
from hypothesis import given, settings
from hypothesis import strategies as st

from fedhar.models.spec import ModelSpec, SpecBuilder

TOL = 1e-4
pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
# The sanitizer run (test_sanitizers.py) lowers the example count to stay fast.
SETTINGS = settings(
    max_examples=int(os.environ.get("FEDHAR_CTRAIN_MAX_EXAMPLES", "8")),
    derandomize=True,
    deadline=None,
)


def _check(spec: ModelSpec, seed: int) -> None:
    net, trainer = twins(spec, seed, mode="full", lr=1.0)
    x, y = data(5, spec.input_channels, spec.input_length, spec.n_classes, seed)
    before = {k: v.detach().clone() for k, v in net.spec_state_dict().items()}
    logits = net(torch.from_numpy(x))
    assert rel_err(trainer.logits(x), logits.detach().numpy()) <= TOL
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))
    loss.backward()
    c_loss = trainer.train_batch(x, y)
    assert abs(c_loss - loss.item()) <= TOL * max(1.0, abs(loss.item()))
    after = trainer.state_dict()
    grads = dict(net.named_parameters())
    for key, p0 in before.items():
        if key.endswith(("running_mean", "running_var")):
            assert np.array_equal(after[key], p0.numpy())
            continue
        step = p0.numpy() - after[key]
        assert rel_err(step, grads[key].grad.numpy()) <= TOL, key


def _pre(c: int, t: int, c_mid: int) -> SpecBuilder:
    return SpecBuilder(c, t).conv1d("pre", c_mid, 1)


def _head(b: SpecBuilder, k: int) -> ModelSpec:
    if len(b.shape) == 2:
        b.flatten("flat")
    return b.dense("head", k).build("layer_test")


channels = st.integers(1, 6)
lengths = st.integers(6, 24)


@SETTINGS
@given(
    c=channels,
    t=lengths,
    f=st.integers(1, 20),
    k=st.integers(1, 5),
    s=st.integers(1, 3),
    same=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_conv1d(c: int, t: int, f: int, k: int, s: int, same: bool, seed: int) -> None:
    b = _pre(c, t, 3)
    if same:
        b.conv1d("layer", f, k, padding="same")
    else:
        b.conv1d("layer", f, min(k, t), stride=s)
    _check(_head(b, 3), seed)


@settings(max_examples=40, deadline=None)
@given(
    c_mid=st.integers(8, 48),
    t=st.integers(24, 90),
    f=st.integers(1, 150),
    k=st.integers(1, 5),
    s=st.integers(1, 3),
    seed=st.integers(0, 1000),
)
def test_wide_conv1d(c_mid: int, t: int, f: int, k: int, s: int, seed: int) -> None:
    """Layers wide and long enough for every vector path of the kernels: windows of many
    register tiles with a remainder, long outputs (the input gradient through transposed
    weight blocks, more than one block of output channels when f > 128), strides that make
    the windows overlap or skip."""
    b = _pre(2, t, c_mid).conv1d("layer", f, k, stride=s)
    _check(_head(b, 3), seed)


@SETTINGS
@given(c=channels, t=st.integers(1, 8), m=st.integers(1, 40), seed=st.integers(0, 1000))
def test_dense(c: int, t: int, m: int, seed: int) -> None:
    b = _pre(c, t, 2).flatten("flat0").dense("layer", m)
    _check(b.dense("head", 4).build("layer_test"), seed)


@SETTINGS
@given(c=channels, t=lengths, seed=st.integers(0, 1000))
def test_relu(c: int, t: int, seed: int) -> None:
    _check(_head(_pre(c, t, 4).relu("layer"), 3), seed)


@SETTINGS
@given(
    c=channels,
    t=lengths,
    size=st.integers(1, 5),
    stride=st.integers(1, 4),
    kind=st.sampled_from(["avgpool1d", "maxpool1d"]),
    seed=st.integers(0, 1000),
)
def test_pool(c: int, t: int, size: int, stride: int, kind: str, seed: int) -> None:
    _check(_head(_pre(c, t, 4).pool1d(kind, "layer", size, stride), 3), seed)


@SETTINGS
@given(c=channels, t=lengths, seed=st.integers(0, 1000))
def test_gap1d(c: int, t: int, seed: int) -> None:
    _check(_head(_pre(c, t, 5).gap1d("layer"), 3), seed)


@SETTINGS
@given(c=channels, t=lengths, seed=st.integers(0, 1000))
def test_flatten(c: int, t: int, seed: int) -> None:
    _check(_pre(c, t, 3).flatten("layer").dense("head", 3).build("layer_test"), seed)


@SETTINGS
@given(c=channels, t=lengths, seed=st.integers(0, 1000))
def test_batchnorm1d(c: int, t: int, seed: int) -> None:
    _check(_head(_pre(c, t, 4).batchnorm1d("layer"), 3), seed)


@SETTINGS
@given(k=st.integers(2, 9), seed=st.integers(0, 1000))
def test_weighted_cross_entropy(k: int, seed: int) -> None:
    """Loss and gradients of CrossEntropyLoss(weight=w): sum(w_y nll) / sum(w_y)."""
    spec = SpecBuilder(2, 5).flatten("flat").dense("head", k).build("loss_test")
    w = np.random.default_rng(seed).uniform(0.1, 3.0, k).astype(np.float32)
    net, trainer = twins(spec, seed, mode="full", lr=1.0, class_weights=w)
    x, y = data(9, 2, 5, k, seed)
    before = {k_: v.detach().clone() for k_, v in net.spec_state_dict().items()}
    loss = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(w))(
        net(torch.from_numpy(x)), torch.from_numpy(y)
    )
    loss.backward()
    assert abs(trainer.train_batch(x, y) - loss.item()) <= TOL * max(1.0, loss.item())
    after = trainer.state_dict()
    for key, p in net.named_parameters():
        assert rel_err(before[key].numpy() - after[key], p.grad.numpy()) <= TOL, key
