"""C width-sliced inference against the PyTorch slim model and its fake-quant int8 reference."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fedhar.adaptive.export import export_f32
from fedhar.adaptive.quant import fake_quant_logits, q31, quantize, quantize_weights
from fedhar.adaptive.slim import predict_logits
from fedhar.ondevice.clib import CLibError, Status
from fedhar.ondevice.slim_infer import SlimNetC


@pytest.mark.parametrize("width", [0.25, 0.5, 1.0])
def test_float_matches_torch(trained, width: float) -> None:
    net, x, _ = trained
    ref = predict_logits(net, x, width)
    logits, ops = SlimNetC(export_f32(net, width)).forward(x)
    assert np.abs(logits - ref).max() <= 1e-4 * np.abs(ref).max()
    assert ops.macs > 0 and ops.macs % len(x) == 0


@pytest.mark.parametrize("width", [0.25, 0.5, 1.0])
def test_int8_agrees_with_fake_quant(trained, width: float) -> None:
    net, x, _ = trained
    shared = quantize_weights(net)
    q = quantize(net, width, x[:64], shared)
    logits, _ = SlimNetC(q).forward(x)
    ref = fake_quant_logits(net, q, shared, x)
    assert (logits.argmax(1) == ref.argmax(1)).mean() >= 0.99
    assert q.convs[1].weight is shared.weights["conv2"][0]


def test_c_reads_the_shared_weights_without_copy(trained) -> None:
    net, x, _ = trained
    small = export_f32(net, 0.25)
    assert small.convs[1].weight.ctypes.data == net.layers["conv2"].weight.data_ptr()
    c = SlimNetC(small)
    before, _ = c.forward(x[:4])
    bias = net.layers["fc2"].bias
    bias.data[0] += 1.0  # edits the parameter in place; the C view sees it without re-export
    after, _ = c.forward(x[:4])
    bias.data[0] -= 1.0
    np.testing.assert_allclose(after[:, 0] - before[:, 0], 1.0, rtol=1e-5)
    np.testing.assert_array_equal(after[:, 1:], before[:, 1:])


def test_mac_count_matches_loop_trip_counts(trained) -> None:
    net, _, _ = trained
    m = export_f32(net, 0.5)
    _, ops = SlimNetC(m).forward(np.zeros((1, 3, 32), np.float32))
    t, expected = 32, 0
    for conv in m.convs:
        k = conv.weight.shape[2]
        pad = (k - 1) // 2
        taps = sum(min(k, t - (o - pad)) - max(0, pad - o) for o in range(t))
        expected += taps * conv.c_in * conv.c_out + conv.c_out * t
        t //= conv.pool
    expected += sum(d.n_in * d.n_out for d in m.denses)
    assert ops.macs == expected


def test_bad_shapes_raise(trained) -> None:
    net, x, _ = trained
    m = export_f32(net, 0.5)
    with pytest.raises(ValueError, match="input must be"):
        SlimNetC(m).forward(x[:, :, :16])
    broken = dataclasses.replace(m, convs=(dataclasses.replace(m.convs[0], c_in=2), *m.convs[1:]))
    with pytest.raises(CLibError, match="fh_slim_f32_get_buffer_size: FT_ERR_SHAPE") as err:
        SlimNetC(broken)
    assert err.value.code == Status.ERR_SHAPE and "conv channels [2->" in str(err.value)


def test_q31_round_trip() -> None:
    real = np.array([0.75, -0.001, 3.5e-7, 12.0])
    mult, rshift = q31(real)
    np.testing.assert_allclose(mult * 2.0 ** -rshift.astype(float), real, rtol=1e-8)
    assert np.all((rshift >= 1) & (rshift <= 62))
