"""The payload formats of a federation (``federation.payload``) and the model each one carries.

Two kinds of format:

* **float states** (``float32``, ``int8``): the model spec's float tensors, as
  :mod:`fedhar.wire.codec` packs them; the client trains and deploys the decoded floats.
* **integer networks** (``full_int8``, ``w4a4``, ``w2a2``, ``w1a1``, ``mixed``): a
  :class:`~fedhar.models.quantized.QNet` of the BatchNorm-folded spec (:func:`payload_spec`), as
  :mod:`fedhar.wire.qcodec` packs it, at :func:`layer_bits`. Its float state is the network
  dequantized (:func:`~fedhar.models.quantized.dequantize`); a float state goes out as the
  network of the format's bits and a reference network's activation scales
  (:func:`~fedhar.models.ptq.requantize`).

The server's strategy and the client both go through :func:`encode_payload` and
:func:`decode_payload`, so a model is encoded one way whoever sends it.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping

import numpy as np
from flwr.app import ArrayRecord

from fedhar.models.ptq import requantize
from fedhar.models.quantized import QNet, dequantize, fold_spec
from fedhar.models.spec import ModelSpec
from fedhar.schema.scenario import PayloadFormat
from fedhar.wire.codec import PayloadError, decode_model, encode_model
from fedhar.wire.qcodec import decode_qnet, encode_qnet, is_qnet_record

PAYLOAD_FORMATS: tuple[str, ...] = typing.get_args(PayloadFormat)
FIXED_BITS: dict[str, int] = {"full_int8": 8, "w4a4": 4, "w2a2": 2, "w1a1": 1}
"""The integer formats with one bit-width for every layer's weights and activations."""
NETWORK_FORMATS: tuple[str, ...] = (*FIXED_BITS, "mixed")


def is_network_format(payload: str) -> bool:
    """Whether ``payload`` sends an integer network (else a float state)."""
    return payload in NETWORK_FORMATS


def payload_spec(payload: str, spec: ModelSpec) -> ModelSpec:
    """The spec whose float state a ``payload`` carries: ``spec`` folded for a network
    format (no BatchNorm), else ``spec``."""
    return fold_spec(spec) if is_network_format(payload) else spec


def linear_names(spec: ModelSpec) -> list[str]:
    """The conv and dense layers of ``spec``, in order: those that take bits."""
    return [layer.name for layer in spec.layers if layer.kind in ("conv1d", "dense")]


def layer_bits(
    payload: str, spec: ModelSpec, mixed: Mapping[str, tuple[int, int]] | None = None
) -> dict[str, tuple[int, int]]:
    """``(w_bits, a_bits)`` of every conv and dense layer of ``spec`` for a network format:
    the format's bits for all (``full_int8``, ``w4a4``, ...), or ``mixed``'s mapping.

    Raises:
        ValueError: ``payload`` is not a network format, or ``mixed`` does not name exactly
            the conv and dense layers of ``spec`` (the message lists them).
    """
    names = linear_names(spec)
    if payload in FIXED_BITS:
        return {name: (FIXED_BITS[payload], FIXED_BITS[payload]) for name in names}
    if payload != "mixed":
        raise ValueError(f"payload {payload!r} is not an integer network format")
    given = dict(mixed or {})
    missing = [n for n in names if n not in given]
    unknown = [n for n in given if n not in names]
    if missing or unknown:
        found = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown {', '.join(unknown)}" if unknown else "",
            )
            if part
        )
        raise ValueError(
            f"expected [w_bits, a_bits] for each conv and dense layer of model {spec.name} "
            f"({', '.join(names)}), got {found}"
        )
    return {n: (int(given[n][0]), int(given[n][1])) for n in names}


def encode_payload(
    state: Mapping[str, np.ndarray], spec: ModelSpec, payload: str, like: QNet | None = None
) -> ArrayRecord:
    """The record of the float32 ``state`` of ``spec`` (:func:`payload_spec`) in ``payload``;
    a network format quantizes it at ``like``'s bits and activation scales.

    Raises:
        PayloadError: an unknown format, a network format without ``like``, or a state that
            does not match ``spec`` or cannot be quantized.
    """
    if payload not in PAYLOAD_FORMATS:
        raise PayloadError(f"payload format must be one of {PAYLOAD_FORMATS}, got {payload!r}")
    if not is_network_format(payload):
        return encode_model(state, spec.param_shapes(), payload)
    if like is None:
        raise PayloadError(f"payload {payload} needs the network whose scales it keeps")
    try:
        return encode_qnet(requantize(spec, state, like))
    except (KeyError, ValueError) as exc:
        raise PayloadError(f"cannot quantize the model for payload {payload}: {exc}") from None


def decode_network(record: ArrayRecord, spec: ModelSpec) -> QNet | None:
    """The network a record holds (None for a float state)."""
    return decode_qnet(record, spec) if is_qnet_record(record) else None


def decode_payload(record: ArrayRecord, spec: ModelSpec) -> dict[str, np.ndarray]:
    """The float32 state of ``spec`` (:func:`payload_spec`) that ``record`` carries, whatever
    its format: a network dequantized, or a float state decoded.

    Raises:
        PayloadError: the record does not hold a model of ``spec``.
    """
    net = decode_network(record, spec)
    if net is not None:
        return dequantize(net)
    return decode_model(record, spec.param_shapes())
