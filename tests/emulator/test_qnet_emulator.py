"""The compressed-inference kernels (fh_qnet.c) on the emulated Cortex-M4F: for one small model
at each bit-width, at mixed precision and as a dynamic-range network, the logits, counters and
memory equal the host build's, and the executed instructions show daghero2022 §5.3 on the
core: sub-byte layers, which unpack to bytes, cost more than int8; binary layers, with AND and
popcount, cost less."""

from __future__ import annotations

import os

import numpy as np
import pytest

from fedhar.mcu.profile import load_profile
from fedhar.models import quantized as Q
from fedhar.models.spec import daghero_cnn
from fedhar.ondevice import emulator
from fedhar.ondevice.qnet_infer import DynamicNetC, QNetC

MISSING = emulator.missing_tools()
if MISSING and os.environ.get("CI") == "true":
    raise RuntimeError(f"CI must install the emulator tools; missing: {MISSING}")
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"emulator tools missing: {MISSING}")

SPEC = daghero_cnn(3, 32, 4, channels=(8, 16, 32), kernels=(5, 5, 5), hidden=16)
FORMATS = ("int8", "int4", "int2", "int1", "mixed", "dynamic")


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[emulator.QNetRun, np.ndarray, object]]:
    """Each format run once on the emulator, with the host's logits and counters."""
    b = emulator.build()
    state, x, _ = emulator.random_inputs(SPEC, 4, seed=3)
    fs, fst = Q.fold_spec(SPEC), Q.fold_state(SPEC, state)
    names = [layer.name for layer in fs.layers if layer.kind in ("conv1d", "dense")]
    mixed = dict(zip(names, [(8, 4), (4, 2), (2, 1), (1, 8), (8, 8)], strict=True))
    out = {}
    for label in FORMATS:
        if label == "dynamic":
            net: Q.QNet | Q.DynamicNet = Q.quantize_dynamic(fs, fst)
            xin, host = x, DynamicNetC(net).logits(x)
        else:
            bits = mixed if label == "mixed" else {n: (int(label[3:]),) * 2 for n in names}
            scales = {n: 0.5 / Q.act_levels(bits[n][1]) for n in names}
            net = Q.quantize(fs, fst, bits, scales, float(np.abs(x).max()) / 127)
            xin = net.quantize_input(x)
            host = QNetC(net).logits(xin)
        out[label] = (emulator.run_qnet(net, xin, b), host, net)
    return out


@pytest.mark.parametrize("label", FORMATS)
def test_emulator_equals_host(runs, label: str) -> None:
    run, (logits, ops), net = runs[label]
    assert run.status == 0
    np.testing.assert_array_equal(run.logits, logits)
    assert run.ops == ops
    host = (DynamicNetC if label == "dynamic" else QNetC)(net)
    assert run.memory == host.memory


def test_sub_byte_unpacking_costs_and_binary_saves(runs) -> None:
    timings = load_profile("stm32l496zg_fedhar").instruction_timings
    cycles = {k: runs[k][0].execution.cycles(timings) for k in FORMATS}
    assert cycles["int4"] > cycles["int8"] and cycles["int2"] > cycles["int8"]
    assert cycles["int1"] < cycles["int8"]
    # the op-count pricing points the same way
    profile = load_profile("stm32l496zg_fedhar")
    priced = {k: profile.cycles(runs[k][0].ops) for k in FORMATS}
    assert priced["int1"] < priced["int8"] < priced["int4"]
