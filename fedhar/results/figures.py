"""Plotting for every command, and the figures of a run report.

matplotlib is set to its Agg backend (no display needed) here and nowhere else: a module that
draws imports ``plt`` from this one and writes each figure with :func:`save_figure`, which
writes it as PNG (at least :data:`MIN_DPI` dpi) and as SVG beside it, leaving the matplotlib
version and the date out so that the same data gives the same files. :func:`legend_outside`
puts a legend right of the axes, where it never covers data. The run report's figures:

* :func:`f1_by_user`: grouped bars, one group per user, one bar per mode.
* :func:`gain_vs_energy`: F1 gain over No Pers. against the device energy of the job, one point
  per user and training mode.
* :func:`confusion`: one confusion matrix per mode, summed over users, rows normalized.
* :func:`learning_curves`: per training mode, the mean over users of each epoch's training
  loss and macro-F1.
* :func:`soc_by_round`: a battery run's state of charge at the end of each round, per user,
  the rounds the server skipped marked.
* :func:`energy_by_user`: a battery run's energy by load per user, over the run.
* :func:`table2`: mean macro-F1 per mode over input sizes (a sweep), beside the values of
  Craighero et al. 2023, Table II (WISDM).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.hashsalt"] = "fedhar"  # the SVG's element ids repeat run to run
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fedhar.enums import MODES, TRAINED_MODES, Mode  # noqa: E402
from fedhar.files import atomic_open  # noqa: E402
from fedhar.results.record import ClientRecord  # noqa: E402
from fedhar.results.report import present_modes  # noqa: E402
from fedhar.results.rounds import user_key  # noqa: E402

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

MIN_DPI = 150
"""The lowest resolution a PNG figure is written at, in dots per inch."""
_PNG_METADATA = {"Software": None}
_SVG_METADATA = {"Creator": None, "Date": None}


def save_figure(fig: Any, path: Path, dpi: int = MIN_DPI) -> Path:
    """Writes ``fig`` to the PNG ``path`` (its folder created) at ``dpi`` (at least
    :data:`MIN_DPI`) and to the SVG beside it (``path`` with the suffix ``.svg``), each
    atomically, then closes it; returns ``path``."""
    with atomic_open(path) as fh:
        fig.savefig(
            fh, format="png", dpi=max(dpi, MIN_DPI), bbox_inches="tight", metadata=_PNG_METADATA
        )
    with atomic_open(path.with_suffix(".svg")) as fh:
        fig.savefig(fh, format="svg", bbox_inches="tight", metadata=_SVG_METADATA)
    plt.close(fig)
    return path


def legend_outside(ax: Any, **kwargs: Any) -> None:
    """The legend of ``ax``'s labelled artists right of the axes (the saved figure widens to
    hold it), so that it never covers data; nothing when no artist has a label."""
    if ax.get_legend_handles_labels()[1]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kwargs)


def f1_by_user(clients: Sequence[ClientRecord], path: Path, title: str = "") -> Path:
    """Grouped bars of macro-F1 by mode for every user."""
    modes = present_modes(list(clients))
    users = [c.user for c in clients]
    width = 0.8 / max(1, len(modes))
    fig_width = min(12.0, max(6.0, 0.12 * len(users) * max(1, len(modes))))
    fig, ax = plt.subplots(figsize=(fig_width, 3.6))
    for i, mode in enumerate(modes):
        xs = [u + (i - (len(modes) - 1) / 2) * width for u in range(len(users))]
        ys = [c.modes[mode].f1 if mode in c.modes else float("nan") for c in clients]
        ax.bar(xs, ys, width, label=MODE_LABELS.get(mode, mode))
    ax.set_xticks(range(len(users)), users, rotation=90 if len(users) > 12 else 0, fontsize=8)
    ax.set_xlabel("user")
    ax.set_ylabel("macro-F1 on TS_i")
    ax.set_ylim(0, 1.02)
    ax.set_title(title or "Macro-F1 per user and mode")
    legend_outside(ax, fontsize=8)
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
    legend_outside(ax, fontsize=8)
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
    legend_outside(ax, fontsize=7)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def confusion(
    clients: Sequence[ClientRecord], classes: Sequence[str], path: Path, title: str = ""
) -> Path:
    """One confusion matrix per mode, summed over users (row = true class, normalized to the
    class's share of predictions; each cell also shows its count)."""
    modes = [m for m in present_modes(list(clients)) if any(c.modes[m].confusion for c in
             clients if m in c.modes)]  # fmt: skip
    n = len(classes)
    fig, axes = plt.subplots(1, max(1, len(modes)), figsize=(2.6 * max(1, len(modes)) + 0.6, 3.0),
                             squeeze=False)  # fmt: skip
    for ax, mode in zip(axes[0], modes, strict=False):
        counts = np.zeros((n, n), dtype=np.int64)
        for c in clients:
            if mode in c.modes and c.modes[mode].confusion:
                counts += np.asarray(c.modes[mode].confusion, dtype=np.int64)
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(shares, vmin=0.0, vmax=1.0, cmap="Blues")
        for i in range(n):
            for j in range(n):
                color = "white" if shares[i, j] > 0.5 else "black"
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=6, color=color)
        ax.set_xticks(range(n), classes, rotation=90, fontsize=6)
        ax.set_yticks(range(n), classes, fontsize=6)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_title(MODE_LABELS.get(mode, mode), fontsize=8)
    axes[0][0].set_ylabel("true class", fontsize=7)
    fig.suptitle(title or "Confusion matrices on TS_i, summed over users", fontsize=9)
    return save_figure(fig, path)


def learning_curves(clients: Sequence[ClientRecord], path: Path, title: str = "") -> Path:
    """Per training mode, the mean over users of each epoch's training loss (left) and
    macro-F1 (right, on the data each record's ``curve_on`` names); a band spans the users'
    min to max."""
    fig, (loss_ax, f1_ax) = plt.subplots(1, 2, figsize=(8.5, 3.2))
    measured_on: set[str] = set()
    for k, mode in enumerate(TRAINED_MODES):
        runs = [c.modes[mode] for c in clients if mode in c.modes and c.modes[mode].curve]
        if not runs:
            continue
        measured_on |= {r.curve_on for r in runs}
        for ax, key in ((loss_ax, "loss"), (f1_ax, "f1")):
            epochs = min(len(r.curve[key]) for r in runs)
            values = np.asarray([r.curve[key][:epochs] for r in runs], dtype=np.float64)
            xs = np.arange(1, epochs + 1)
            ax.plot(xs, values.mean(axis=0), color=f"C{k + 1}", label=MODE_LABELS[mode])
            ax.fill_between(xs, values.min(axis=0), values.max(axis=0), color=f"C{k + 1}",
                            alpha=0.15, lw=0)  # fmt: skip
    loss_ax.set_ylabel("mean training loss")
    f1_ax.set_ylabel(f"macro-F1 on {' / '.join(sorted(measured_on)) or 'train'} windows")
    f1_ax.set_ylim(0, 1.02)
    for ax in (loss_ax, f1_ax):
        ax.set_xlabel("epoch (warm-up included)")
        ax.grid(alpha=0.3)
    legend_outside(f1_ax, fontsize=8)
    fig.suptitle(title or "Learning curves: mean over users (band: min to max)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def _by_user(battery: Mapping[str, Any]) -> dict[str, Any]:
    """The battery section's users in user order."""
    return dict(sorted(battery.get("users", {}).items(), key=lambda kv: user_key(kv[0])))


def soc_by_round(battery: Mapping[str, Any], path: Path, title: str = "") -> Path:
    """State of charge at the end of each round, one line per user (``battery`` is the report's
    battery section); a cross at 0 marks a round the server skipped the user."""
    users = _by_user(battery)
    fig, ax = plt.subplots(figsize=(7.0, 3.4))
    for k, (user, u) in enumerate(users.items()):
        points = sorted((int(r), soc) for r, soc in u["soc_end"].items())
        if points:
            ax.plot(*zip(*points, strict=True), "o-", color=f"C{k % 10}", label=f"user {user}")
        if u["skipped_rounds"]:
            skipped = u["skipped_rounds"]
            ax.plot(skipped, [0.0] * len(skipped), "x", color=f"C{k % 10}", ms=8, mew=2)
    if any(u["skipped_rounds"] for u in users.values()):
        ax.plot([], [], "x", color="black", ms=8, mew=2, label="skipped (low battery)")
    ax.set_xlabel("round")
    ax.set_ylabel("state of charge at the round's end")
    ax.set_ylim(-0.05, 1.05)
    rounds = sorted({int(r) for u in users.values() for r in [*u["soc_end"], *u["skipped_rounds"]]})
    ax.set_xticks(rounds)
    ax.grid(alpha=0.3)
    legend_outside(ax, fontsize=7, ncol=1 + len(users) // 16)
    ax.set_title(title or "State of charge per round")
    return save_figure(fig, path)


def energy_by_user(battery: Mapping[str, Any], path: Path, title: str = "") -> Path:
    """Stacked bars of each user's energy by load over the run, in J (``battery`` is the
    report's battery section)."""
    users = _by_user(battery)
    loads = sorted({k for u in users.values() for k in u["energy_j_by_load"]})
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(users) + 2.0), 3.4))
    bottom = np.zeros(len(users))
    for k, load in enumerate(loads):
        ys = np.asarray([u["energy_j_by_load"].get(load, 0.0) for u in users.values()])
        ax.bar(range(len(users)), ys, 0.7, bottom=bottom, label=load, color=f"C{k}")
        bottom += ys
    ax.set_xticks(range(len(users)), list(users), rotation=90 if len(users) > 12 else 0,
                  fontsize=8)  # fmt: skip
    ax.set_xlabel("user")
    ax.set_ylabel("energy over the run (J)")
    ax.grid(axis="y", alpha=0.3)
    legend_outside(ax, fontsize=8)
    ax.set_title(title or "Energy by load per user")
    return save_figure(fig, path)
