"""The fake quantizers of fedhar.compress.fakequant against the deployed number formats and
PACT's gradient rule, and the clip calibration rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedhar.compress.calibration import clip_value
from fedhar.compress.fakequant import (
    fake_bias,
    fake_input,
    fake_weight,
    pact,
    rounded_avg_pool,
)
from fedhar.models.quantized import quantize_weights


def test_pact_gradients_follow_the_analytic_rule() -> None:
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(4, 5, 30, generator=gen, dtype=torch.float64) * 2).requires_grad_()
    alpha = torch.tensor([1.3], dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(4, 5, 30, generator=gen, dtype=torch.float64)
    pact(x, alpha, 4).backward(upstream)
    xd = x.detach()
    inside = (xd >= 0) & (xd < 1.3)
    assert inside.any() and (xd >= 1.3).any() and (xd < 0).any()
    torch.testing.assert_close(x.grad, upstream * inside, rtol=0, atol=0)
    expected = (upstream * (xd >= 1.3)).sum().reshape(1)
    torch.testing.assert_close(alpha.grad, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_pact_forward_is_relu_clip_and_round_half_up(bits: int) -> None:
    levels = 2**bits - 1
    alpha = torch.tensor([2.0], dtype=torch.float64)
    step = 2.0 / levels
    x = torch.tensor(
        [-1.0, 0.0, 0.49 * step, 0.5 * step, 1.5 * step, 1.9, 2.0, 7.0], dtype=torch.float64
    )
    y = pact(x, alpha, bits)
    expected = np.clip(np.floor(x.numpy() / step + 0.5), 0, levels) * step
    np.testing.assert_allclose(y.numpy(), expected, rtol=0, atol=1e-15)
    assert y[3] == pytest.approx(step)  # a tie rounds up, as the requantization does
    assert y.max() == pytest.approx(2.0)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
@pytest.mark.parametrize("shape", [(6, 3, 5), (7, 9)])
def test_weight_quantizer_is_quantize_weights_with_a_straight_through_gradient(
    bits: int, shape: tuple[int, ...]
) -> None:
    gen = torch.Generator().manual_seed(bits)
    w = torch.randn(*shape, generator=gen).requires_grad_()
    with torch.no_grad():
        w[0] = 0.0  # an all-zero channel takes scale 1
    w_fq, scale = fake_weight(w, bits)
    q, s = quantize_weights(w.detach().numpy(), bits)
    np.testing.assert_array_equal(scale.numpy(), s)
    bshape = (-1,) + (1,) * (len(shape) - 1)
    np.testing.assert_array_equal(w_fq.detach().numpy(), (q * s.reshape(bshape)).astype(np.float32))
    upstream = torch.randn(*shape, generator=gen)
    w_fq.backward(upstream)
    torch.testing.assert_close(w.grad, upstream, rtol=0, atol=0)


def test_input_quantizer_is_signed_8_bit_with_saturation() -> None:
    x = torch.tensor([-5.0, -0.05, 0.0, 0.015, 0.025, 1.26, 3.0], dtype=torch.float64)
    y = fake_input(x, 0.01) / 0.01
    np.testing.assert_allclose(y.numpy(), [-127, -5, 0, 2, 2, 126, 127], atol=1e-9)


def test_bias_is_rounded_to_accumulator_units() -> None:
    step = torch.tensor([0.5, 0.1, 1e-12], dtype=torch.float64)
    b = torch.tensor([0.74, -0.26, 1.0], dtype=torch.float64)
    out = fake_bias(b, step) / step
    np.testing.assert_allclose(out.numpy(), [1.0, -3.0, 2.0**30], rtol=1e-12)


def test_average_pool_rounds_the_integer_mean_half_up() -> None:
    scale = torch.tensor(0.3, dtype=torch.float64)
    levels = torch.tensor([[[1, 2, 4, 4, 0, 1, 3, 4, 4]]], dtype=torch.float64)
    out = rounded_avg_pool(levels * scale, scale, 2, 2) / scale
    # (Σ + 1) div 2 over pairs: (1+2)→2, (4+4)→4, (0+1)→1, (3+4)→4; the last sample is dropped
    np.testing.assert_allclose(out.numpy(), [[[2, 4, 1, 4]]], atol=1e-12)
    out3 = rounded_avg_pool(levels * scale, scale, 3, 3) / scale
    # (Σ + 1) div 3: 7→2, 5→2, 11→4
    np.testing.assert_allclose(out3.numpy(), [[[2, 2, 4]]], atol=1e-12)


def test_clip_rules() -> None:
    z = np.random.default_rng(0).standard_normal(50_000) * 2.0
    assert clip_value(z, 8, "max") == pytest.approx(z.max())
    assert clip_value(z, 8, 99.0) == pytest.approx(np.percentile(z[z > 0], 99.0))
    low, high = clip_value(z, 2, "mse"), clip_value(z, 8, "mse")
    assert low < high <= z.max()
    assert clip_value(-np.abs(z), 4, "mse") == 1.0
    with pytest.raises(ValueError, match="clip rule"):
        clip_value(z, 8, "p99")
    with pytest.raises(ValueError, match="percentile"):
        clip_value(z, 8, 0.0)
