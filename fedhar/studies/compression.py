"""The compressed model of a fold: what the server distributes in the scenario's payload format.

A float format (``float32``, ``int8``) sends the pretrained state as it is (the codec quantizes
int8 weights on the way). An integer network format (``full_int8``, ``w4a4``, ``w2a2``,
``w1a1``, ``mixed``) sends a :class:`~fedhar.models.quantized.QNet` made by the scenario's
``federation.compression``; ``ptq`` folds every BatchNorm into its conv and calibrates the
activation scales on the fold's pretraining windows (``federation.calibration_windows`` of them,
evenly spaced, normalized with the fold's normalizer), clipping at
``federation.calibration_percentile``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedhar.models.ptq import calibrate_scales
from fedhar.models.quantized import QNet, fold_state, quantize
from fedhar.models.spec import ModelSpec
from fedhar.schema.scenario import Scenario
from fedhar.studies.pipeline import Fold, Prepared, fold_windows
from fedhar.studies.pretrain import PretrainResult
from fedhar.wire.payload import is_network_format, layer_bits, payload_spec


@dataclass(frozen=True)
class Compressed:
    """A fold's model as the server sends it.

    Attributes:
        spec: the spec of ``state`` (:func:`~fedhar.wire.payload.payload_spec`: folded for an
            integer network format).
        state: float32 tensors of ``spec``; for a network format, the folded float model that
            ``net`` quantizes (aggregation updates it, then re-quantizes at ``net``'s scales).
        net: the deployed network (None for a float format).
    """

    spec: ModelSpec
    state: dict[str, np.ndarray]
    net: QNet | None = None


def calibration_windows(
    prepared: Prepared, fold: Fold, general: PretrainResult, count: int
) -> np.ndarray:
    """``[min(count, N), C, T]`` float32 windows of the fold's pretraining users, evenly
    spaced over the ``N`` there are, normalized with the fold's normalizer."""
    x = fold_windows(prepared, fold).x
    picks = np.unique(np.linspace(0, len(x) - 1, min(count, len(x))).round().astype(int))
    return general.normalizer.transform(x[picks]).astype(np.float32)


def compress_fold(
    prepared: Prepared, fold: Fold, general: PretrainResult, scenario: Scenario
) -> Compressed:
    """The model of ``fold`` in the scenario's payload format (see the module docstring)."""
    fed = scenario.federation
    state = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in general.state_dict.items()}
    spec = prepared.spec
    if not is_network_format(fed.payload):
        return Compressed(spec, state)
    folded = payload_spec(fed.payload, spec)
    folded_state = fold_state(spec, state)
    bits = layer_bits(fed.payload, folded, fed.bits)
    x = calibration_windows(prepared, fold, general, fed.calibration_windows)
    scales = calibrate_scales(folded, folded_state, x, bits, percentile=fed.calibration_percentile)
    net = quantize(folded, folded_state, bits, scales.act, scales.input)
    return Compressed(folded, folded_state, net)
