"""Cross-layer equalization (fedhar.compress.equalize): the float network's logits do not
change, flattening is handled, and a network whose channels span very different ranges gets
its 8-bit accuracy back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedhar.compress.calibration import folded_float
from fedhar.compress.equalize import equalizable_pairs, equalize
from fedhar.compress.qat import build_qat, fake_quant_logits
from fedhar.models.quantized import fold_spec
from fedhar.models.spec import contoli_cnn
from fedhar.models.torch_model import build_torch


def _logits(spec, state, x: np.ndarray) -> np.ndarray:  # noqa: ANN001
    with torch.no_grad():
        return folded_float(spec, state)(torch.from_numpy(x)).numpy()


def _agreement(trained, state, x: np.ndarray, calib: np.ndarray) -> float:  # noqa: ANN001
    """Share of windows where 8/8 fake quantization (PTQ: QAT before training) predicts what
    the float network predicts."""
    net = build_qat(trained.folded, state, trained.bits(8, 8), calib)
    flt = _logits(trained.folded, state, x).argmax(1)
    return float(np.mean(fake_quant_logits(net, x).argmax(1) == flt))


def test_the_float_logits_do_not_change(cnn, daghero, data) -> None:  # noqa: ANN001
    for trained in (cnn, daghero):
        assert equalizable_pairs(trained.folded)  # conv -> conv and conv -> gap -> dense
        state = equalize(trained.folded, trained.folded_state, data.x[:256])
        assert any(not np.allclose(state[k], trained.folded_state[k]) for k in state)
        np.testing.assert_allclose(
            _logits(trained.folded, state, data.x_test),
            _logits(trained.folded, trained.folded_state, data.x_test),
            rtol=1e-4,
            atol=1e-4,
        )


def test_a_flattened_pair_scales_each_channel_on_all_its_steps(data) -> None:  # noqa: ANN001
    spec = fold_spec(contoli_cnn(3, 40, 6))
    pairs = equalizable_pairs(spec)
    flattened = [p for p in pairs if p[2] > 1]
    assert len(flattened) == 1  # the last conv feeds fc1 through flatten, one column per step
    net = build_torch(spec, seed=3)
    state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    for key in state:  # non-zero biases, so that a missed bias scale shows
        if key.endswith("bias"):
            state[key] = np.linspace(-0.2, 0.3, len(state[key]), dtype=np.float32)
    out = equalize(spec, state, data.x[:128])
    np.testing.assert_allclose(
        _logits(spec, out, data.x_test), _logits(spec, state, data.x_test), rtol=1e-4, atol=1e-5
    )


def test_unbalanced_channels_lose_8_bit_accuracy_and_equalization_restores_it(
    daghero,  # noqa: ANN001
    data,  # noqa: ANN001
) -> None:
    calib = data.x[:256]
    name, nxt, _ = equalizable_pairs(daghero.folded)[0]
    # an exactly equivalent float network whose first layer's channels span 1e-3 .. 30
    s = np.geomspace(30.0, 1e-3, daghero.folded_state[f"{name}.bias"].shape[0]).astype(np.float32)
    skew = dict(daghero.folded_state)
    skew[f"{name}.weight"] = skew[f"{name}.weight"] * s[:, None, None]
    skew[f"{name}.bias"] = skew[f"{name}.bias"] * s
    skew[f"{nxt}.weight"] = skew[f"{nxt}.weight"] / s[None, :, None]
    np.testing.assert_allclose(
        _logits(daghero.folded, skew, data.x_test),
        _logits(daghero.folded, daghero.folded_state, data.x_test),
        rtol=1e-3,
        atol=1e-3,
    )
    balanced = _agreement(daghero, daghero.folded_state, data.x_test, calib)
    skewed = _agreement(daghero, skew, data.x_test, calib)
    fixed = _agreement(daghero, equalize(daghero.folded, skew, calib), data.x_test, calib)
    assert skewed < balanced - 0.1  # the small channels vanish in one 8-bit step
    assert fixed >= balanced - 0.02


def test_a_quantile_outside_0_1_is_refused(daghero, data) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="quantile"):
        equalize(daghero.folded, daghero.folded_state, data.x[:8], quantile=1.5)
