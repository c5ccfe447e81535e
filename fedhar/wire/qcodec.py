"""A deployed integer network (:class:`~fedhar.models.quantized.QNet`) as one compact record.

Both ends know the folded model spec, so the record carries only what the spec and the bit
assignment do not tell: five flat little-endian arrays (stype :data:`~fedhar.wire.codec.RAW_STYPE`),
layers in execution order:

``bits``  uint8: ``w_bits, out_bits`` of every conv and dense layer (``out_bits`` 0 for the last);
``qw``    uint8: every layer's packed weights (:meth:`~fedhar.models.quantized.QLinear.weight`,
          ``ceil(n · w_bits / 8)`` bytes each), concatenated;
``ws``    float32: the per-output-channel weight scales;
``qb``    int32: the biases, in accumulator units;
``as``    float32: the input scale, then every hidden layer's output scale.

The bits travel in the record rather than in the message's config because a client's reply
carries its re-quantized network back without a config, and the server decodes both the same
way. The requantization multipliers, shifts and logit scales are not sent: the receiver
recomputes them from the scales exactly as :func:`~fedhar.models.quantized.quantize` does, so a
decoded network equals the sent one field by field (scales must be float32 values for that).
The record's size is then the packed weights, ``8 · Σ c_out`` bytes of weight scales and biases,
``4 ·`` layers of input and activation scales and ``2 ·`` layers of bits (:func:`raw_bytes`),
plus Flower's framing of five arrays.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from flwr.app import Array, ArrayRecord

from fedhar.models.quantized import (
    BITS,
    QLinear,
    QNet,
    packed_bytes,
    q31,
    quantize,
)
from fedhar.models.spec import ModelSpec
from fedhar.wire.codec import RAW_STYPE, PayloadError

QNET_ARRAYS: dict[str, np.dtype] = {
    "bits": np.dtype("u1"),
    "qw": np.dtype("u1"),
    "ws": np.dtype("<f4"),
    "qb": np.dtype("<i4"),
    "as": np.dtype("<f4"),
}
"""The arrays of a network's record and their dtypes."""


def is_qnet_record(record: ArrayRecord) -> bool:
    """Whether ``record`` holds a network (:func:`encode_qnet`) rather than a float state."""
    return "qw" in record


def _array(values: np.ndarray, dtype: np.dtype) -> Array:
    flat = np.ascontiguousarray(values).reshape(-1).astype(dtype)
    return Array(dtype=flat.dtype.name, shape=(flat.size,), stype=RAW_STYPE, data=flat.tobytes())


def _float32_exact(values: np.ndarray, what: str) -> np.ndarray:
    wide = np.asarray(values, np.float64)
    narrow = wide.astype(np.float32)
    if not np.array_equal(narrow.astype(np.float64), wide):
        raise PayloadError(f"{what} must be float32 values to travel exactly")
    return narrow


def encode_qnet(net: QNet) -> ArrayRecord:
    """Packs ``net`` into a record (see the module docstring).

    Raises:
        PayloadError: an input or activation scale that is not a float32 value.
    """
    linears = net.linears()
    scales = [net.in_scale] + [q.out_scale for q in linears if not q.last]
    arrays = {
        "bits": np.array([b for q in linears for b in (q.w_bits, q.out_bits)], np.uint8),
        "qw": np.concatenate([q.weight for q in linears]),
        "ws": np.concatenate([q.w_scale for q in linears]),
        "qb": np.concatenate([q.bias for q in linears]),
        "as": _float32_exact(np.array(scales), "input and activation scales"),
    }
    record = ArrayRecord()
    for name, dtype in QNET_ARRAYS.items():
        record[name] = _array(arrays[name], dtype)
    return record


def _arrays(record: ArrayRecord) -> dict[str, np.ndarray]:
    if set(record) != set(QNET_ARRAYS):
        raise PayloadError(
            f"network payload holds arrays {sorted(record)}, expected {sorted(QNET_ARRAYS)}"
        )
    out = {}
    for name, dtype in QNET_ARRAYS.items():
        array = record[name]
        if array.stype != RAW_STYPE or array.dtype != dtype.name:
            raise PayloadError(
                f"payload array {name!r}: expected stype {RAW_STYPE!r} and dtype "
                f"{dtype.name!r}, got {array.stype!r} and {array.dtype!r}"
            )
        out[name] = np.frombuffer(array.data, dtype=dtype)
    return out


def _check_sizes(arrays: dict[str, np.ndarray], skeleton: QNet) -> None:
    linears = skeleton.linears()
    needed = {
        "qw": sum(packed_bytes(q.n_weights, q.w_bits) for q in linears),
        "ws": sum(q.c_out for q in linears),
        "qb": sum(q.c_out for q in linears),
        "as": len(linears),
    }
    for name, count in needed.items():
        if arrays[name].size != count:
            raise PayloadError(
                f"payload array {name!r} holds {arrays[name].size} values, the model spec at "
                f"these bits needs {count}"
            )
    ws = arrays["ws"]
    if not (np.isfinite(ws).all() and (ws > 0).all()):
        raise PayloadError("payload weight scales must be finite and > 0")


def decode_qnet(record: ArrayRecord, spec: ModelSpec) -> QNet:
    """Inverse of :func:`encode_qnet` for the folded ``spec`` the network deploys.

    Raises:
        PayloadError: the record does not hold a network of ``spec``.
    """
    arrays = _arrays(record)
    names = [layer.name for layer in spec.layers if layer.kind in ("conv1d", "dense")]
    pairs = arrays["bits"].astype(int).reshape(-1, 2) if arrays["bits"].size % 2 == 0 else None
    if pairs is None or len(pairs) != len(names):
        raise PayloadError(
            f"payload bits hold {arrays['bits'].size} values, the model spec needs "
            f"{2 * len(names)} (w_bits, out_bits per conv and dense layer)"
        )
    bits = {name: (int(w), int(a)) for name, (w, a) in zip(names, pairs, strict=True)}
    bad = [n for n, (w, a) in bits.items() if w not in BITS or (a not in BITS and n != names[-1])]
    if bad:
        raise PayloadError(f"payload bits of {', '.join(bad)} are not among {BITS}")
    scales = arrays["as"].astype(np.float64)
    if scales.size != len(names) or not (np.isfinite(scales).all() and (scales > 0).all()):
        raise PayloadError(
            f"payload scales hold {scales.size} values, expected {len(names)} finite ones > 0"
        )
    act = {name: float(s) for name, s in zip(names[:-1], scales[1:], strict=True)}
    zeros = {k: np.zeros(shape, np.float32) for k, shape in spec.param_shapes().items()}
    skeleton = quantize(spec, zeros, bits, act, float(scales[0]))
    _check_sizes(arrays, skeleton)
    cursor = {"qw": 0, "ws": 0, "qb": 0}

    def take(name: str, count: int) -> np.ndarray:
        start = cursor[name]
        cursor[name] = start + count
        return arrays[name][start : start + count].copy()

    layers = []
    for layer in skeleton.layers:
        if isinstance(layer, QLinear):
            layer = _filled(
                layer,
                take("qw", packed_bytes(layer.n_weights, layer.w_bits)),
                take("ws", layer.c_out),
                take("qb", layer.c_out),
            )
        layers.append(layer)
    return replace(skeleton, layers=tuple(layers))


def _filled(q: QLinear, weight: np.ndarray, w_scale: np.ndarray, bias: np.ndarray) -> QLinear:
    """``q`` with the received weights, scales and biases, and the requantization that
    :func:`~fedhar.models.quantized.quantize` derives from them."""
    step = q.in_scale * w_scale.astype(np.float64)
    if q.last:
        return replace(
            q, weight=weight, w_scale=w_scale, bias=bias, logit_scale=step.astype(np.float32)
        )
    mult, rshift = q31(step / q.out_scale)
    return replace(
        q, weight=weight, w_scale=w_scale, bias=bias, mult=mult, rshift=rshift.astype(np.int8)
    )


def raw_bytes(net: QNet) -> int:
    """Bytes of the numbers :func:`encode_qnet` sends for ``net`` (Flower's framing aside):
    packed weights, float32 weight scales and int32 biases per output channel, float32 input
    and hidden-layer scales, and two bytes of bits per layer."""
    linears = net.linears()
    weights = sum(packed_bytes(q.n_weights, q.w_bits) for q in linears)
    channels = sum(q.c_out for q in linears)
    return weights + 8 * channels + 4 * len(linears) + 2 * len(linears)
