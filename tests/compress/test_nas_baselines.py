"""zhou2024's first-stage search on DCL and TinyHAR, on tiny supernets and synthetic windows:
the re-instantiated model computes the gated supernet's logits, its ``count_macs`` is the
complexity term and its activations give the memory term."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedhar.compress.gates import temperature
from fedhar.compress.nas import IDENTITY, hardware_loss
from fedhar.compress.nas_baselines import (
    FLOAT_BYTES,
    BaselineSearch,
    BaselineSuperNet,
    macro_f1,
    search_baseline,
    train_baseline,
)
from fedhar.compress.search import SearchOptions
from fedhar.compress.training import Schedule, train
from fedhar.models.baselines import DeepConvLSTM, SensorSubset, TinyHAR, count_macs, count_params

NAMES = ("dcl", "tinyhar")


def _tiny(name: str) -> BaselineSuperNet:
    """4 sensors x 32 samples (3 stride-2 layers), 8 filters; sensor 1 and some filters gated
    off; BatchNorm statistics from three training passes."""
    net = BaselineSuperNet(name, 4, 32, 5, filters=8, hidden=12, seed=0)
    with torch.no_grad():
        net.sensor_gate.v.copy_(torch.tensor([0.9, 0.2, 0.7, 0.8]))
        for i, layer in enumerate(net.layers):
            for g, gate in enumerate(layer.gates):
                scores = torch.rand(8, generator=torch.Generator().manual_seed(10 * i + g))
                gate.v.copy_(scores + 0.1)
    x = torch.randn(6, 4, 32, generator=torch.Generator().manual_seed(1))
    for step in range(3):
        net.sample(temperature(step))
        net(x)
    return net.eval()


def _measured_peak(plain: SensorSubset, channels: int, length: int) -> int:
    """The rule of the module docstring measured on the plain model with forward hooks: the
    largest input + output elements over its convs, LSTM, transformer layer, fusion, attention
    pooling (LSTM output -> classifier input) and classifier, times 4 bytes."""
    sizes: list[tuple[int, int]] = []
    model = plain.model
    head = model.head if isinstance(model, TinyHAR) else model
    ops: list[nn.Module] = [m for m in model.features if isinstance(m, nn.Conv2d)]
    ops += [head.lstm, head.classifier]
    if isinstance(model, TinyHAR):
        ops += [head.interaction, head.fusion]
    seen: dict[str, int] = {}

    def hook(module: nn.Module, inp: tuple[torch.Tensor, ...], out: object) -> None:
        y = out[0] if isinstance(out, tuple) else out
        assert isinstance(y, torch.Tensor)
        sizes.append((inp[0].numel(), y.numel()))
        if module is head.lstm:
            seen["lstm_out"] = y.numel()
        if module is head.classifier:
            seen["pooled"] = inp[0].numel()

    handles = [m.register_forward_hook(hook) for m in ops]
    with torch.no_grad():
        plain(torch.zeros(1, channels, length))
    for h in handles:
        h.remove()
    if isinstance(model, TinyHAR):
        sizes.append((seen["lstm_out"], seen["pooled"]))
    assert len(sizes) == len(ops) + isinstance(model, TinyHAR)
    return FLOAT_BYTES * max(a + b for a, b in sizes)


@pytest.mark.parametrize("name", NAMES)
def test_reinstantiated_model_gives_the_gated_logits_macs_and_memory(name: str) -> None:
    """Over six drawn paths: same logits (eval mode), complexity term = count_macs, memory
    term = the hook-measured rule; the plain model is the baseline class on kept sensors."""
    net = _tiny(name)
    x = torch.randn(5, 4, 32, generator=torch.Generator().manual_seed(2))
    paths, pruned = set(), False
    for step in range(6):
        net.sample(temperature(step))
        plain = net.plain()
        assert plain.sensors == [0, 2, 3]
        assert isinstance(plain.model, DeepConvLSTM if name == "dcl" else TinyHAR)
        with torch.no_grad():
            assert torch.allclose(plain(x), net(x), atol=1e-5)
        assert net.expected_macs().item() == count_macs(plain, 4, 32)
        assert net.peak_memory().item() == _measured_peak(plain, 4, 32)
        stage = net.stage()
        assert [layer.stride for layer in stage].count(2) == 3
        pruned |= any(layer.filters < 8 for layer in stage)
        paths.add(tuple(layer.kernel for layer in stage))
    assert pruned and len(paths) > 1


@pytest.mark.parametrize("name", NAMES)
def test_hardware_loss_reaches_gates_and_architecture(name: str) -> None:
    net = _tiny(name).train()
    net.sample(temperature(0))
    x = torch.randn(8, 4, 32, generator=torch.Generator().manual_seed(3))
    y = torch.arange(8) % 5
    peak = net.peak_memory().item()
    loss = hardware_loss(
        net(x), y, 1.0, net.expected_macs, 1.0, net.peak_memory, peak / 2, macs_scale=1e3
    )
    loss.backward()
    assert net.sensor_gate.v.grad.abs().sum() > 0
    assert all(layer.log_alpha.grad.abs().sum() > 0 for layer in net.layers)
    drawn = [layer.gates[j] for layer, j in zip(net.layers, net.picked(), strict=True)
             if layer.kernels[j] != IDENTITY]  # fmt: skip
    assert all(gate.v.grad.abs().sum() > 0 for gate in drawn)


def test_memory_gradient_is_the_peak_step_per_width() -> None:
    """d(peak)/d(sensor gate) = the peak with one more sensor channel minus the peak."""
    net = _tiny("tinyhar")
    net.fix_argmax()
    peak = net.peak_memory()
    peak.backward()
    widths = [3] + [layer.filters for layer in net.stage()]
    step = net.peak_bytes([4, *widths[1:]]) - net.peak_bytes(widths)
    assert peak.item() == net.peak_bytes(widths) and step > 0
    assert torch.equal(net.sensor_gate.v.grad, torch.full((4,), float(step)))


def _search(data, name: str, beta1: float, lr_sensors: float | None = None) -> BaselineSearch:  # noqa: ANN001
    options = SearchOptions(
        epochs=2, batch_size=64, lr=0.01, lr_alpha=0.2, lr_gates=0.2, beta1=beta1,
        macs_scale=1e3, seed=1, lr_sensor_gates=lr_sensors,
    )  # fmt: skip
    x, y = data.x[:192], data.y[:192]
    return search_baseline(name, x, y, data.x[192:320], data.y[192:320], 6, options, filters=6)


@pytest.mark.parametrize("name", NAMES)
def test_search_is_deterministic_and_beta1_shrinks_the_model(data, name: str) -> None:  # noqa: ANN001
    """Synthetic windows [N, 3, 40], 2 epochs: the same seed gives the same model; a heavy MAC
    weight changes the operators and prunes sensors and filters, to a model of fewer MACs."""
    a, b = _search(data, name, 0.0), _search(data, name, 0.0)
    assert (a.sensors, a.kernels, a.kept_filters) == (b.sensors, b.kernels, b.kept_filters)
    state_a, state_b = a.module.state_dict(), b.module.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert a.macs == count_macs(a.module, 3, 40) == round(a.history[-1]["macs"])
    assert a.params == count_params(a.module)
    assert [h["tau"] for h in a.history] == [temperature(e) for e in range(2)]
    small = _search(data, name, 5.0)
    assert small.macs < a.macs / 3
    assert small.kernels != a.kernels
    # the gates prune too: fewer sensor channels, some layer down to fewer filters
    assert len(small.sensors) < len(a.sensors)
    assert min(small.kept_filters) < min(a.kept_filters)


def test_a_sensor_gate_rate_of_its_own_keeps_the_sensors_while_the_filters_prune(data) -> None:  # noqa: ANN001
    """At the heavy MAC weight that closes sensors above, a sensor-gate rate of 0 keeps all
    three while the filter gates still prune."""
    kept = _search(data, "tinyhar", 5.0, lr_sensors=0.0)
    assert kept.sensors == [0, 1, 2]
    assert min(kept.kept_filters) < 6
    assert len(_search(data, "tinyhar", 5.0).sensors) < 3


def test_train_baseline_is_seeded_and_keeps_the_best_epoch(data) -> None:  # noqa: ANN001
    """Two runs give the same weights; the returned model's validation F1 is the best of the
    epochs of the same schedule run through ``training.train`` directly."""
    x, y, xv, yv = data.x[:192], data.y[:192], data.x[192:320], data.y[192:320]

    def model() -> nn.Module:
        torch.manual_seed(0)
        return TinyHAR(3, 40, 6, filters=4, kernel=3, conv_strides=(2, 2))

    a, b = (train_baseline(model(), x, y, xv, yv, 4, 0.01, 64, seed=3) for _ in range(2))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not a.training
    ref, per_epoch = model(), []
    train(ref, x, y, 6, Schedule(4, 0.01, 64, 3), [{"params": ref.parameters()}], None,
          lambda _e: per_epoch.append(macro_f1(ref, xv, yv, 6)))  # fmt: skip
    assert macro_f1(a, xv, yv, 6) == max(per_epoch)
    assert len(set(per_epoch)) > 1  # the epochs differ, so the choice matters
