"""What a device deploys from the payload it received, and how it scores a model as deployed.

A float payload (``float32``, ``int8``) is decoded into the model spec's float state; the
device deploys a model in that same format (an ``int8`` payload: 8-bit weights, float
activations), so a trained state is scored after an encode-decode round trip of the payload's
codec. An integer network payload (:mod:`fedhar.wire.qcodec`) is decoded into its
:class:`~fedhar.models.quantized.QNet`; the device trains its dequantized weights on the folded
spec (no BatchNorm), and deploys a trained state re-quantized at the received network's bits
and activation scales, scored by integer inference (:func:`qnet_logits`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from flwr.app import ArrayRecord

from fedhar.metrics import score
from fedhar.models.ptq import requantize
from fedhar.models.quantized import QNet, dequantize, fold_spec
from fedhar.models.spec import ModelSpec
from fedhar.ondevice.ctrain import Trainer
from fedhar.ondevice.qnet_infer import QNetC
from fedhar.wire.codec import decode_model, encode_model, record_kind, roundtrip
from fedhar.wire.payload import decode_network
from fedhar.wire.qcodec import encode_qnet


def qnet_logits(net: QNet, x: np.ndarray) -> np.ndarray:
    """``[N, n_classes]`` float32 logits of the deployed ``net`` on float windows
    ``x [N, C, T]`` (normalized), run by the device's C integer kernels
    (:class:`fedhar.ondevice.qnet_infer.QNetC`)."""
    logits, _ = QNetC(net).logits(net.quantize_input(x))
    return logits


@dataclass(frozen=True)
class Deployment:
    """The model a device received, in the format it deploys.

    Attributes:
        spec: the spec the device trains (folded for a network payload).
        received: float32 tensors of ``spec`` as received (dequantized).
        kind: the payload's float format (``int8``, ``float32``), or ``network``.
        net: the received network (network payloads only).
    """

    spec: ModelSpec
    received: dict[str, np.ndarray]
    kind: str
    net: QNet | None = None

    def network(self, state: Mapping[str, np.ndarray]) -> QNet:
        """``state`` re-quantized at the received network's bits and scales."""
        if self.net is None:
            raise ValueError(f"a {self.kind} payload deploys no integer network")
        return requantize(self.spec, state, self.net)

    def f1(
        self, trainer: Trainer, x: np.ndarray, y: np.ndarray, state: Mapping[str, np.ndarray] | None
    ) -> float:
        """Macro-F1 on windows ``x [N, C, T]`` (labels ``y [N]``) of ``state`` as deployed
        (None: the received model as it came). A float format loads the deployed weights
        into ``trainer`` (which then holds them) and scores its float inference."""
        n_classes = self.spec.n_classes
        if self.net is not None:
            net = self.net if state is None else self.network(state)
            return score(y, np.argmax(qnet_logits(net, x), axis=1), n_classes).macro_f1
        shapes = self.spec.param_shapes()
        trainer.load_state_dict(
            roundtrip(self.received if state is None else state, shapes, self.kind)
        )
        return score(y, np.argmax(trainer.logits(x), axis=1), n_classes).macro_f1

    def update(self, state: Mapping[str, np.ndarray]) -> ArrayRecord:
        """The record of a personalized ``state``, in the format the model came in."""
        if self.net is not None:
            return encode_qnet(self.network(state))
        return encode_model(state, self.spec.param_shapes(), self.kind)


def receive(record: ArrayRecord, spec: ModelSpec) -> Deployment:
    """The deployment of a received model record, for the device's model ``spec`` (with its
    BatchNorm layers; a network payload is decoded on the folded spec).

    Raises:
        fedhar.wire.codec.PayloadError: the record does not hold a model of ``spec``.
    """
    folded = fold_spec(spec)
    net = decode_network(record, folded)
    if net is not None:
        return Deployment(folded, dequantize(net), "network", net)
    kind = record_kind(record)
    return Deployment(spec, decode_model(record, spec.param_shapes()), kind)
