"""PyTorch reference network built from a :class:`~fedhar.models.spec.ModelSpec`.

The module's ``state_dict`` keys and tensor layouts are exactly those of the spec, so weights
move between PyTorch and the C training library without reshaping.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from fedhar.models.spec import ModelSpec


def _layer(spec_layer) -> nn.Module:  # noqa: ANN001 - LayerSpec
    k = spec_layer.kind
    if k == "conv1d":
        return nn.Conv1d(
            spec_layer.in_shape[0],
            spec_layer.out_channels,
            spec_layer.kernel,
            stride=spec_layer.stride,
            padding=spec_layer.padding,
        )
    if k == "dense":
        return nn.Linear(spec_layer.in_shape[0], spec_layer.out_channels)
    if k == "relu":
        return nn.ReLU()
    if k == "avgpool1d":
        return nn.AvgPool1d(spec_layer.kernel, spec_layer.stride)
    if k == "maxpool1d":
        return nn.MaxPool1d(spec_layer.kernel, spec_layer.stride)
    if k == "gap1d":
        return nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten(1))
    if k == "flatten":
        return nn.Flatten(1)
    if k == "batchnorm1d":
        return nn.BatchNorm1d(spec_layer.in_shape[0], eps=spec_layer.eps)
    raise ValueError(f"layer {spec_layer.name!r}: unknown kind {k!r}")


class SpecNet(nn.Sequential):
    """``nn.Sequential`` whose children are named after the spec's layers.

    Input ``[N, C, T]`` float32, output logits ``[N, n_classes]``.
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(OrderedDict((layer.name, _layer(layer)) for layer in spec.layers))
        self.spec = spec

    def spec_state_dict(self) -> dict[str, torch.Tensor]:
        """The ``state_dict`` restricted to the spec's keys (drops ``num_batches_tracked``)."""
        sd = self.state_dict()
        return {k: sd[k] for k in self.spec.param_shapes()}


def build_torch(spec: ModelSpec, seed: int | None = None) -> SpecNet:
    """Builds the reference network; with ``seed``, its initial weights are deterministic."""
    if seed is None:
        return SpecNet(spec)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return SpecNet(spec)
    finally:
        torch.random.set_rng_state(state)
