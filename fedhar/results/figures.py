"""Plotting for every command, and the PNG figures of a run report.

matplotlib is set to its Agg backend (no display needed) here and nowhere else: a module that
draws imports ``plt`` from this one and writes each figure with :func:`save_figure`, which
leaves the matplotlib version out of the PNG so that the same data gives the same file.
The run report's figures:

* :func:`f1_by_user`: grouped bars, one group per user, one bar per mode.
* :func:`gain_vs_energy`: F1 gain over No Pers. against the device energy of the job, one point
  per user and training mode.
* :func:`table2`: mean macro-F1 per mode over input sizes (a sweep), beside the values of
  Craighero et al. 2023, Table II (WISDM).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fedhar.enums import MODES, TRAINED_MODES, Mode  # noqa: E402
from fedhar.files import atomic_open
from fedhar.results.record import ClientRecord  # noqa: E402
from fedhar.results.report import present_modes  # noqa: E402

MODE_LABELS: dict[Mode, str] = {
    Mode.NONE: "No Pers.",
    Mode.TL: "TL",
    Mode.FULL: "Full",
    Mode.NO_PRETRAIN: "No Pretrain",
}
PAPER_TABLE2_WISDM: dict[int, dict[str, float]] = {
    100: {"none": 0.813, "tl": 0.955, "full": 0.969},
    80: {"none": 0.815, "tl": 0.963, "full": 0.973},
    60: {"none": 0.819, "tl": 0.962, "full": 0.978},
    40: {"none": 0.808, "tl": 0.958, "full": 0.974},
    20: {"none": 0.804, "tl": 0.948, "full": 0.967},
}
"""Craighero et al. 2023, Table II, WISDM columns: input length T → mode → mean F1."""

_METADATA = {"Software": None}


def save_figure(fig: Any, path: Path, dpi: int = 110) -> Path:
    """Writes ``fig`` to the PNG ``path`` (its folder created) at ``dpi``, then closes it."""
    with atomic_open(path) as fh:
        fig.savefig(fh, format="png", dpi=dpi, bbox_inches="tight", metadata=_METADATA)
    plt.close(fig)
    return path


def f1_by_user(clients: Sequence[ClientRecord], path: Path, title: str = "") -> Path:
    """Grouped bars of macro-F1 by mode for every user."""
    modes = present_modes(list(clients))
    users = [c.user for c in clients]
    width = 0.8 / max(1, len(modes))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(users) * max(1, len(modes)) / 2), 3.6))
    for i, mode in enumerate(modes):
        xs = [u + (i - (len(modes) - 1) / 2) * width for u in range(len(users))]
        ys = [c.modes[mode].f1 if mode in c.modes else float("nan") for c in clients]
        ax.bar(xs, ys, width, label=MODE_LABELS.get(mode, mode))
    ax.set_xticks(range(len(users)), users, rotation=90 if len(users) > 12 else 0, fontsize=8)
    ax.set_xlabel("user")
    ax.set_ylabel("macro-F1 on TS_i")
    ax.set_ylim(0, 1.02)
    ax.set_title(title or "Macro-F1 per user and mode")
    ax.legend(ncol=len(modes), fontsize=8, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def gain_vs_energy(clients: Sequence[ClientRecord], path: Path, title: str = "") -> Path:
    """F1 gain over No Pers. against the job's device energy (J), one point per user and
    training mode."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for mode in TRAINED_MODES:
        xs, ys = [], []
        for c in clients:
            if mode in c.modes and Mode.NONE in c.modes:
                xs.append(c.modes[mode].energy_j)
                ys.append(c.modes[mode].f1 - c.modes[Mode.NONE].f1)
        if xs:
            ax.scatter(xs, ys, label=MODE_LABELS[mode], s=18)
    ax.axhline(0.0, color="grey", lw=0.8)
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=8)
    ax.set_xlabel("device energy of the personalization job (J)")
    ax.set_ylabel("macro-F1 gain over No Pers.")
    ax.set_title(title or "F1 gain vs device energy, one point per user")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def table2(rows: Sequence[Mapping[str, Any]], path: Path, title: str = "") -> Path:
    """Mean macro-F1 per mode over input lengths; ``rows`` are ``{"window": T, "mean":
    {mode: F1}}``. Dashed lines: the paper's Table II (WISDM v1.1)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    windows = [int(r["window"]) for r in rows]
    for k, mode in enumerate(MODES):
        ys = [r["mean"].get(mode) for r in rows]
        if any(y is not None for y in ys):
            color = f"C{k}"
            ax.plot(windows, ys, "o-", color=color, label=f"{MODE_LABELS[mode]} (fedhar)")
            paper = [(t, v[mode]) for t, v in sorted(PAPER_TABLE2_WISDM.items()) if mode in v]
            if paper:
                ax.plot(*zip(*paper, strict=True), "s--", color=color, alpha=0.5,
                        label=f"{MODE_LABELS[mode]} (paper, WISDM)")  # fmt: skip
    ax.set_xticks(windows or sorted(PAPER_TABLE2_WISDM))
    ax.set_xlabel("input length T (samples, 3 axes)")
    ax.set_ylabel("mean macro-F1 over users")
    ax.set_title(title or "Table II: F1 vs input size")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
