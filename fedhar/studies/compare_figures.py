"""``fedhar compare``'s figures, each written as PNG (150 dpi) and SVG:

* ``compare_f1``: mean macro-F1 per mode, one bar per run, the minimum over users marked on
  each bar;
* ``compare_cost``: the mean device cost of each training mode's job per run: peak memory,
  cycles, seconds and joules, one panel each.

Legends stand outside the axes, so they never cover a bar.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from fedhar.enums import Mode
from fedhar.results.figures import MODE_LABELS, plt, save_figure
from fedhar.studies.compare import ModeRow

DPI = 150
"""Resolution of the PNG figures, in dots per inch."""

COST_PANELS = (
    ("memory_bytes", "peak memory (kB)", 1e-3),
    ("cycles", "cycles (millions)", 1e-6),
    ("seconds", "time on the MCU (s)", 1.0),
    ("energy_j", "energy (J)", 1.0),
)
"""Each cost panel: the :class:`ModeRow` field, its axis label and the scale to that unit."""


def _label(mode: str) -> str:
    known = {m.value: label for m, label in MODE_LABELS.items()}
    return known.get(mode, mode)


def _save(fig: Figure, out: Path, stem: str) -> list[Path]:
    """Writes ``out/<stem>.svg`` and ``out/<stem>.png`` (at :data:`DPI`); closes ``fig``."""
    svg = out / f"{stem}.svg"
    fig.savefig(svg, bbox_inches="tight", metadata={"Date": None})
    return [save_figure(fig, out / f"{stem}.png", dpi=DPI), svg]


def _bars(
    ax: Axes, rows: list[ModeRow], modes: list[str], value: Callable[[ModeRow], float | None]
) -> None:
    """Grouped bars on ``ax``: a group per mode, a bar per run, height ``value(row)``."""
    runs = list(dict.fromkeys(r.run for r in rows))
    width = 0.8 / len(runs)
    by_key = {(r.run, r.mode): r for r in rows}
    for i, run in enumerate(runs):
        xs, heights = [], []
        for j, mode in enumerate(modes):
            height = value(by_key[run, mode]) if (run, mode) in by_key else None
            if height is not None:
                xs.append(j - 0.4 + width * (i + 0.5))
                heights.append(height)
        ax.bar(xs, heights, width, label=run)
    ax.set_xticks(range(len(modes)), [_label(m) for m in modes])


def plot_f1(rows: list[ModeRow], out: Path) -> list[Path]:
    """The ``compare_f1`` figure; returns the files written."""
    modes = list(dict.fromkeys(r.mode for r in rows))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(modes) + 2), 3.6))
    _bars(ax, rows, modes, lambda r: r.f1_mean)
    runs = list(dict.fromkeys(r.run for r in rows))
    width = 0.8 / len(runs)
    for r in rows:
        x = modes.index(r.mode) - 0.4 + width * (runs.index(r.run) + 0.5)
        ax.plot([x - width / 3, x + width / 3], [r.f1_min, r.f1_min], color="black", lw=1)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("macro-F1 (bar: mean, line: min)")
    ax.legend(title="run", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, out, "compare_f1")


def plot_costs(rows: list[ModeRow], out: Path) -> list[Path]:
    """The ``compare_cost`` figure of the training modes; returns the files written (none
    when no run reports a cost)."""
    trained = [r for r in rows if r.mode != Mode.NONE.value]
    panels = [p for p in COST_PANELS if any(getattr(r, p[0]) is not None for r in trained)]
    if not panels:
        return []
    modes = list(dict.fromkeys(r.mode for r in trained))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels) + 1.5, 3.4))
    for ax, (name, label, scale) in zip(
        [axes] if len(panels) == 1 else list(axes), panels, strict=True
    ):
        _bars(ax, trained, modes, lambda r, n=name, s=scale: _scaled(getattr(r, n), s))
        ax.set_ylabel(label)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, title="run", loc="upper left", bbox_to_anchor=(1.0, 0.95),
               frameon=False)  # fmt: skip
    fig.tight_layout()
    return _save(fig, out, "compare_cost")


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale
