"""Compression of the distributed model: sizes on the wire and dequantization error."""

from __future__ import annotations

import numpy as np
import pytest

from fedhar.models.spec import cnn3, daghero_cnn
from fedhar.models.torch_model import build_torch
from fedhar.wire.codec import PayloadError, decode_model, encode_model, payload_bytes


def _state(spec, seed: int = 0) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in build_torch(spec, seed=seed).spec_state_dict().items()}


@pytest.mark.parametrize("length", [20, 100])
@pytest.mark.parametrize("n_classes", [5, 6])
def test_int8_payload_is_at_most_30_percent_of_float32(length: int, n_classes: int) -> None:
    spec = cnn3(3, length, n_classes)
    state = _state(spec)
    int8 = payload_bytes(encode_model(state, spec.param_shapes(), "int8"))
    float32 = payload_bytes(encode_model(state, spec.param_shapes(), "float32"))
    assert int8 <= 0.30 * float32, (int8, float32)


def test_float32_payload_is_exact() -> None:
    spec = cnn3(3, 40, 6)
    state = _state(spec)
    back = decode_model(encode_model(state, spec.param_shapes(), "float32"), spec.param_shapes())
    for key, value in state.items():
        np.testing.assert_array_equal(back[key], value)


@pytest.mark.parametrize("spec", [cnn3(3, 100, 6), daghero_cnn(3, 64, 6)])
def test_int8_error_is_at_most_half_a_step_per_channel(spec) -> None:
    rng = np.random.default_rng(1)
    state = _state(spec)
    for key in state:
        state[key] = (state[key] * rng.uniform(0.1, 10.0)).astype(np.float32)
    shapes = spec.param_shapes()
    back = decode_model(encode_model(state, shapes, "int8"), shapes)
    for key, value in state.items():
        assert back[key].shape == value.shape and back[key].dtype == np.float32
        error = np.abs(back[key] - value)
        if value.ndim >= 2:
            step = np.abs(value.reshape(value.shape[0], -1)).max(axis=1) / 127
            bound = (step / 2 * (1 + 1e-5) + 1e-12)[:, None]
            assert (error.reshape(value.shape[0], -1) <= bound).all(), key
        else:
            assert error.max() <= np.abs(value).max() * 1e-6 + 1e-12, key


def test_zero_channel_survives() -> None:
    spec = cnn3(3, 20, 5)
    state = _state(spec)
    state["conv1.weight"][3] = 0.0
    shapes = spec.param_shapes()
    back = decode_model(encode_model(state, shapes, "int8"), shapes)
    assert np.all(back["conv1.weight"][3] == 0.0)


def test_mismatched_spec_is_a_clear_error() -> None:
    small, big = cnn3(3, 20, 5), cnn3(3, 20, 6)
    record = encode_model(_state(small), small.param_shapes(), "int8")
    with pytest.raises(PayloadError, match="'q8' holds 9882 values, the model spec needs 9932"):
        decode_model(record, big.param_shapes())
    with pytest.raises(PayloadError, match="lacks 'fc2.weight'"):
        state = _state(small)
        del state["fc2.weight"]
        encode_model(state, small.param_shapes())
    with pytest.raises(PayloadError, match="payload kind must be one of"):
        encode_model(_state(small), small.param_shapes(), "int4")
