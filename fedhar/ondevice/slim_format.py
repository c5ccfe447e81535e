"""The deployable layouts of a variable-width network, as the C kernels of
``fedhar/ondevice/csrc/fh_slim.h`` read them: float32 (:class:`SlimF32`) and int8
(:class:`SlimS8`) networks at one width.

Every layer holds the *full* weight tensors, shared by all widths, plus the active sizes at its
width; the C kernels read the first rows/columns with the full tensors' strides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ConvF32:
    """One conv block at one width.

    Attributes:
        weight: full ``[C_out_full, C_in_full, K]`` float32 weights, shared by all widths.
        c_in, c_out: active input/output channels at this width.
        pool: max-pool size and stride (1: none).
        scale, shift: ``[c_out]`` float32 folded switchable-BN affine of this width.
    """

    weight: np.ndarray
    c_in: int
    c_out: int
    pool: int
    scale: np.ndarray
    shift: np.ndarray


@dataclass(frozen=True)
class DenseF32:
    """One dense layer at one width: full ``weight [N_out_full, N_in_full]`` and ``bias
    [N_out_full]`` (shared), active ``n_in``/``n_out``, ``relu`` after it or not."""

    weight: np.ndarray
    bias: np.ndarray
    n_in: int
    n_out: int
    relu: bool


@dataclass(frozen=True)
class SlimF32:
    """A float32 network at ``width``: input ``[C, T]`` → logits ``[n_classes]``."""

    width: float
    in_channels: int
    in_length: int
    convs: tuple[ConvF32, ...]
    denses: tuple[DenseF32, ...]


@dataclass(frozen=True)
class ConvS8:
    """One int8 conv block at one width.

    Attributes:
        weight: full ``[C_out_full, C_in_full, K]`` int8 weights, shared by all widths.
        c_in, c_out, pool: active sizes and max-pool size at this width.
        bias: ``[c_out]`` int32; ``mult``, ``rshift``: ``[c_out]`` int32 requantization.
        out_scale: scale of the block's int8 output, in input units per step.
    """

    weight: np.ndarray
    c_in: int
    c_out: int
    pool: int
    bias: np.ndarray
    mult: np.ndarray
    rshift: np.ndarray
    out_scale: float


@dataclass(frozen=True)
class DenseS8:
    """One int8 dense layer at one width. Hidden layers requantize (``mult``, ``rshift``);
    the last one outputs float logits ``(acc + bias) · logit_scale`` (``mult``/``rshift``
    empty)."""

    weight: np.ndarray
    n_in: int
    n_out: int
    relu: bool
    bias: np.ndarray
    mult: np.ndarray
    rshift: np.ndarray
    logit_scale: np.ndarray
    out_scale: float


@dataclass(frozen=True)
class SlimS8:
    """An int8 network at ``width``; ``in_scale`` quantizes the input: ``x_q = round(x / s)``."""

    width: float
    in_channels: int
    in_length: int
    in_scale: float
    convs: tuple[ConvS8, ...]
    denses: tuple[DenseS8, ...]

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """``x [N, C, T]`` float → int8 with the model's input scale (saturating)."""
        return np.clip(np.rint(x / self.in_scale), -128, 127).astype(np.int8)
