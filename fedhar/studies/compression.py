"""The compressed model of a fold: what the server distributes in the scenario's payload format.

A float format (``float32``, ``int8``) sends the pretrained state as it is (the codec quantizes
int8 weights on the way). An integer network format (``full_int8``, ``w4a4``, ``w2a2``,
``w1a1``, ``mixed``) sends a :class:`~fedhar.models.quantized.QNet` made by the scenario's
``federation.compression``; ``ptq`` folds every BatchNorm into its conv and calibrates the
activation scales on the fold's pretraining windows (``federation.calibration_windows`` of them,
evenly spaced, normalized with the fold's normalizer), clipping at
``federation.calibration_percentile``. ``qat`` calibrates on the same windows (each PACT clip
by the ``mse`` rule of :mod:`fedhar.compress.calibration`) and trains the folded network with
PACT quantization-aware training (:func:`fedhar.compress.qat.qat_finetune`) on the fold's
pretraining windows, so the held-out user never contributes to its own model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedhar.compress.qat import qat_finetune, to_qnet
from fedhar.models.ptq import calibrate_scales
from fedhar.models.quantized import QNet, dequantize, fold_state, quantize
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
    if fed.compression == "qat":
        ws = fold_windows(prepared, fold)
        trained = qat_finetune(
            folded,
            folded_state,
            bits,
            general.normalizer.transform(ws.x),
            np.asarray(ws.y, dtype=np.int64),
            epochs=fed.qat_epochs,
            lr=fed.qat_lr,
            batch_size=scenario.pretrain.batch_size,
            seed=scenario.seed,
            calib_x=x,
        )
        # Scales travel as float32: re-quantize the trained levels at float32-rounded scales
        # (the levels come back unchanged; multipliers move by float32 rounding only).
        trained_net = to_qnet(trained)
        state = dequantize(trained_net)
        act = {q.name: float(np.float32(q.out_scale)) for q in trained_net.linears() if not q.last}
        net = quantize(folded, state, bits, act, float(np.float32(trained_net.in_scale)))
        return Compressed(folded, state, net)
    scales = calibrate_scales(folded, folded_state, x, bits, percentile=fed.calibration_percentile)
    net = quantize(folded, folded_state, bits, scales.act, scales.input)
    return Compressed(folded, folded_state, net)
