"""The forward pass shared by every quantized view of a folded model.

A :class:`FoldedWalk` holds a folded spec's conv and dense tensors as trainable parameters and
runs the spec's layers in order. Its subclasses say how the input, each conv/dense layer, each
activation and each average pool are quantized; max pools, flattening and the layer order are
the same for all of them. ReLU has no step of its own: the activation quantizer of the layer
before it is ReLU and clip in one, as the deployed requantization is.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedhar.compress.calibration import linear_names
from fedhar.models.spec import LayerSpec, ModelSpec


class Linear(nn.Module):
    """The float tensors of one conv1d (``weight [F, C, K]``) or dense (``weight [M, N]``)
    layer, and its geometry."""

    def __init__(self, layer: LayerSpec, state: Mapping[str, np.ndarray]) -> None:
        super().__init__()
        self.spec = layer
        self.weight = nn.Parameter(_tensor(state[f"{layer.name}.weight"]))
        self.bias = nn.Parameter(_tensor(state[f"{layer.name}.bias"]))

    def run(self, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The layer on ``h`` with weights ``w`` and bias ``b`` (``same`` padding: the taps
        outside the input count as zeros, as in the deployed kernels)."""
        if self.spec.kind == "dense":
            return F.linear(h, w, b)
        return F.conv1d(h, w, b, stride=self.spec.stride, padding=self.spec.padding)


def _tensor(value: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(value, dtype=np.float32))


class FoldedWalk(nn.Module, ABC):
    """A network over a folded spec: input ``[N, C, T]`` normalized windows → logits ``[N, K]``.

    Abstract: QAT (:class:`~fedhar.compress.qat.QATNet`), the search
    (:class:`~fedhar.compress.edmips.SearchNet`) and the dynamic-range reference
    (:class:`~fedhar.compress.ptq.DynamicRef`) share this walk and define how the input, each
    conv/dense layer and each activation are quantized.

    Attributes:
        spec: the folded spec (no BatchNorm layers).
        layers: layer name → :class:`Linear`, for every conv and dense layer.
    """

    def __init__(self, spec: ModelSpec, state: Mapping[str, np.ndarray]) -> None:
        super().__init__()
        for layer in spec.layers:
            if layer.kind == "batchnorm1d":
                raise ValueError(
                    f"fold the BatchNorm {layer.name!r} first (fedhar.models.quantized.fold_spec, "
                    "fold_state)"
                )
        names = linear_names(spec)
        if not names:
            raise ValueError(f"model {spec.name!r} has no conv or dense layer")
        self.spec = spec
        self.last = names[-1]
        by_name = {layer.name: layer for layer in spec.layers}
        self.layers = nn.ModuleDict({n: Linear(by_name[n], state) for n in names})

    def folded_state(self) -> dict[str, np.ndarray]:
        """The current float32 conv/dense tensors under the spec's ``state_dict`` keys."""
        out = {}
        for name, layer in self.layers.items():
            out[f"{name}.weight"] = layer.weight.detach().cpu().numpy().astype(np.float32)
            out[f"{name}.bias"] = layer.bias.detach().cpu().numpy().astype(np.float32)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, scale = self.quant_input(x)
        for layer in self.spec.layers:
            kind = layer.kind
            if kind in ("conv1d", "dense"):
                z = self.linear(self.layers[layer.name], h, scale)
                if layer.name == self.last:
                    return z
                h, scale = self.activation(layer.name, z)
            elif kind == "maxpool1d":
                h = F.max_pool1d(h, layer.kernel, layer.stride)
            elif kind == "avgpool1d":
                h = self.avg_pool(h, scale, layer.kernel, layer.stride)
            elif kind == "gap1d":
                h = self.avg_pool(h, scale, h.shape[-1], h.shape[-1]).flatten(1)
            elif kind == "flatten":
                h = h.flatten(1)
        raise ValueError(f"model {self.spec.name!r} ends before its last layer")

    @abstractmethod
    def quant_input(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The input as the first layer sees it, and the real value of one of its steps
        (None when the values are not on a grid)."""

    @abstractmethod
    def linear(self, layer: Linear, h: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
        """Output (pre-activation) of a conv/dense ``layer`` on ``h`` whose step is ``scale``."""

    @abstractmethod
    def activation(self, name: str, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ReLU and the quantization of hidden layer ``name``'s output ``z``, and its step."""

    def avg_pool(
        self, h: torch.Tensor, scale: torch.Tensor | None, size: int, stride: int
    ) -> torch.Tensor:
        """Average pool (``size``, ``stride`` samples) of ``h [N, C, T]``; plain by default."""
        return F.avg_pool1d(h, size, stride)


@torch.no_grad()
def float64_logits(net: FoldedWalk, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Float64 logits ``[N, n_classes]`` of ``net``'s forward pass on normalized windows
    ``x [N, C, T]``, run by a float64 copy of ``net`` in eval mode (``net`` is unchanged)."""
    twin = copy.deepcopy(net).double().eval()
    out = np.empty((len(x), net.spec.n_classes), dtype=np.float64)
    for start in range(0, len(x), batch_size):
        batch = torch.from_numpy(np.asarray(x[start : start + batch_size], dtype=np.float64))
        out[start : start + batch_size] = twin(batch).numpy()
    return out
