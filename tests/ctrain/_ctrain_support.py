"""Shared helpers of the C training library tests: a PyTorch twin and comparison metrics."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from fedhar.models.spec import ModelSpec, SpecBuilder
from fedhar.models.torch_model import SpecNet, build_torch
from fedhar.ondevice.ctrain import Trainer


def randomize_batchnorms(net: SpecNet, seed: int) -> None:
    """Non-trivial frozen statistics and affine terms for every BatchNorm1d of ``net``."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                c = m.num_features
                m.running_mean.copy_(torch.rand(c, generator=g) * 2 - 1)
                m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.rand(c, generator=g) - 0.5)


def twins(spec: ModelSpec, seed: int = 0, **trainer_kw: object) -> tuple[SpecNet, Trainer]:
    """A PyTorch reference (eval mode: frozen BN statistics) and a Trainer with its weights."""
    net = build_torch(spec, seed).eval()
    randomize_batchnorms(net, seed)
    trainer = Trainer(spec, **trainer_kw)  # type: ignore[arg-type]
    trainer.load_state_dict(net.spec_state_dict())
    return net, trainer


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(|b|), with a floor so that all-zero references compare absolutely."""
    scale = max(float(np.abs(b).max()), 1e-6)
    return float(np.abs(a - b).max()) / scale


def max_param_rel_err(trainer: Trainer, net: SpecNet) -> float:
    """Largest :func:`rel_err` over every tensor of the spec."""
    ours = trainer.state_dict()
    ref = {k: v.detach().numpy() for k, v in net.spec_state_dict().items()}
    return max(rel_err(ours[k], ref[k]) for k in ref)


def data(n: int, c: int, t: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random samples ``[n, c, t]`` float32 and labels ``[n]`` int64 in ``[0, k)``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, t)).astype(np.float32)
    y = rng.integers(0, k, n)
    return x, y


@st.composite
def random_model(draw: st.DrawFn) -> tuple[ModelSpec, list[bool]]:
    """A random valid model (any layer kinds in a sensible order) and random trainable flags."""
    b = SpecBuilder(draw(st.integers(1, 4)), draw(st.integers(12, 40)))
    for i in range(draw(st.integers(1, 3))):
        c, t = b.shape
        k = draw(st.integers(1, min(5, t)))
        if draw(st.booleans()):
            b.conv1d(f"conv{i}", draw(st.integers(1, 12)), k, padding="same")
        else:
            b.conv1d(f"conv{i}", draw(st.integers(1, 12)), k, stride=draw(st.integers(1, 2)))
        if draw(st.booleans()):
            b.batchnorm1d(f"bn{i}")
        if draw(st.booleans()):
            b.relu(f"relu{i}")
        if b.shape[1] >= 4 and draw(st.booleans()):
            b.pool1d(draw(st.sampled_from(["avgpool1d", "maxpool1d"])), f"pool{i}", 2)
    if draw(st.booleans()):
        b.gap1d("gap")
    else:
        b.flatten("flat")
    if draw(st.booleans()):
        b.dense("hidden", draw(st.integers(1, 16))).relu("relu_h")
    spec = b.dense("out", draw(st.integers(2, 5))).build("random")
    flags = [
        layer.kind in ("conv1d", "dense", "batchnorm1d") and draw(st.booleans())
        for layer in spec.layers
    ]
    flags[-1] = True
    return spec, flags
