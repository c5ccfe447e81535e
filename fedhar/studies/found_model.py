"""A found architecture (:mod:`fedhar.compress.nas`) as a run scenario's ``model:`` section.

:func:`model_section` writes the mapping that :func:`fedhar.models.spec.nas_cnn` reads back
(``model: {name: nas, options: ...}``), so that a ``fedhar compress`` result can be pasted into
a ``fedhar run`` scenario and personalized; :func:`model_yaml` prints it as YAML.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from fedhar.compress.nas import Architecture, SuperNet


def model_section(
    net: SuperNet,
    architecture: Architecture | None = None,
    channel_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The ``model`` mapping of ``architecture`` (default: ``net``'s current choice).

    Args:
        net: the searched supernet (its layers' strides and its hidden units).
        architecture: the chosen path, e.g. :attr:`SearchResult.architecture`.
        channel_names: names of the supernet's input channels (the data view's, e.g.
            ``HarDataset.channels``); the kept sensors are then written by name, otherwise
            by index.

    Returns:
        ``{"name": "nas", "options": {"sensors", "kernels", "filters", "strides",
        "hidden"}}``, plain lists and integers.
    """
    arch = net.architecture() if architecture is None else architecture
    if channel_names is not None and len(channel_names) != net.channels:
        raise ValueError(
            f"expected {net.channels} channel names (the supernet's inputs), "
            f"got {len(channel_names)}"
        )
    sensors: list[int | str] = (
        [int(i) for i in arch.sensors]
        if channel_names is None
        else [str(channel_names[i]) for i in arch.sensors]
    )
    return {
        "name": "nas",
        "options": {
            "sensors": sensors,
            "kernels": [int(k) for k in arch.kernels],
            "filters": [len(kept) for kept in arch.filters],
            "strides": [int(layer.stride) for layer in net.layers],
            "hidden": int(net.hidden),
        },
    }


def model_yaml(section: dict[str, Any]) -> str:
    """``model:`` and ``section`` as YAML, each option list on one line."""
    return yaml.safe_dump({"model": section}, sort_keys=False, default_flow_style=None)
