"""The C kernels of fh_qnet.c on the project's models: cnn3 and the daghero template at every
uniform bit-width and at random mixed precision equal the numpy integer reference (float32
rounding of the logits only), count what the analytic estimator predicts, and use the memory it
predicts, to the byte. The dynamic-range network equals its float32 reference bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from fedhar.models import quantized as Q
from fedhar.models.spec import ModelSpec, cnn3, daghero_cnn
from fedhar.ondevice.qnet_estimate import estimate_qnet
from tests.ondevice_q._qnet_support import (
    build_qnet,
    check_dynamic,
    check_qnet,
    float_logits,
    random_bits,
    random_state,
)

SPECS = {
    "cnn3": lambda: cnn3(3, 60, 6),
    "daghero": lambda: daghero_cnn(3, 60, 6),
    "daghero_hidden": lambda: daghero_cnn(3, 60, 6, hidden=16),
}


def _model(name: str, seed: int) -> tuple[ModelSpec, dict[str, np.ndarray], np.ndarray]:
    spec = SPECS[name]()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((12, spec.input_channels, spec.input_length)).astype(np.float32)
    return spec, random_state(spec, rng), x


def _uniform(spec: ModelSpec, b: int) -> dict[str, tuple[int, int]]:
    return {layer.name: (b, b) for layer in spec.layers if layer.kind in ("conv1d", "dense")}


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("bits", Q.BITS)
def test_uniform_bit_width_matches_reference(name: str, bits: int) -> None:
    spec, state, x = _model(name, bits)
    net = build_qnet(spec, state, _uniform(spec, bits), x)
    logits = check_qnet(net, net.quantize_input(x))
    # The test is only as strong as the logits are informative: they vary across samples.
    assert np.ptp(logits, axis=0).max() > 0


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("seed", range(6))
def test_mixed_precision_matches_reference(name: str, seed: int) -> None:
    spec, state, x = _model(name, 100 + seed)
    bits = random_bits(Q.fold_spec(spec), np.random.default_rng(seed))
    net = build_qnet(spec, state, bits, x)
    check_qnet(net, net.quantize_input(x))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_dynamic_range_matches_float32_reference(name: str) -> None:
    spec, state, x = _model(name, 7)
    net = Q.quantize_dynamic(Q.fold_spec(spec), Q.fold_state(spec, state))
    logits = check_dynamic(net, x)
    assert np.ptp(logits, axis=0).max() > 0


def test_binary_layers_count_popcounts_not_macs() -> None:
    """At 1 bit every layer after the first (which reads the int8 input) is binary: its dot
    products are AND + popcount, so the network's MACs are those of the first conv alone."""
    spec, state, x = _model("daghero", 1)
    net = build_qnet(spec, state, _uniform(spec, 1), x)
    first = net.linears()[0]
    ops, mem = estimate_qnet(net)
    assert ops.macs == first.c_out * first.c_in * sum(
        min(o + first.kernel // 2 + 1, first.t_in) - max(o - first.kernel // 2, 0)
        for o in range(first.t_out)
    )
    assert ops.bitops > 10 * ops.macs
    assert mem["bit_columns"] > 0 and mem["unpacked_weights"] > 0


def test_sub_byte_memory_shrinks_with_bits() -> None:
    """Packed activations and weights: the ping-pong buffers and the model at 4, 2 and 1 bit
    are about 1/2, 1/4 and 1/8 of the 8-bit ones."""
    spec, state, x = _model("cnn3", 3)
    mem = {b: estimate_qnet(build_qnet(spec, state, _uniform(spec, b), x))[1] for b in Q.BITS}
    for b in (1, 2, 4):
        for part in ("ping", "pong"):
            assert mem[b][part] == pytest.approx(mem[8][part] * b / 8, abs=1)
        assert mem[b]["model"] < mem[8]["model"]
    assert mem[8]["unpacked_input"] == 0 and mem[4]["unpacked_input"] > 0


def test_dynamic_logits_track_the_float_model() -> None:
    """Dynamic-range int8 stays close to the float model it quantizes (contoli2023: a small
    accuracy loss), and far closer than the same model at 1 bit."""
    spec, state, x = _model("cnn3", 11)
    fs, fst = Q.fold_spec(spec), Q.fold_state(spec, state)
    ref = float_logits(fs, fst, x)
    dyn = check_dynamic(Q.quantize_dynamic(fs, fst), x)
    err = np.abs(dyn - ref).max() / np.abs(ref).max()
    binary = build_qnet(spec, state, _uniform(spec, 1), x)
    err_1bit = np.abs(check_qnet(binary, binary.quantize_input(x)) - ref).max() / np.abs(ref).max()
    assert err < 0.05 < err_1bit
