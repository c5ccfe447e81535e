"""Files that ``fedhar adaptive`` writes: modes tables, summary, static grid and figures (drawn
with :mod:`fedhar.results.figures`)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from matplotlib.ticker import NullFormatter

from fedhar.adaptive.modes import MODE_COLUMNS, Mode
from fedhar.files import atomic_open, write_atomic
from fedhar.results.figures import plt, save_figure
from fedhar.studies.adaptive import StudyResult
from fedhar.studies.adaptive_search import front


def _num(v: float | bool) -> float | bool | None:
    """JSON-safe value: NaN becomes null."""
    return None if isinstance(v, float) and v != v else v


def write_modes(modes: list[Mode], stem: Path, meta: dict[str, Any]) -> None:
    """``stem.json`` (``meta`` plus ``modes``: one row per Th) and ``stem.csv``."""
    rows = [{k: _num(v) for k, v in m.row().items()} for m in modes]
    write_atomic(stem.with_suffix(".json"), json.dumps({**meta, "modes": rows}, indent=1))
    with atomic_open(stem.with_suffix(".csv"), "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(MODE_COLUMNS))
        writer.writeheader()
        writer.writerows(m.row() for m in modes)


def summary(r: StudyResult, profile: str) -> dict[str, Any]:
    """The acceptance numbers and the choices that produced them."""
    pareto = [m for m in r.modes if m.pareto]
    cycles = [m.cycles_avg for m in pareto]
    f1s = [m.f1 for m in pareto]
    large = r.candidates[r.large_index]
    return {
        "profile": profile,
        "precision_priced": "float32",
        "large_model": large.label,
        "large_gain_f1_per_cycle": r.gains.get(r.large_index),
        "small_width": r.small_width,
        "width_hypervolume": {str(k): v for k, v in r.width_hypervolume.items()},
        "cost_small_cycles": r.costs.small.cycles,
        "cost_policy_cycles": r.costs.policy.cycles,
        "cost_large_cycles": r.costs.large.cycles,
        "modes": len(r.modes),
        "pareto_modes": len(pareto),
        "pareto_f1_range": [min(f1s), max(f1s)],
        "pareto_cycles_range": [min(cycles), max(cycles)],
        "cycles_span": max(cycles) / min(cycles),
        "adaptive_bytes": r.adaptive_bytes,
        "static_large_bytes": r.static_bytes_large,
        "bn_overhead_fraction": r.bn_overhead_fraction,
        "static_in_range": [r.candidates[i].label for i in r.static_in_range],
        "static_in_range_bytes": sum(r.candidates[i].bytes for i in r.static_in_range),
        "static_set": [r.candidates[i].label for i in r.static_set],
        "static_set_f1": [r.candidates[i].f1_test for i in r.static_set],
        "static_set_bytes": r.static_set_bytes,
        "memory_ratio_static_over_adaptive": r.static_set_bytes / r.adaptive_bytes,
        "personalized_users": [
            {
                "user": u.user,
                "tr_windows": u.n_train,
                "ts_windows": u.n_test,
                "pareto_modes_before": sum(m.pareto for m in u.before),
                "pareto_modes_after": sum(m.pareto for m in u.after),
                "f1_small_only_before": u.before[0].f1,
                "f1_small_only_after": u.after[0].f1,
                "f1_large_only_before": u.before[-1].f1,
                "f1_large_only_after": u.after[-1].f1,
                "mean_f1_gain": sum(a.f1 - b.f1 for a, b in zip(u.after, u.before, strict=True))
                / len(u.before),
                "mean_cycles_change": sum(
                    a.cycles_avg - b.cycles_avg for a, b in zip(u.after, u.before, strict=True)
                )
                / len(u.before),
            }
            for u in r.personalized
        ],
    }


def plot_fig11(r: StudyResult, path: Path) -> None:
    """Fig. 11 style: static grid and its test Pareto front (F1 vs cycles), M_l circled, the
    adaptive modes over it with the Pareto modes highlighted."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    cands = r.candidates
    ax.scatter(
        [c.cycles for c in cands], [c.f1_test for c in cands], s=14, c="0.6", label="static grid"
    )
    on = [i for i in range(len(cands)) if front(cands, "test")[i]]
    on.sort(key=lambda i: cands[i].cycles)
    ax.plot(
        [cands[i].cycles for i in on],
        [cands[i].f1_test for i in on],
        "k--",
        marker="o",
        ms=4,
        label="static Pareto front",
    )
    big = cands[r.large_index]
    ax.scatter(
        [big.cycles],
        [big.f1_test],
        s=160,
        facecolors="none",
        edgecolors="k",
        linewidths=1.5,
        label=f"M_l {big.label}",
    )
    modes = sorted(r.modes, key=lambda m: m.cycles_avg)
    ax.plot(
        [m.cycles_avg for m in modes],
        [m.f1 for m in modes],
        color="#e6a800",
        lw=1,
        label=f"adaptive (M_s {int(r.small_width * 100)}%), all Th",
    )
    par = [m for m in modes if m.pareto]
    ax.scatter(
        [m.cycles_avg for m in par],
        [m.f1 for m in par],
        s=12,
        color="#c07000",
        zorder=3,
        label=f"adaptive Pareto modes ({len(par)})",
    )
    ax.set_xscale("log")
    ax.set_xlabel("average cycles per inference")
    ax.set_ylabel("macro-F1 (test)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)


def plot_personalized(r: StudyResult, path: Path) -> None:
    """One panel per personalized user: modes on TS_i before and after personalization."""
    n = len(r.personalized)
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3.5), squeeze=False)
    for ax, u in zip(axes[0], r.personalized, strict=True):
        for modes, colour, name in (
            (u.before, "#e6a800", "global"),
            (u.after, "#1f77b4", "personalized"),
        ):
            ms = sorted(modes, key=lambda m: m.cycles_avg)
            ax.plot([m.cycles_avg for m in ms], [m.f1 for m in ms], color=colour, label=name)
        ax.set_title(f"user {u.user}")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("average cycles per inference")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("macro-F1 on TS_i")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def write_grid(r: StudyResult, path: Path) -> None:
    """``static_grid.csv``: every grid model with its scores, costs, bytes and front marks."""
    val, test = front(r.candidates, "val"), front(r.candidates, "test")
    with atomic_open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "model",
                "f1_val",
                "f1_test",
                "cycles",
                "energy_uj",
                "macs",
                "bytes",
                "front_val",
                "front_test",
                "gain",
                "chosen_large",
            ]
        )
        for i, c in enumerate(r.candidates):
            w.writerow(
                [
                    c.label,
                    c.f1_val,
                    c.f1_test,
                    c.cycles,
                    c.energy_uj,
                    c.macs,
                    c.bytes,
                    bool(val[i]),
                    bool(test[i]),
                    r.gains.get(i, ""),
                    i == r.large_index,
                ]
            )
