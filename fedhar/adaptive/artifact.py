"""Saving and loading a trained variable-width network, for the device simulation.

``load_classifier(path)`` returns the deployed adaptive classifier (M_s and M_l as C views over
one set of weights) and the input normalizer, so a device can call
``clf.classify(normalizer.transform(x [N, C, T]), th) -> (pred [N], easy_mask [N])``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fedhar.adaptive.export import export_f32
from fedhar.adaptive.policy import AdaptiveClassifier
from fedhar.adaptive.slim import SlimNet
from fedhar.data.preprocess import Normalizer
from fedhar.files import atomic_open
from fedhar.models.spec import ModelSpec
from fedhar.ondevice.slim_infer import SlimNetC


def save_model(net: SlimNet, small_width: float, normalizer: Normalizer, path: Path) -> None:
    """Writes spec, widths, the deployed small width, weights and normalizer to ``path``
    (atomically)."""
    with atomic_open(path) as fh:
        torch.save(
            {
                "spec": net.spec.to_dict(),
                "widths": list(net.widths),
                "small_width": small_width,
                "state_dict": net.state_dict(),
                "normalizer": normalizer.to_dict(),
            },
            fh,
        )


def load_model(path: Path) -> tuple[SlimNet, float, Normalizer]:
    """Reads what :func:`save_model` wrote: ``(net in eval mode, small width, normalizer)``."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    net = SlimNet(ModelSpec.from_dict(blob["spec"]), blob["widths"])
    net.load_state_dict(blob["state_dict"])
    net.eval()
    return net, float(blob["small_width"]), Normalizer.from_dict(blob["normalizer"])


def load_classifier(path: Path) -> tuple[AdaptiveClassifier, Normalizer]:
    """The deployed float32 adaptive classifier saved at ``path`` and its input normalizer."""
    net, small_width, normalizer = load_model(path)
    small, large = SlimNetC(export_f32(net, small_width)), SlimNetC(export_f32(net, 1.0))
    return AdaptiveClassifier(small, large), normalizer
