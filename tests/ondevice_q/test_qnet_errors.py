"""Bad networks and arguments reach the C checks of fh_qnet.c and come back as an ft_status
with the field, layer, value and accepted range named, never as a crash."""

from __future__ import annotations

import ctypes
from dataclasses import replace

import numpy as np
import pytest

from fedhar.models import quantized as Q
from fedhar.models.spec import daghero_cnn
from fedhar.ondevice import clib, qnet_infer
from fedhar.ondevice.clib import CLibError
from fedhar.ondevice.qnet_infer import DynamicNetC, QNetC
from tests.ondevice_q._qnet_support import build_qnet, random_state

SPEC = daghero_cnn(3, 24, 4, channels=(4, 8), kernels=(3, 5), hidden=6)


@pytest.fixture(scope="module")
def net() -> Q.QNet:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 24)).astype(np.float32)
    bits = {"conv1": (8, 4), "conv2": (1, 1), "fc1": (2, 2), "fc2": (4, 0)}
    return build_qnet(SPEC, random_state(SPEC, rng), bits, x)


def _with(net: Q.QNet, i: int, **changes: object) -> Q.QNet:
    layers = list(net.layers)
    layers[i] = replace(layers[i], **changes)  # type: ignore[type-var]
    return replace(net, layers=tuple(layers))


def _x(net: Q.QNet) -> np.ndarray:
    return np.zeros((2, net.in_channels, net.in_length), np.int8)


def _fails(status: str, argument: str, fn, *args) -> CLibError:  # type: ignore[no-untyped-def]
    with pytest.raises(CLibError) as info:
        fn(*args)
    assert (info.value.status, info.value.argument) == (status, argument), str(info.value)
    return info.value


def _index(net: Q.QNet, name: str) -> int:
    return next(i for i, layer in enumerate(net.layers) if layer.name == name)


def test_valid_network_runs(net: Q.QNet) -> None:
    logits, _ = QNetC(net).logits(_x(net))
    assert logits.shape == (2, 4)


@pytest.mark.parametrize("field", ["w_bits", "out_bits"])
def test_bit_width_of_three_is_refused(net: Q.QNet, field: str) -> None:
    i = _index(net, "fc1")
    e = _fails("FT_ERR_ARG", f"net->layers[{i}].{field} (1, 2, 4 or 8)", QNetC,
               _with(net, i, **{field: 3}))  # fmt: skip
    assert e.value == 3


def test_input_bits_must_follow_the_previous_output(net: Q.QNet) -> None:
    i = _index(net, "fc2")
    e = _fails("FT_ERR_ARG", f"net->layers[{i}].in_bits", QNetC, _with(net, i, in_bits=8))
    assert (e.value, e.lo, e.hi) == (8, 2, 2)


def test_first_layer_reads_the_int8_input(net: Q.QNet) -> None:
    e = _fails("FT_ERR_ARG", "net->layers[0].in_bits", QNetC, _with(net, 0, in_bits=4))
    assert (e.lo, e.hi) == (8, 8)


@pytest.mark.parametrize("shift", [0, 63, -5])
def test_rshift_out_of_range(net: Q.QNet, shift: int) -> None:
    i = _index(net, "fc1")
    bad = net.layers[i].rshift.copy()
    bad[-1] = shift
    c = QNetC(_with(net, i, rshift=bad))
    e = _fails("FT_ERR_ARG", f"net->layers[{i}].rshift", c.logits, _x(net))
    assert (e.value, e.lo, e.hi) == (shift, 1, 62)


def test_bias_beyond_two_to_the_thirty(net: Q.QNet) -> None:
    bad = net.layers[0].bias.copy()
    bad[0] = 2**30 + 1
    e = _fails("FT_ERR_ARG", "net->layers[0].bias", QNetC(_with(net, 0, bias=bad)).logits,
               _x(net))  # fmt: skip
    assert e.hi == 2**30


@pytest.mark.parametrize(
    ("layer", "field"),
    [(0, "weight"), (0, "mult"), (0, "rshift"), (-1, "logit_scale"), (-1, "bias")],
)
def test_null_tensor_is_named(net: Q.QNet, layer: int, field: str) -> None:
    c = QNetC(net)
    i = layer % len(net.layers)
    setattr(c._layers[i], field, None)
    _fails("FT_ERR_NULL", f"net->layers[{i}].{field}", c.logits, _x(net))


def test_scratch_buffer_one_byte_short(net: Q.QNet) -> None:
    c = QNetC(net)
    c.buffer_bytes -= 1
    e = _fails("FT_ERR_ARENA_TOO_SMALL", "buffer_bytes", c.logits, _x(net))
    assert e.lo == c.buffer_bytes + 1


def _forward(c: QNetC, x: object, logits: object, buffer: object, size: int, ops: object) -> None:
    clib.call(qnet_infer._lib().fh_qnet_forward, ctypes.byref(c._net), x, 1, logits, buffer,
              size, ops)  # fmt: skip


def test_null_arguments_and_misaligned_buffer(net: Q.QNet) -> None:
    c = QNetC(net)
    x, out = _x(net), np.zeros((2, 4), np.float32)
    buf = np.zeros(c.buffer_bytes // 4 + 2, np.uint32)
    ops = ctypes.byref(clib.COpCounts())
    args = [x.ctypes.data, out.ctypes.data, buf.ctypes.data, c.buffer_bytes, ops]
    for pos, name in [(0, "x"), (1, "logits"), (2, "buffer"), (4, "ops")]:
        bad = list(args)
        bad[pos] = None
        _fails("FT_ERR_NULL", name, _forward, c, *bad)
    bad = list(args)
    bad[2] = buf.ctypes.data + 1
    e = _fails("FT_ERR_ARG", "buffer (address mod 4)", _forward, c, *bad)
    assert e.value == 1
    _forward(c, *args)  # and the good call passes


@pytest.mark.parametrize(
    ("layer", "changes", "argument"),
    [
        (0, {"t_out": 99}, "net->layers[0].dims.t_out"),
        (0, {"c_in": 2}, "net->layers[0].dims.c_in"),
        (1, {"size": 1000}, "net->layers[1].dims.kernel"),
        (-1, {"c_in": 5}, "net->layers[{}].dims.c_in"),
    ],
)
def test_inconsistent_shapes(net: Q.QNet, layer: int, changes: dict, argument: str) -> None:
    i = layer % len(net.layers)
    _fails("FT_ERR_SHAPE", argument.format(i), QNetC, _with(net, i, **changes))


def test_class_count_and_last_layer_kind(net: Q.QNet) -> None:
    _fails("FT_ERR_SHAPE", "net->n_classes", QNetC, replace(net, n_classes=5))
    _fails("FT_ERR_SHAPE", "net->n_layers", QNetC, replace(net, layers=()))
    pool = Q.QPool("max", "p", 4, 1, 1, 1, 1, 0)
    _fails("FT_ERR_SHAPE", f"net->layers[{len(net.layers)}].dims.kind", QNetC,
           replace(net, layers=(*net.layers, pool)))  # fmt: skip


def test_accumulator_bound(net: Q.QNet) -> None:
    """A conv whose sum could overflow int32 is refused before it runs (no undefined C)."""
    big = _with(net, 0, kernel=70000, padding="same")
    e = _fails("FT_ERR_SHAPE", "net->layers[0].dims.c_in", QNetC, big)
    assert e.hi == 2**30 // (70000 * 128 * 128)


def test_dynamic_network_errors() -> None:
    rng = np.random.default_rng(1)
    dyn = Q.quantize_dynamic(Q.fold_spec(SPEC), Q.fold_state(SPEC, random_state(SPEC, rng)))
    layers = list(dyn.layers)
    layers[-1] = replace(layers[-1], relu=True)
    _fails("FT_ERR_ARG", f"net->layers[{len(layers) - 1}].relu", DynamicNetC,
           replace(dyn, layers=tuple(layers)))  # fmt: skip
    c = DynamicNetC(dyn)
    c._layers[0].w_scale = None
    _fails("FT_ERR_NULL", "net->layers[0].w_scale", c.logits, np.zeros((1, 3, 24), np.float32))
