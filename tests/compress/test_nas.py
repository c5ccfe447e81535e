"""zhou2024's DCS gates, Gumbel-softmax operator search and hardware terms on a tiny model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fedhar.compress.gates import DCSGate, binarize, gumbel_one_hot, temperature
from fedhar.compress.nas import IDENTITY, SuperNet, default_stride2, search_loss
from fedhar.compress.search import SearchOptions, SearchResult, search
from fedhar.mcu.profile import load_profile
from fedhar.models.torch_model import build_torch
from fedhar.ondevice.ctrain import Trainer
from fedhar.ondevice.estimate import estimate_row
from fedhar.ondevice.estimator import estimate_inference, estimate_training


def test_gate_binarizes_at_half_and_passes_the_gradient_straight_through() -> None:
    v = torch.tensor([0.2, 0.5, 0.51, 1.3], requires_grad=True)
    b = binarize(v)
    assert b.tolist() == [0.0, 0.0, 1.0, 1.0]
    x = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(1))
    weight = torch.randn(4, 5, generator=torch.Generator().manual_seed(2))
    (x * b[None, :, None] * weight).sum().backward()
    # reference: autograd's gradient with respect to b itself, a leaf of the same value
    b_ref = b.detach().clone().requires_grad_(True)
    (x * b_ref[None, :, None] * weight).sum().backward()
    assert torch.equal(v.grad, b_ref.grad)
    gate = DCSGate(3)
    with torch.no_grad():
        gate.v.copy_(torch.tensor([0.1, 0.4, 0.3]))
    assert gate.kept() == [1]  # all below 0.5: the highest score survives


def test_gumbel_choice_is_seeded_and_follows_alpha() -> None:
    log_alpha = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    draws = [
        [int(torch.argmax(gumbel_one_hot(log_alpha, 1.0, gen))) for _ in range(4000)]
        for gen in (torch.Generator().manual_seed(7), torch.Generator().manual_seed(7))
    ]
    assert draws[0] == draws[1]
    gen = torch.Generator().manual_seed(8)
    other = [int(torch.argmax(gumbel_one_hot(log_alpha, 1.0, gen))) for _ in range(4000)]
    assert other != draws[0]
    freq = torch.bincount(torch.tensor(draws[0]), minlength=4).double() / 4000
    # Gumbel-max: P(j) = alpha_j / sum(alpha); 4000 draws, 4 standard errors at most ~0.031
    assert torch.allclose(freq, torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64), atol=0.031)


def test_gumbel_gradient_is_the_tempered_softmax_gradient() -> None:
    log_alpha = torch.tensor([0.3, -0.2, 0.1, 0.0, 0.5], requires_grad=True)
    tau = 2.0
    p = gumbel_one_hot(log_alpha, tau, torch.Generator().manual_seed(3))
    assert sorted(p.detach().tolist()) == [0.0, 0.0, 0.0, 0.0, 1.0]
    weights = torch.arange(5.0)
    (p * weights).sum().backward()
    u = torch.rand(5, generator=torch.Generator().manual_seed(3))
    g = -torch.log(-torch.log(u))
    ref = log_alpha.detach().clone().requires_grad_(True)
    (torch.softmax((ref + g) / tau, dim=0) * weights).sum().backward()
    assert torch.allclose(log_alpha.grad, ref.grad, atol=1e-7)
    assert int(torch.argmax(p)) == int(torch.argmax(log_alpha.detach() + g))


def test_temperature_anneals_as_the_paper_says() -> None:
    assert temperature(0) == 5.0
    assert temperature(20) == pytest.approx(5.0 * math.exp(-1.0))
    taus = [temperature(e) for e in range(0, 200, 10)]
    assert all(a > b for a, b in zip(taus, taus[1:], strict=False))


def _tiny(hidden: int) -> SuperNet:
    net = SuperNet(3, 16, 4, filters=6, hidden=hidden, seed=0)
    with torch.no_grad():
        net.sensor_gate.v.copy_(torch.tensor([0.9, 0.2, 0.7]))  # drop sensor channel 1
        for i, layer in enumerate(net.layers):
            for g, gate in enumerate(layer.gates):
                scores = torch.rand(6, generator=torch.Generator().manual_seed(10 * i + g))
                gate.v.copy_(scores + 0.1)  # some filters fall to 0.5 or below
    return net


def _force(net: SuperNet, kernels: list[int]) -> None:
    with torch.no_grad():
        for layer, k in zip(net.layers, kernels, strict=True):
            layer.log_alpha.fill_(-5.0)
            layer.log_alpha[layer.kernels.index(k)] = 0.0
    net.fix_argmax()


@pytest.mark.parametrize(
    ("kernels", "hidden"), [([3, 5, 5, 1], 5), ([7, IDENTITY, 1, 3], 0), ([1, 1, 5, IDENTITY], 5)]
)
def test_reinstantiated_model_gives_the_gated_logits_and_the_estimators_macs(
    kernels: list[int], hidden: int
) -> None:
    net = _tiny(hidden)
    assert default_stride2(16) == 2 and [layer.stride for layer in net.layers] == [2, 1, 2, 1]
    _force(net, kernels)
    spec, state, sensors = net.to_spec()
    assert sensors == [0, 2]
    plain = build_torch(spec)
    plain.load_state_dict(state, strict=False)
    x = torch.randn(5, 3, 16, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(plain(x[:, sensors]), net(x), atol=1e-6)
    assert net.expected_macs().item() == estimate_inference(spec).macs
    arena = estimate_training(spec, momentum=False).memory_bytes["total"]
    assert net.peak_memory().item() == arena
    kept = [len(f) for f, k in zip(net.architecture().filters, kernels, strict=True) if k]
    convs = [layer for layer in spec.layers if layer.kind == "conv1d"]
    assert [layer.out_channels for layer in convs] == kept and all(0 < n <= 6 for n in kept)
    assert min(kept) < 6  # filters were pruned


def test_sampled_paths_match_the_estimator_too() -> None:
    net = _tiny(5)
    for step in range(6):
        net.sample(temperature(step))
        spec, _, _ = net.to_spec()
        assert net.expected_macs().item() == estimate_inference(spec).macs


def test_search_loss_reaches_weights_gates_and_architecture() -> None:
    net = _tiny(5)
    net.sample(temperature(0))
    x = torch.randn(8, 3, 16, generator=torch.Generator().manual_seed(5))
    y = torch.arange(8) % 4
    peak = net.peak_memory().item()
    loss = search_loss(net, net(x), y, beta1=1.0, beta2=1.0, budget_bytes=peak / 2)
    loss.backward()
    assert net.sensor_gate.v.grad is not None and net.sensor_gate.v.grad.abs().sum() > 0
    assert all(layer.log_alpha.grad.abs().sum() > 0 for layer in net.layers)
    assert net.classifier.weight.grad.abs().sum() > 0


def test_seed_fixes_weights_and_draws() -> None:
    a, b = SuperNet(3, 16, 4, seed=2), SuperNet(3, 16, 4, seed=2)
    for _ in range(3):
        a.sample(1.0)
        b.sample(1.0)
        assert a.architecture() == b.architecture()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def _search(data, beta1: float) -> SearchResult:  # noqa: ANN001
    net = SuperNet(3, 40, 6, filters=6, hidden=0, n_stride2=2, seed=1)
    options = SearchOptions(
        epochs=2, batch_size=64, lr=0.05, lr_alpha=0.2, beta1=beta1, macs_scale=1e3, seed=1
    )
    return search(net, data.x[:192], data.y[:192], data.x[192:384], data.y[192:384], options)


def test_search_is_deterministic_and_beta1_shrinks_the_model(data) -> None:  # noqa: ANN001
    """Synthetic windows [N, 3, 40], 2 epochs: the same seed gives the same model, and a
    heavy MAC weight gives a model the estimator prices lower than without it."""
    a, b = _search(data, 0.0), _search(data, 0.0)
    assert a.architecture == b.architecture
    assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)
    assert a.macs == estimate_inference(a.spec).macs
    assert [h["tau"] for h in a.history] == [temperature(e) for e in range(2)]
    small = _search(data, 1.0)
    assert small.macs < a.macs


def test_found_model_runs_in_the_c_library_and_fedhar_estimate() -> None:
    """The re-instantiated model is a plain spec: the C library computes the supernet's
    logits, and ``estimate_row`` prices it on the stm32l552 profile with the arena the
    memory term saw."""
    net = _tiny(5)
    _force(net, [5, IDENTITY, 3, 1])
    spec, state, sensors = net.to_spec()
    trainer = Trainer(spec, mode="full")
    trainer.load_state_dict({k: v.numpy() for k, v in state.items()})
    x = torch.randn(4, 3, 16, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        expected = net(x).numpy()
    assert np.allclose(
        trainer.logits(np.ascontiguousarray(x[:, sensors].numpy())), expected, atol=1e-5
    )
    row = estimate_row(load_profile("stm32l552"), spec=spec, mode="full")
    assert row.memory_bytes["total"] == net.peak_memory("full").item()
    assert row.arena_bytes >= row.memory_bytes["total"]
    assert row.input_channels == 2 and row.model == "nas"


def test_memory_gradient_is_the_estimators_step_per_channel() -> None:
    """d(arena)/d(sensor gate) = the arena with one more sensor channel minus the arena."""
    net, wider = _tiny(5), _tiny(5)
    with torch.no_grad():
        wider.sensor_gate.v.fill_(1.0)  # keeps 3 sensor channels instead of 2
    for n in (net, wider):
        _force(n, [3, 3, 1, IDENTITY])
    peak = net.peak_memory()
    peak.backward()
    step = wider.peak_memory().item() - peak.item()
    assert step > 0
    assert torch.equal(net.sensor_gate.v.grad, torch.full((3,), step))
