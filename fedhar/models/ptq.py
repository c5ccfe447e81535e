"""Post-training quantization (PTQ) of a folded model into a :class:`~fedhar.models.quantized.QNet`.

:func:`calibrate_scales` runs the folded float model over calibration windows and sets each
hidden layer's activation clip α at a percentile of its ReLU outputs (PACT's α, fixed after
training instead of learned), and the input's clip at the same percentile of ``|x|``; the scales
are ``α / (2^a - 1)`` and ``α_in / 127``. :func:`requantize` makes the network of a trained
float state at the bits and scales of a network already deployed, as a client does after
personalizing and the server does after aggregating.

Every scale is a float32 value (held as a Python float), so a payload that carries scales as
float32 gives the receiver the very network the sender built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from fedhar.models.quantized import INPUT_BITS, LayerBits, QNet, act_levels, quantize
from fedhar.models.spec import ModelSpec
from fedhar.models.torch_model import build_torch


@dataclass(frozen=True)
class Scales:
    """The real value of one step of the input and of each hidden layer's output.

    Attributes:
        input: one step of the signed 8-bit input (normalized data units).
        act: layer name → one step of its unsigned output, for every conv and dense layer but
            the last.
    """

    input: float
    act: dict[str, float]


def _f32(value: float) -> float:
    return float(np.float32(value))


def _clip(values: np.ndarray, percentile: float) -> float:
    """The clip α of ``values`` (non-negative): their ``percentile``, or their maximum when
    that is 0 (a sparse activation); 1 when every value is 0."""
    flat = values.reshape(-1).astype(np.float64)
    if flat.size == 0:
        return 1.0
    alpha = float(np.percentile(flat, percentile)) if percentile < 100 else float(flat.max())
    if alpha <= 0:
        alpha = float(flat.max())
    return alpha if alpha > 0 else 1.0


def calibrate_scales(
    spec: ModelSpec,
    state: Mapping[str, np.ndarray],
    x: np.ndarray,
    bits: LayerBits,
    *,
    percentile: float = 100.0,
) -> Scales:
    """Activation scales of a folded model from its float activations on ``x``.

    Args:
        spec: a folded spec (:func:`~fedhar.models.quantized.fold_spec`).
        state: its float32 tensors (:func:`~fedhar.models.quantized.fold_state`).
        x: ``[N, C, T]`` float32 calibration windows, normalized as in training.
        bits: ``(w_bits, a_bits)`` per conv and dense layer (``a_bits`` sets each scale).
        percentile: the clip of each tensor, in (0, 100]; 100 is the maximum.

    Raises:
        ValueError: ``x`` holds no window, ``percentile`` is out of range, or a hidden layer
            has no bits or no ReLU after it.
    """
    if len(x) == 0:
        raise ValueError("no calibration windows")
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must lie in (0, 100], got {percentile}")
    net = build_torch(spec)
    net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
    net.eval()
    in_scale = _f32(_clip(np.abs(x), percentile) / (2 ** (INPUT_BITS - 1) - 1))
    act: dict[str, float] = {}
    linear = [layer.name for layer in spec.layers if layer.kind in ("conv1d", "dense")]
    previous = ""
    h = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    with torch.no_grad():
        for layer, module in zip(spec.layers, net.children(), strict=True):
            h = module(h)
            if layer.kind in ("conv1d", "dense"):
                previous = layer.name
            elif layer.kind == "relu" and previous in linear[:-1] and previous not in act:
                if previous not in bits:
                    raise ValueError(f"no bit-widths for layer {previous!r}")
                levels = act_levels(bits[previous][1])
                act[previous] = _f32(_clip(h.numpy(), percentile) / levels)
    missing = [name for name in linear[:-1] if name not in act]
    if missing:
        raise ValueError(f"hidden layers without a ReLU after them: {', '.join(missing)}")
    return Scales(in_scale, act)


def scales_of(net: QNet) -> Scales:
    """The input and activation scales ``net`` was quantized with."""
    act = {q.name: q.out_scale for q in net.linears() if not q.last}
    return Scales(net.in_scale, act)


def requantize(spec: ModelSpec, state: Mapping[str, np.ndarray], like: QNet) -> QNet:
    """The network of the float32 ``state`` of the folded ``spec`` at the bits and the input and
    activation scales of ``like`` (its weight scales and biases follow ``state``).

    Raises:
        ValueError: ``state`` cannot be quantized (a non-finite weight), or ``spec`` is not the
            one ``like`` deploys.
    """
    bad = [k for k, v in state.items() if not np.isfinite(v).all()]
    if bad:
        raise ValueError(f"cannot quantize non-finite weights: {', '.join(sorted(bad))}")
    scales = scales_of(like)
    return quantize(spec, state, like.bits(), scales.act, scales.input)
