"""One entry point for every dataset: ``load_dataset(name, ...)``."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from fedhar.data import DATASETS
from fedhar.data.hapt import load_hapt
from fedhar.data.paths import resolve_data_dir
from fedhar.data.synthetic import DEFAULT_FS, generate
from fedhar.data.types import HarDataset
from fedhar.data.wisdm2019 import load_wisdm2019
from fedhar.data.wisdm_v11 import load_wisdm_v11

_LOADERS = {
    "wisdm": load_wisdm_v11,
    "wisdm2019": load_wisdm2019,
    "hapt": load_hapt,
    "synthetic": generate,
}
_COMMON = {"data_dir", "classes", "channels", "target_fs", "device", "seed", "fs"}


def dataset_options(name: str) -> list[str]:
    """The extra keyword options ``load_dataset`` accepts for ``name`` (beyond the common
    ones), e.g. ``users`` and ``use_cache`` for wisdm2019."""
    params = inspect.signature(_LOADERS[name]).parameters
    return [p for p in params if p not in _COMMON]


def load_dataset(
    name: str,
    data_dir: Path | None = None,
    *,
    classes: list[str] | None = None,
    channels: str = "acc",
    target_fs: float | None = None,
    device: str = "phone",
    seed: int = 0,
    **opts: Any,
) -> HarDataset:
    """Loads a dataset by name.

    Args:
        name: ``wisdm`` (WISDM v1.1 raw), ``wisdm2019``, ``hapt`` or ``synthetic``.
        data_dir: data directory; ``None`` resolves ``FEDHAR_DATA_DIR`` then the user cache
            (see :func:`fedhar.data.paths.resolve_data_dir`). Ignored by ``synthetic``.
        classes: class subset / mapping entries (see :mod:`fedhar.data.labels`); ``None``
            for the dataset's default (wisdm2019: A walking, B jogging, C stairs, D sitting,
            E standing; hapt: the six basic activities).
        channels: ``"acc"``; hapt also takes the other sets of
            :data:`fedhar.data.hapt.CHANNEL_SETS` (``"uci_har"``: 9 channels).
        target_fs: output sample rate in Hz; ``None`` keeps the dataset's nominal rate (20 Hz
            for the WISDM sets and synthetic, 50 Hz for hapt).
        device: wisdm2019 only: ``"phone"`` or ``"watch"``.
        seed: synthetic only: the generator seed (real datasets are deterministic).
        **opts: dataset-specific options, listed by :func:`dataset_options` (e.g.
            ``download=True`` for wisdm, ``users=[...]`` for wisdm2019 and hapt,
            ``include_transitions`` / ``acc_units`` for hapt, ``n_users`` /
            ``seconds_per_activity`` for synthetic).

    Raises:
        ValueError: unknown dataset, option or channel set.
        DatasetMissingError: the files are not in the data directory.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {list(DATASETS)}")
    allowed = dataset_options(name)
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise ValueError(
            f"dataset {name!r}: unknown option(s) {unknown}; expected some of {allowed}"
        )
    if name != "hapt" and channels != "acc":
        raise ValueError(f"dataset {name!r}: channels must be 'acc', got {channels!r}")
    if name != "wisdm2019" and device != "phone":
        raise ValueError(f"dataset {name!r}: device must be 'phone' (only wisdm2019 has a watch)")
    if name == "synthetic":
        fs = DEFAULT_FS if target_fs is None else float(target_fs)
        return generate(fs=fs, seed=seed, classes=classes, **opts)
    root = resolve_data_dir(data_dir)
    if name == "wisdm":
        return load_wisdm_v11(root, classes=classes, target_fs=target_fs, **opts)
    if name == "wisdm2019":
        return load_wisdm2019(root, device=device, classes=classes, target_fs=target_fs, **opts)
    return load_hapt(root, classes=classes, channels=channels, target_fs=target_fs, **opts)
