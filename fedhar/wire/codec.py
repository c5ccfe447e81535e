"""Compression of a model for distribution: int8 weights, int32 biases, one compact record.

A model is a ``state_dict``-style mapping ``key -> ndarray`` whose keys and shapes follow the
model spec (:meth:`fedhar.models.spec.ModelSpec.param_shapes`). Both ends know the spec, so the
payload carries only numbers, packed into at most four flat little-endian arrays (stype
:data:`RAW_STYPE`, no per-array header), in spec key order:

``q8``    int8: every weight tensor of 2 or more dimensions (conv ``[F, C, K]``, dense
          ``[M, N]``), quantized symmetrically per output channel (axis 0):
          ``q = clip(round(w / s_c), -127, 127)`` with ``s_c = max|w_c| / 127``.
``q32``   int32: every bias, quantized symmetrically per tensor with
          ``s = max|b| / (2**31 - 1)``.
``scale`` float32: the per-channel weight scales, then the per-tensor bias scales.
``f32``   float32: every other tensor (BatchNorm γ and running statistics), as is.

With ``kind="float32"`` the whole model is one ``f32`` array, the reference for comparison.
Dequantization error is at most ``s_c / 2`` per weight element (half a quantization step).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from flwr.app import Array, ArrayRecord

from fedhar.wire.flower_compat import wire_bytes

PayloadKind = Literal["int8", "float32"]
PAYLOAD_KINDS: tuple[str, ...] = ("int8", "float32")
RAW_STYPE = "raw.le"
"""Array serialization of the payload: the bare little-endian buffer (no ``.npy`` header)."""
_DTYPES = {
    "q8": np.dtype("<i1"),
    "q32": np.dtype("<i4"),
    "scale": np.dtype("<f4"),
    "f32": np.dtype("<f4"),
}
_Q8_MAX = 127
_Q32_MAX = 2**31 - 1


class PayloadError(ValueError):
    """A payload that does not match the model spec it is decoded against."""


def _role(key: str, shape: tuple[int, ...], kind: str) -> str:
    if kind == "float32":
        return "f32"
    if len(shape) >= 2:
        return "q8"
    if key.endswith(".bias"):
        return "q32"
    return "f32"


def encode_model(
    state: Mapping[str, np.ndarray], shapes: Mapping[str, tuple[int, ...]], kind: str = "int8"
) -> ArrayRecord:
    """Packs ``state`` (keys and shapes as in ``shapes``, the spec's order) into a record.

    Raises:
        PayloadError: on an unknown ``kind``, a missing key or a wrong shape.
    """
    if kind not in PAYLOAD_KINDS:
        raise PayloadError(f"payload kind must be one of {PAYLOAD_KINDS}, got {kind!r}")
    parts: dict[str, list[np.ndarray]] = {"q8": [], "q32": [], "scale": [], "f32": []}
    bias_scales: list[float] = []
    for key, shape in shapes.items():
        if key not in state:
            raise PayloadError(f"model state lacks {key!r} (expected shape {tuple(shape)})")
        value = np.asarray(state[key], dtype=np.float32)
        if value.shape != tuple(shape):
            raise PayloadError(f"{key}: expected shape {tuple(shape)}, got {value.shape}")
        role = _role(key, tuple(shape), kind)
        if role == "q8":
            rows = value.reshape(shape[0], -1)
            scale = np.abs(rows).max(axis=1) / _Q8_MAX
            scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
            q = np.clip(np.rint(rows / scale[:, None]), -_Q8_MAX, _Q8_MAX).astype(np.int8)
            parts["q8"].append(q.ravel())
            parts["scale"].append(scale)
        elif role == "q32":
            peak = float(np.abs(value).max()) if value.size else 0.0
            scale32 = np.float32(peak / _Q32_MAX if peak > 0 else 1.0)
            q32 = np.clip(np.rint(value.astype(np.float64) / scale32), -_Q32_MAX, _Q32_MAX)
            parts["q32"].append(q32.astype(np.int32))
            bias_scales.append(float(scale32))
        else:
            parts["f32"].append(value.ravel())
    if bias_scales:
        parts["scale"].append(np.asarray(bias_scales, dtype=np.float32))
    record = ArrayRecord()
    for name, chunks in parts.items():
        if chunks:
            flat = np.concatenate(chunks).astype(_DTYPES[name])
            record[name] = Array(
                dtype=flat.dtype.name, shape=(flat.size,), stype=RAW_STYPE, data=flat.tobytes()
            )
    return record


def _unpack(name: str, array: Array) -> np.ndarray:
    if array.stype != RAW_STYPE or array.dtype != _DTYPES[name].name:
        raise PayloadError(
            f"payload array {name!r}: expected stype {RAW_STYPE!r} and dtype "
            f"{_DTYPES[name].name!r}, got {array.stype!r} and {array.dtype!r}"
        )
    return np.frombuffer(array.data, dtype=_DTYPES[name])


def record_kind(record: ArrayRecord) -> str:
    """The kind of an :func:`encode_model` record: ``int8`` when it holds ``q8``, else
    ``float32``."""
    return "int8" if "q8" in record else "float32"


def decode_model(
    record: ArrayRecord, shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, np.ndarray]:
    """Inverse of :func:`encode_model`: float32 tensors keyed and shaped as in ``shapes``.

    The payload kind is read from the record (an int8 payload holds ``q8``).

    Raises:
        PayloadError: when the record's arrays do not hold exactly what ``shapes`` needs.
    """
    unknown = set(record) - set(_DTYPES)
    if unknown:
        raise PayloadError(f"payload holds unknown arrays {sorted(unknown)}")
    arrays = {name: _unpack(name, record[name]) for name in record}
    kind = record_kind(record)
    roles = {key: _role(key, tuple(shape), kind) for key, shape in shapes.items()}
    n_channel_scales = sum(int(shapes[k][0]) for k, r in roles.items() if r == "q8")
    n_bias = sum(1 for r in roles.values() if r == "q32")
    needed = {
        "q8": sum(int(np.prod(shapes[k])) for k, r in roles.items() if r == "q8"),
        "q32": sum(int(np.prod(shapes[k])) for k, r in roles.items() if r == "q32"),
        "scale": n_channel_scales + n_bias,
        "f32": sum(int(np.prod(shapes[k])) for k, r in roles.items() if r == "f32"),
    }
    for name, count in needed.items():
        held = arrays[name].size if name in arrays else 0
        if held != count:
            raise PayloadError(
                f"payload array {name!r} holds {held} values, the model spec needs {count}"
            )
    cursor = dict.fromkeys(needed, 0)
    bias_scales = arrays["scale"][n_channel_scales:] if n_bias else np.zeros(0, np.float32)

    def take(name: str, count: int) -> np.ndarray:
        start = cursor[name]
        cursor[name] = start + count
        return arrays[name][start : start + count]

    out: dict[str, np.ndarray] = {}
    bias_index = 0
    for key, shape in shapes.items():
        shape = tuple(int(d) for d in shape)
        size = int(np.prod(shape))
        if roles[key] == "q8":
            q = take("q8", size).astype(np.float32).reshape(shape[0], -1)
            scale = take("scale", shape[0])
            out[key] = (q * scale[:, None]).reshape(shape)
        elif roles[key] == "q32":
            q32 = take("q32", size).astype(np.float64)
            out[key] = (q32 * float(bias_scales[bias_index])).astype(np.float32).reshape(shape)
            bias_index += 1
        else:
            out[key] = take("f32", size).astype(np.float32).reshape(shape)
    return out


def roundtrip(
    state: Mapping[str, np.ndarray], shapes: Mapping[str, tuple[int, ...]], kind: str = "int8"
) -> dict[str, np.ndarray]:
    """``state`` as it arrives after :func:`encode_model` then :func:`decode_model`."""
    return decode_model(encode_model(state, shapes, kind), shapes)


def payload_bytes(record: ArrayRecord) -> int:
    """Bytes on the wire of ``record``, as Flower serializes it."""
    return wire_bytes(record)
