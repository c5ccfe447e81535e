"""DCL and TinyHAR: shapes, and parameter / MAC counts on UCI HAR windows against zhou2024
Table II (DCL 424.26 k / 105.95 MMACs, TinyHAR 298.18 k / 36.27 MMACs)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedhar.models.baselines import (
    DeepConvLSTM,
    TinyHAR,
    build_baseline,
    count_macs,
    count_params,
    device_trainable,
)
from fedhar.models.spec import LAYER_KINDS, build_spec

TABLE_II = {"dcl": (424.26e3, 105.95e6), "tinyhar": (298.18e3, 36.27e6)}


@pytest.mark.parametrize("name", ["dcl", "tinyhar"])
def test_logits_shape_and_gradients(name: str) -> None:
    torch.manual_seed(0)
    model = build_baseline(name, 9, 128, 6)
    logits = model(torch.randn(4, 9, 128))
    assert logits.shape == (4, 6)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_counts_beside_table_ii() -> None:
    """DCL: parameters exact (424,262), MACs 1.0 % under the table's (104.87 M). TinyHAR: its
    hyper-parameters are not in zhou2024; with F = 64 and strides 1, 2, 1, 2 it has 7.1 % more
    parameters (319,367) and 10.9 % more MACs (40.22 M)."""
    dcl = build_baseline("dcl", 9, 128, 6)
    tiny = build_baseline("tinyhar", 9, 128, 6)
    assert count_params(dcl) == 424_262
    assert count_macs(dcl, 9, 128) / TABLE_II["dcl"][1] == pytest.approx(0.990, abs=0.005)
    assert count_params(tiny) / TABLE_II["tinyhar"][0] == pytest.approx(1.071, abs=0.005)
    assert count_macs(tiny, 9, 128) / TABLE_II["tinyhar"][1] == pytest.approx(1.109, abs=0.005)


def test_mac_rules_match_closed_forms() -> None:
    # DCL on 9 x 128: four valid convs (T 124, 120, 116, 112), then 112 LSTM steps and the head
    conv = 124 * 9 * 64 * 5 + sum(t * 9 * 64 * 64 * 5 for t in (120, 116, 112))
    lstm = 112 * 4 * (64 * 9 + 128) * 128
    assert count_macs(DeepConvLSTM(9, 128, 6), 9, 128) == conv + lstm + 128 * 6
    # TinyHAR, F = 8, stride 1, T 16 -> 12 -> 8 -> 4 (3 convs), C = 3 sensor tokens per step
    model = TinyHAR(3, 16, 2, filters=8, kernel=3, conv_strides=(1, 2, 1))
    t1, t2, t3 = 14, 6, 4
    conv = 3 * 8 * 3 * (t1 * 1 + t2 * 8 + t3 * 8)
    attn = t3 * (4 * 3 * 8 * 8 + 2 * 3 * 3 * 8 + 3 * (8 * 16 + 16 * 8))
    fusion = t3 * 24 * 16
    lstm = t3 * 4 * (16 + 16) * 16
    aggregate = t3 * (16 * 16 + 16)
    assert model.steps == t3
    assert count_macs(model, 3, 16) == conv + attn + fusion + lstm + aggregate + 16 * 2


@pytest.mark.parametrize("name", ["dcl", "tinyhar"])
def test_cost_grows_with_sensor_channels(name: str) -> None:
    """zhou2024 Fig. 2: more sensor channels, more parameters and MACs."""
    params = [count_params(build_baseline(name, c, 128, 6)) for c in (3, 6, 9)]
    macs = [count_macs(build_baseline(name, c, 128, 6), c, 128) for c in (3, 6, 9)]
    assert params[0] < params[1] < params[2]
    assert macs[0] < macs[1] < macs[2]
    # the convolutions' MACs scale with C exactly; the whole model at least doubles 3 -> 9
    assert macs[2] > 2 * macs[0]


def test_too_short_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="too short"):
        DeepConvLSTM(3, 16, 2)
    with pytest.raises(ValueError, match="unknown baseline"):
        build_baseline("attend", 9, 128, 6)
    interaction = build_baseline("tinyhar", 9, 128, 6).head.interaction
    assert isinstance(interaction, nn.TransformerEncoderLayer)


def test_which_models_train_on_the_device() -> None:
    """The spec families are built only from the C library's layer kinds; DCL and TinyHAR
    hold LSTM (and TinyHAR attention) layers, which have no kind there."""
    for name in ("cnn3", "daghero", "contoli"):
        assert device_trainable(name)
        spec = build_spec(name, 3, 100, 6)
        assert {layer.kind for layer in spec.layers} <= set(LAYER_KINDS)
    for name in ("dcl", "tinyhar"):
        assert not device_trainable(name)
        assert any(isinstance(m, nn.LSTM) for m in build_baseline(name, 9, 128, 6).modules())
    with pytest.raises(ValueError, match="unknown model"):
        device_trainable("attend")
