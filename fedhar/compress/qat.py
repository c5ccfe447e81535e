"""Quantization-aware training (PACT, Daghero et al. 2022 §4.1) of a folded model at given bits.

BatchNorm: the float model is trained *with* BatchNorm, then folded with its running
statistics (:func:`~fedhar.models.quantized.fold_spec`,
:func:`~fedhar.models.quantized.fold_state`), and QAT fine-tunes the folded network. Training
therefore sees exactly what the deployed kernel runs: per-channel weights quantized as stored,
biases rounded to accumulator units, the 8-bit input, PACT activations that are ReLU, clip and
requantization (round half up) in one, and average pools rounded half up in integer units,
with the deployed clamps. :func:`to_qnet` exports the network as a
:class:`~fedhar.models.quantized.QNet` (activation steps ``α / (2^a - 1)``), and
:func:`fake_quant_logits` runs the same forward pass in float64, so that it agrees with
:func:`~fedhar.models.quantized.reference_logits` up to float rounding.

A network starts from the float weights with its clips calibrated (:func:`build_qat`): that
start is post-training quantization at those bits, which QAT then improves on.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from fedhar.compress.calibration import (
    ClipRule,
    calibration_windows,
    clip_value,
    input_scale,
    linear_names,
    preactivations,
)
from fedhar.compress.fakequant import fake_bias, fake_input, fake_weight, pact, rounded_avg_pool
from fedhar.compress.training import Schedule, check_xy, train
from fedhar.compress.walk import FoldedWalk, Linear, float64_logits
from fedhar.metrics import score
from fedhar.models.quantized import BITS, LayerBits, QNet, act_levels, quantize
from fedhar.models.spec import ModelSpec

CALIB_WINDOWS = 512
"""Training windows drawn (by seed) to calibrate when no calibration windows are given."""
MIN_CLIP = 1e-6
"""Smallest PACT clip α the forward pass uses, so that an optimizer step never makes it 0."""


def check_bits(spec: ModelSpec, bits: LayerBits) -> dict[str, tuple[int, int]]:
    """``bits`` as plain tuples for exactly the conv/dense layers of ``spec``.

    Raises:
        ValueError: a missing or unknown layer, or a bit-width not in 1, 2, 4, 8 (the last
            layer's activation bits are not checked: its output is float logits).
    """
    names = linear_names(spec)
    unknown = sorted(set(bits) - set(names))
    missing = [n for n in names if n not in bits]
    if unknown or missing:
        raise ValueError(
            f"bits must name exactly the layers {names}; missing {missing}, unknown {unknown}"
        )
    out = {}
    for name in names:
        w_bits, a_bits = (int(v) for v in bits[name])
        if w_bits not in BITS or (name != names[-1] and a_bits not in BITS):
            raise ValueError(f"layer {name!r}: bits must be in {BITS}, got ({w_bits}, {a_bits})")
        out[name] = (w_bits, a_bits)
    return out


class QATNet(FoldedWalk):
    """A folded model with fake-quantized weights, biases, input and PACT activations.

    Attributes:
        bits: layer name → ``(w_bits, a_bits)``.
        in_scale: one step of the signed 8-bit input (fixed, not trained).
        clips: hidden layer name → its PACT clip α (a trainable 1-element tensor).
    """

    def __init__(
        self,
        spec: ModelSpec,
        state: Mapping[str, np.ndarray],
        bits: LayerBits,
        in_scale: float,
        clips: Mapping[str, float],
    ) -> None:
        super().__init__(spec, state)
        self.bits = check_bits(spec, bits)
        self.in_scale = float(in_scale)
        hidden = linear_names(spec)[:-1]
        self.clips = nn.ParameterDict(
            {n: nn.Parameter(torch.tensor([float(clips[n])], dtype=torch.float32)) for n in hidden}
        )

    def clip(self, name: str) -> torch.Tensor:
        """The PACT clip α of hidden layer ``name`` as the forward pass uses it."""
        return torch.clamp(self.clips[name], min=MIN_CLIP)

    def act_scales(self) -> dict[str, float]:
        """Hidden layer name → the real value of one output step, ``α / (2^a - 1)``."""
        return {n: float(self.clip(n).detach()) / act_levels(self.bits[n][1]) for n in self.clips}

    def quant_input(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return fake_input(x, self.in_scale), torch.tensor(self.in_scale, dtype=x.dtype)

    def linear(self, layer: Linear, h: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
        assert scale is not None
        w, s_w = fake_weight(layer.weight, self.bits[layer.spec.name][0])
        return layer.run(h, w, fake_bias(layer.bias, scale * s_w))

    def activation(self, name: str, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a_bits = self.bits[name][1]
        alpha = self.clip(name)
        return pact(z, alpha, a_bits), (alpha / act_levels(a_bits)).reshape(())

    def avg_pool(
        self, h: torch.Tensor, scale: torch.Tensor | None, size: int, stride: int
    ) -> torch.Tensor:
        assert scale is not None
        return rounded_avg_pool(h, scale, size, stride)


def build_qat(
    spec: ModelSpec,
    state: Mapping[str, np.ndarray],
    bits: LayerBits,
    calib_x: np.ndarray,
    clip_rule: ClipRule = "mse",
) -> QATNet:
    """A :class:`QATNet` of a folded model at ``bits``, calibrated on ``calib_x [N, C, T]``
    (normalized windows): input scale from the largest input, each PACT clip by ``clip_rule``
    (:func:`~fedhar.compress.calibration.clip_value`) at that layer's activation bits on the
    folded float network's pre-activations. Unchanged, it is post-training quantization."""
    checked = check_bits(spec, bits)
    pre = preactivations(spec, state, calib_x)
    clips = {n: clip_value(z, checked[n][1], clip_rule) for n, z in pre.items()}
    return QATNet(spec, state, checked, input_scale(calib_x), clips)


def qat_finetune(
    spec: ModelSpec,
    state: Mapping[str, np.ndarray],
    bits: LayerBits,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 4,
    lr: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    class_weighted: bool = True,
    calib_x: np.ndarray | None = None,
    clip_rule: ClipRule = "mse",
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
) -> QATNet:
    """Fine-tunes a folded float model with QAT at ``bits`` (PACT, Adam on weights, biases and
    clips); deterministic by ``seed``.

    Args:
        spec: a folded spec (:func:`~fedhar.models.quantized.fold_spec`).
        state: its float32 tensors (:func:`~fedhar.models.quantized.fold_state`).
        bits: ``(w_bits, a_bits)`` per conv/dense layer (last layer's ``a_bits`` ignored).
        x: normalized training windows ``[N, C, T]`` float32; y: labels ``[N]`` int64.
        epochs, lr, batch_size, seed, class_weighted: see
            :class:`~fedhar.compress.training.Schedule`.
        calib_x: windows that calibrate the input scale and the initial clips (default:
            :data:`CALIB_WINDOWS` of ``x`` drawn by ``seed``).
        clip_rule: rule of the initial clips (:func:`build_qat`).
        x_val, y_val: with both, the epoch with the best validation macro-F1 of
            :func:`fake_quant_logits` is kept (the first on ties); otherwise the last.

    Returns:
        The trained network, in eval mode.
    """
    check_xy(x, y, spec.input_channels, spec.input_length, spec.n_classes)
    schedule = Schedule(epochs, lr, batch_size, seed, class_weighted)
    calib = calibration_windows(x, CALIB_WINDOWS, seed) if calib_x is None else calib_x
    net = build_qat(spec, state, bits, calib, clip_rule)
    best_f1, best_state = -1.0, None

    def keep_best(_epoch: int) -> None:
        nonlocal best_f1, best_state
        assert x_val is not None and y_val is not None
        pred = fake_quant_logits(net, x_val).argmax(axis=1)
        f1 = score(np.asarray(y_val), pred, spec.n_classes).macro_f1
        if f1 > best_f1:
            best_f1, best_state = f1, copy.deepcopy(net.state_dict())

    validate = x_val is not None and y_val is not None
    groups = [{"params": list(net.parameters())}]
    train(net, x, y, spec.n_classes, schedule, groups, after_epoch=keep_best if validate else None)
    if best_state is not None:
        net.load_state_dict(best_state)
    return net.eval()


def to_qnet(net: QATNet) -> QNet:
    """The deployed :class:`~fedhar.models.quantized.QNet` of ``net``: its weights and biases,
    its bits, activation steps ``α / (2^a - 1)`` and input step."""
    return quantize(net.spec, net.folded_state(), net.bits, net.act_scales(), net.in_scale)


def fake_quant_logits(net: QATNet, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Float64 logits ``[N, n_classes]`` of ``net``'s fake-quantized forward pass on
    normalized windows ``x [N, C, T]``, computed in float64 (on a cast copy of ``net``), so
    they agree with ``reference_logits(to_qnet(net), ...)`` up to float rounding."""
    return float64_logits(net, x, batch_size)
