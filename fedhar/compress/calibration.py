"""The folded float network and the calibration of quantization ranges from its activations.

Ranges come from calibration windows run through the folded *float* network (what TFLite's
converter does with its representative data set, Contoli et al. 2023): the input scale from the
largest input magnitude, and each PACT clip α from the pre-activations of its layer by one of
three rules (:data:`CLIP_RULES`):

* ``max``: the largest pre-activation; nothing is clipped, but one outlier sets the step;
* ``mse``: the α (of 100 candidates, ``max · k / 100``) whose quantization at the layer's bits
  has the least mean squared error against the ReLU output; it clips more the fewer the bits;
* a number ``p`` in (0, 100]: the p-th percentile of the positive pre-activations.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from fedhar.models.quantized import act_levels
from fedhar.models.spec import ModelSpec
from fedhar.models.torch_model import SpecNet, build_torch

CLIP_RULES = ("max", "mse")
"""Named clip rules; a float is a percentile."""
ClipRule = str | float
_MSE_CANDIDATES = 100
_MSE_SAMPLES = 200_000


def folded_float(spec: ModelSpec, state: Mapping[str, np.ndarray]) -> SpecNet:
    """The float32 network of a folded ``spec`` (:func:`~fedhar.models.quantized.fold_spec`)
    with its folded ``state`` (:func:`~fedhar.models.quantized.fold_state`), in eval mode:
    Contoli et al. 2023's ``float32`` format. Input ``[N, C, T]`` normalized windows."""
    net = build_torch(spec, seed=0)
    net.load_state_dict(
        {k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in state.items()},
        strict=False,
    )
    return net.eval()


def linear_names(spec: ModelSpec) -> list[str]:
    """Names of the conv and dense layers of ``spec``, in order (the last produces logits)."""
    return [layer.name for layer in spec.layers if layer.kind in ("conv1d", "dense")]


@torch.no_grad()
def preactivations(
    spec: ModelSpec, state: Mapping[str, np.ndarray], x: np.ndarray
) -> dict[str, np.ndarray]:
    """Float32 outputs (before ReLU) of every hidden conv/dense layer of the folded float
    network on windows ``x [N, C, T]``: layer name → ``[N, F, T']`` or ``[N, M]``."""
    net = folded_float(spec, state)
    out: dict[str, np.ndarray] = {}
    hooks = [
        getattr(net, name).register_forward_hook(
            lambda _m, _i, y, name=name: out.__setitem__(name, y.numpy().copy())
        )
        for name in linear_names(spec)[:-1]
    ]
    try:
        net(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    finally:
        for hook in hooks:
            hook.remove()
    return out


def input_scale(x: np.ndarray) -> float:
    """One step of the signed 8-bit input: ``max|x| / 127`` over windows ``x`` (1/127 if all
    are 0), so no calibration window saturates."""
    top = float(np.abs(np.asarray(x, dtype=np.float64)).max()) if np.size(x) else 0.0
    return top / 127.0 if top > 0 else 1.0 / 127.0


def _check_rule(rule: ClipRule) -> None:
    if isinstance(rule, str):
        if rule not in CLIP_RULES:
            raise ValueError(f"clip rule must be one of {CLIP_RULES} or a percentile, got {rule!r}")
    elif not 0 < float(rule) <= 100:
        raise ValueError(f"clip percentile must be in (0, 100], got {rule!r}")


def clip_value(z: np.ndarray, bits: int, rule: ClipRule) -> float:
    """The PACT clip α of pre-activations ``z`` (any shape) at ``bits`` by ``rule`` (see the
    module docstring); a positive float (1.0 when no value is positive)."""
    _check_rule(rule)
    pos = np.asarray(z, dtype=np.float64).reshape(-1)
    pos = pos[pos > 0]
    if pos.size == 0:
        return 1.0
    if rule == "max":
        return float(pos.max())
    if rule != "mse":
        return float(np.percentile(pos, float(rule)))
    if pos.size > _MSE_SAMPLES:
        pos = pos[:: -(-pos.size // _MSE_SAMPLES)]
    levels = act_levels(bits)
    candidates = pos.max() * np.arange(1, _MSE_CANDIDATES + 1) / _MSE_CANDIDATES
    errors = [
        np.mean((np.clip(np.floor(pos / (a / levels) + 0.5), 0, levels) * (a / levels) - pos) ** 2)
        for a in candidates
    ]
    return float(candidates[int(np.argmin(errors))])


def calibration_windows(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` windows of ``x`` drawn without replacement by ``seed``, in their original order
    (all of them when ``x`` has no more than ``n``)."""
    if len(x) <= n:
        return x
    idx = np.random.default_rng(seed).permutation(len(x))[:n]
    return x[np.sort(idx)]
