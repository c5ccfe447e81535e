"""Trained networks of ``fedhar adaptive``, cached by content in ``<user cache>/adaptive``.

A network's key is the sha256 of everything its weights depend on: the spec, the widths, the
training windows' bytes, the training settings, the seed, the weights it started from (another
key) and the numerical environment (:func:`fedhar.models.training.numerical_environment`).
The same grid model of another scenario, or of a re-run, is read back instead of trained
again; a cache shared by machines whose CPUs run other float32 kernels is not, because their
training differs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from fedhar.adaptive.slim import SlimNet, TrainOptions, build_slim, train
from fedhar.data.paths import user_cache_dir
from fedhar.files import atomic_open
from fedhar.models.spec import ModelSpec
from fedhar.models.training import numerical_environment

FORMAT = 1


def data_digest(x: np.ndarray, y: np.ndarray) -> str:
    """sha256 hex of windows ``x [N, C, T]`` (as float32) and labels ``y [N]`` (as int64)."""
    h = hashlib.sha256()
    h.update(str(x.shape).encode())
    h.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
    h.update(np.asarray(y, dtype=np.int64).tobytes())
    return h.hexdigest()


def net_key(
    spec: ModelSpec,
    widths: Sequence[float],
    digest: str,
    settings: dict[str, object],
    init_key: str | None,
) -> str:
    """The cache key of a network (see the module docstring)."""
    blob = {
        "format": FORMAT,
        "environment": numerical_environment(),
        "spec": spec.to_dict(),
        "widths": sorted(float(w) for w in widths),
        "data": digest,
        "settings": settings,
        "init": init_key,
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def cache_path(key: str) -> Path:
    """Where the network of ``key`` is stored."""
    return user_cache_dir() / "adaptive" / f"{key[:32]}.pt"


def effective_options(options: TrainOptions, widths: Sequence[float]) -> TrainOptions:
    """``options`` with the choices that cannot change training at ``widths`` reset to their
    defaults: distillation needs a width below 1.0, and the sandwich rule only samples when
    more than ``2 + sandwich`` widths are trained (:func:`fedhar.adaptive.slim.step_widths`).
    A grid model (one width) so gets the same cache key under every distill/sandwich setting."""
    n_widths = len(set(widths))
    distill = options.distill and n_widths > 1
    sandwich = options.sandwich
    if sandwich is not None and n_widths <= 2 + sandwich:
        sandwich = None
    return replace(options, distill=distill, sandwich=sandwich)


def trained_net(
    spec: ModelSpec,
    widths: Sequence[float],
    xy: tuple[np.ndarray, np.ndarray],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    options: TrainOptions,
    init: tuple[str, SlimNet] | None = None,
) -> tuple[SlimNet, str, bool]:
    """A network of ``spec`` at ``widths`` trained on ``xy`` (read from the cache when it was
    trained before): ``(net in eval mode, its key, whether it came from the cache)``. With
    ``init = (key, net)``, training starts from ``net``'s conv and dense weights and from its
    full-width BatchNorm."""
    options = effective_options(options, widths)
    settings = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        **asdict(options),
    }
    key = net_key(spec, widths, data_digest(*xy), settings, None if init is None else init[0])
    net = build_slim(spec, widths, seed)
    path = cache_path(key)
    if path.is_file():
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        net.eval()
        return net, key, True
    if init is not None:
        start_from(net, init[1])
    train(net, *xy, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, options=options)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as fh:
        torch.save(net.state_dict(), fh)
    return net, key, False


def start_from(net: SlimNet, source: SlimNet) -> None:
    """Copies ``source``'s conv and dense weights and its full-width BatchNorm into ``net``
    (same spec); ``net``'s reduced-width BatchNorms keep their initial values."""
    if net.spec.to_dict() != source.spec.to_dict():
        raise ValueError("start_from needs two networks of the same spec")
    with torch.no_grad():
        for b in net.blocks:
            for name in ("weight", "bias"):
                getattr(net.layers[b.conv], name).copy_(getattr(source.layers[b.conv], name))
            full = net.layers[b.bn].bns[net.widths.index(1.0)]
            full.load_state_dict(source.layers[b.bn].bns[source.widths.index(1.0)].state_dict())
        for h in net.heads:
            net.layers[h.name].load_state_dict(source.layers[h.name].state_dict())
