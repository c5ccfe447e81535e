"""Fuzz: hundreds of random networks (channels, kernels, strides, 'same'/'valid' padding, max
and average pools, GAP or flatten, BatchNorm folding, conv logits, pools on the signed input)
with random bits per layer, random weights and inputs. The C integer network equals the numpy
integer reference, the dynamic-range network its float32 reference bit for bit, and both count
and size exactly what the estimator says.

``FEDHAR_QNET_FUZZ_CASES`` sets the number of networks (the sanitizer build runs fewer)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from fedhar.models import quantized as Q
from fedhar.models.spec import ModelSpec
from tests.ondevice_q._qnet_support import (
    build_qnet,
    check_dynamic,
    check_qnet,
    random_bits,
    random_spec,
    random_state,
)

CASES = int(os.environ.get("FEDHAR_QNET_FUZZ_CASES", "300"))
BLOCKS = 10


def _case(case: int) -> tuple[ModelSpec, dict, np.ndarray, dict, np.random.Generator]:
    """Network, state, float input and bits of fuzz case ``case`` (and its generator)."""
    rng = np.random.default_rng(1000 + case)
    spec = random_spec(rng)
    state = random_state(spec, rng)
    n = int(rng.integers(1, 5))
    x = (rng.standard_normal((n, spec.input_channels, spec.input_length)) * 2).astype(np.float32)
    return spec, state, x, random_bits(Q.fold_spec(spec), rng), rng


@pytest.mark.parametrize("block", range(BLOCKS))
def test_random_networks_match_reference(block: int) -> None:
    for case in range(block, CASES, BLOCKS):
        spec, state, x, bits, rng = _case(case)
        net = build_qnet(spec, state, bits, x)
        x_q = net.quantize_input(x)
        if rng.random() < 0.3:  # the full int8 range, -128 included
            x_q = rng.integers(-128, 128, x_q.shape).astype(np.int8)
        check_qnet(net, x_q)
        dyn = Q.quantize_dynamic(Q.fold_spec(spec), Q.fold_state(spec, state))
        check_dynamic(dyn, x)


def test_fuzz_covers_every_geometry() -> None:
    """The cases hold what the kernels must handle, so the fuzz test exercises it."""
    seen: set[str] = set()
    for case in range(CASES):
        spec, _, _, bits, _ = _case(case)
        kinds = [layer.kind for layer in spec.layers]
        seen |= set(kinds)
        convs = [layer for layer in spec.layers if layer.kind == "conv1d"]
        if any(c.padding == "same" and c.stride > 1 for c in convs):
            seen.add("same+stride")
        if kinds[0] in ("maxpool1d", "avgpool1d"):
            seen.add("signed pool")
        if kinds[-1] == "conv1d":
            seen.add("conv logits")
        linear = [name for name in bits if name in {layer.name for layer in spec.layers}]
        for prev, name in zip(linear, linear[1:], strict=False):
            if bits[name][0] == 1 and bits[prev][1] == 1:
                seen.add("binary")
    expected = {"conv1d", "dense", "maxpool1d", "avgpool1d", "gap1d", "flatten", "batchnorm1d"}
    assert expected | {"same+stride", "signed pool", "conv logits", "binary"} <= seen
