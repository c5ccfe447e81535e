"""Files that ``fedhar adaptive`` writes: modes tables, summary, static grid and figures (drawn
with :mod:`fedhar.results.figures`).

Every front comparison is made per :class:`~fedhar.studies.adaptive.Pricing`: the static grid,
the adaptive modes and the cascade's, each as (score, cycles) points priced the same way.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import NullFormatter

from fedhar.adaptive.fronts import cycles_saving_at_equal_f1, front_line, max_gap_to_static_front
from fedhar.adaptive.modes import MODE_COLUMNS, ExpectedCost, Mode
from fedhar.files import atomic_open, write_atomic
from fedhar.models.training import numerical_environment
from fedhar.results.figures import plt, save_figure
from fedhar.studies.adaptive import Pricing, Replicated, StudyResult, static_memory_ratio
from fedhar.studies.adaptive_search import front

Points = tuple[np.ndarray, np.ndarray]
"""(score [N], cycles [N]) of a set of models or modes."""


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


def mode_points(modes: list[Mode], pricing: Pricing, executed: dict[str, ExpectedCost]) -> Points:
    """Scores and average cycles of ``modes`` as ``pricing`` prices them (int8 scores and
    easy shares for int8; ``executed`` holds the executed eq. (3) costs by precision)."""
    if pricing.source == "counted":
        return np.array([m.f1 for m in modes]), np.array([m.cycles_avg for m in modes])
    cost = executed[pricing.precision]
    if pricing.precision == "int8":
        return (
            np.array([m.f1_int8 for m in modes]),
            np.array([cost.at(m.p_easy_int8).cycles for m in modes]),
        )
    return np.array([m.f1 for m in modes]), np.array([cost.at(m.p_easy).cycles for m in modes])


def static_points(
    r: StudyResult, pricing: Pricing, f1: list[tuple[float, float]] | None = None
) -> Points:
    """Test scores and cycles of every grid model as ``pricing`` prices them; ``f1`` replaces
    the test scores (float32, int8) per model, e.g. on a replicated test set."""
    k = 1 if pricing.precision == "int8" else 0
    scores = f1 if f1 is not None else [(c.f1_test, c.f1_test_int8) for c in r.candidates]
    if pricing.source == "counted":
        cycles = [c.cycles for c in r.candidates]
    else:
        cycles = [c.executed[pricing.precision] for c in r.candidates]
    return np.array([s[k] for s in scores]), np.array(cycles)


def curves(r: StudyResult, pricing: Pricing, rep: Replicated | None = None) -> dict[str, Points]:
    """The static grid, the adaptive modes and (when run) the cascade's modes, priced by
    ``pricing``, on the test set or on its replicated version ``rep``."""
    modes = r.modes if rep is None else rep.modes
    out = {
        "static": static_points(r, pricing, None if rep is None else rep.static_f1),
        "adaptive": mode_points(modes, pricing, r.executed),
    }
    if r.cascade is not None:
        cascade = r.cascade.modes if rep is None or rep.cascade_modes is None else rep.cascade_modes
        out["cascade"] = mode_points(cascade, pricing, r.cascade.executed)
    return out


def _num_or_none(v: float) -> float | None:
    return None if v != v else float(v)


def comparison(points: dict[str, Points]) -> dict[str, dict[str, Any]]:
    """For the adaptive and cascade modes: ``max_gap_to_static_front``,
    ``cycles_saving_at_equal_f1`` (:mod:`fedhar.adaptive.fronts`) and the Pareto modes'
    score and cycles ranges."""
    s_score, s_cost = points["static"]
    out = {}
    for name in ("adaptive", "cascade"):
        if name not in points:
            continue
        score_values, cost = points[name]
        fc, fs = front_line(score_values, cost)
        out[name] = {
            "max_gap_to_static_front": _num_or_none(
                max_gap_to_static_front(score_values, cost, s_score, s_cost)
            ),
            "cycles_saving_at_equal_f1": _num_or_none(
                cycles_saving_at_equal_f1(score_values, cost, s_score, s_cost)
            ),
            "pareto_modes": len(fc),
            "pareto_f1_range": [float(fs[0]), float(fs[-1])],
            "pareto_cycles_range": [float(fc[0]), float(fc[-1])],
        }
    return out


FIRSTS_COLUMNS: tuple[str, ...] = (
    "model",
    "first_bytes",
    "cascade_bytes",
    "memory_ratio_cascade_over_adaptive",
    "validation_hypervolume",
    "max_gap_to_static_front",
    "cycles_saving_at_equal_f1",
    "chosen",
)
"""The columns of ``cascade_firsts.csv``: one cascade per grid model cheaper than M_l."""


def cascade_first_rows(r: StudyResult) -> list[dict[str, Any]]:
    """Every cascade of :attr:`~fedhar.studies.adaptive.Cascade.firsts` against the static
    test front, priced like the summary's headline (``r.pricings[0]``, float32 counted):
    bytes, memory over the variable-width network, validation hypervolume (when it was a
    candidate of the choice, else None), gap and saving, and whether it is the chosen one."""
    if r.cascade is None:
        return []
    pricing = r.pricings[0]
    static = static_points(r, pricing)
    large = r.candidates[r.large_index].bytes
    rows = []
    for i, modes in sorted(r.cascade.firsts.items()):
        numbers = comparison({"static": static, "cascade": mode_points(modes, pricing, {})})
        first = r.candidates[i].bytes
        rows.append(
            {
                "model": r.candidates[i].label,
                "first_bytes": first,
                "cascade_bytes": first + large,
                "memory_ratio_cascade_over_adaptive": (first + large) / r.adaptive_bytes,
                "validation_hypervolume": r.cascade.hypervolume.get(i),
                "max_gap_to_static_front": numbers["cascade"]["max_gap_to_static_front"],
                "cycles_saving_at_equal_f1": numbers["cascade"]["cycles_saving_at_equal_f1"],
                "chosen": i == r.cascade.small_index,
            }
        )
    return rows


def firsts_summary(rows: list[dict[str, Any]], adaptive_saving: float | None) -> dict[str, Any]:
    """What the grid's cascades say of the variable-width network (test set, so an oracle
    reading, not a deployable choice): how many match its ``cycles_saving_at_equal_f1``, the
    smallest memory ratio among those (None when none does), and the cascade with the
    largest saving."""
    scored = [row for row in rows if row["cycles_saving_at_equal_f1"] is not None]
    matching = [
        row
        for row in scored
        if adaptive_saving is not None and row["cycles_saving_at_equal_f1"] >= adaptive_saving
    ]
    best = max(scored, key=lambda row: row["cycles_saving_at_equal_f1"]) if scored else None
    return {
        "cascades": len(rows),
        "adaptive_cycles_saving_at_equal_f1": adaptive_saving,
        "matching_adaptive_saving": len(matching),
        "cheapest_matching_memory_ratio": min(
            (row["memory_ratio_cascade_over_adaptive"] for row in matching), default=None
        ),
        "largest_saving": None
        if best is None
        else {
            k: best[k]
            for k in ("model", "cycles_saving_at_equal_f1", "memory_ratio_cascade_over_adaptive")
        },
    }


def write_cascade_firsts(rows: list[dict[str, Any]], path: Path) -> None:
    """``cascade_firsts.csv``: the rows of :func:`cascade_first_rows`."""
    with atomic_open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(FIRSTS_COLUMNS))
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)


def plot_cascade_firsts(
    rows: list[dict[str, Any]], adaptive_saving: float, title: str, path: Path
) -> None:
    """Each cascade's test cycles saving against its memory over the variable-width network,
    the chosen cascade ringed, and the variable-width network itself at memory ratio 1."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.set_title(title, fontsize=9)
    scored = [row for row in rows if row["cycles_saving_at_equal_f1"] is not None]
    ax.scatter([row["memory_ratio_cascade_over_adaptive"] for row in scored],
               [row["cycles_saving_at_equal_f1"] for row in scored],
               s=14, c=STYLES["cascade"]["color"], label="cascade: grid model → M_l")  # fmt: skip
    for row in scored:
        if row["chosen"]:
            ax.scatter([row["memory_ratio_cascade_over_adaptive"]],
                       [row["cycles_saving_at_equal_f1"]], s=120, facecolors="none",
                       edgecolors="k", label=f"chosen cascade ({row['model']} → M_l)")  # fmt: skip
    ax.scatter([1.0], [adaptive_saving], marker="*", s=160, c=STYLES["adaptive"]["color"],
               label="variable width")  # fmt: skip
    ax.axhline(adaptive_saving, color=STYLES["adaptive"]["color"], lw=0.8, ls=":")
    ax.set_xlabel("memory, cascade / variable width")
    ax.set_ylabel("cycles saving at equal F1 (test)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    save_figure(fig, path)


def summary(r: StudyResult, profile: str, first_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The acceptance numbers and the choices that produced them; ``first_rows`` are the
    study's :func:`cascade_first_rows`."""
    pareto = [m for m in r.modes if m.pareto]
    cycles = [m.cycles_avg for m in pareto]
    f1s = [m.f1 for m in pareto]
    large = r.candidates[r.large_index]
    fronts = {p.name: comparison(curves(r, p)) for p in r.pricings}
    main = r.pricings[0].name
    out: dict[str, Any] = {
        "profile": profile,
        "numerical_environment": numerical_environment(),
        "precision_priced": "float32",
        "priced_by": main,
        "pricings": [p.name for p in r.pricings],
        "figures": {
            "fig11.png": [p.name for p in r.pricings],
            "fig12.png": [p.name for p in r.pricings] if r.replicated else [],
            "modes.csv": f"{main} (cycles_avg, energy_uj_avg; f1_int8 scores only)",
        },
        "max_gap_to_static_front": fronts[main]["adaptive"]["max_gap_to_static_front"],
        "cycles_saving_at_equal_f1": fronts[main]["adaptive"]["cycles_saving_at_equal_f1"],
        "fronts": fronts,
        "grid_size": len(r.candidates),
        "small_f1_val": r.small_val_f1,
        "small_f1_test": r.small_test_f1,
        "large_model": large.label,
        "large_gain_f1_per_cycle": r.gains.get(r.large_index),
        "small_width": r.small_width,
        "large_choice": r.large_choice,
        "chosen_over_seeds": r.chosen_over_seeds,
        "width_hypervolume": {
            str(w): v for (label, w), v in r.hypervolume.items() if label == large.label
        },
        "candidate_hypervolume": {f"{label} @{w}": v for (label, w), v in r.hypervolume.items()},
        "candidate_validation_gap": {
            f"{label} @{w}": _num(g) for (label, w), g in r.validation_gap.items()
        },
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
        "memory_ratio_static_over_adaptive": static_memory_ratio(
            r.candidates, r.static_set, r.adaptive_bytes
        ),
        "executed_cycles": {
            q: {"small": c.small.cycles, "policy": c.policy.cycles, "large": c.large.cycles}
            for q, c in r.executed.items()
        },
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
    if r.cascade is not None:
        out["cascade"] = {
            "models": [r.candidates[r.cascade.small_index].label, large.label],
            "bytes": r.cascade.bytes,
            "memory_ratio_cascade_over_adaptive": r.cascade.bytes / r.adaptive_bytes,
            "validation_hypervolume": {
                r.candidates[i].label: v for i, v in r.cascade.hypervolume.items()
            },
            "executed_cycles": {
                q: {"small": c.small.cycles, "policy": c.policy.cycles, "large": c.large.cycles}
                for q, c in r.cascade.executed.items()
            },
            "firsts": {
                "priced_by": main,
                **firsts_summary(first_rows, fronts[main]["adaptive"]["cycles_saving_at_equal_f1"]),
            },
        }
    if r.replicated:
        out["replicated"] = {
            "class": r.replicated_class,
            "factors": {
                str(rep.factor): {
                    "class_share": rep.share,
                    "fronts": {p.name: comparison(curves(r, p, rep)) for p in r.pricings},
                }
                for rep in r.replicated
            },
        }
    return out


def _draw_front(ax: Any, points: Points, style: dict[str, Any], label: str) -> None:
    cost, score_values = front_line(*points)
    ax.plot(cost, score_values, label=label, **style)


STYLES: dict[str, dict[str, Any]] = {
    "static": {"color": "k", "ls": "--", "marker": "o", "ms": 4},
    "cascade": {"color": "#1f77b4", "lw": 1.2, "marker": "s", "ms": 3},
    "adaptive": {"color": "#e6a800", "lw": 1.5, "marker": ".", "ms": 4},
}


def plot_fig11(r: StudyResult, path: Path) -> None:
    """Fig. 11 style, one panel per pricing: the static grid and its test Pareto front (score
    vs cycles), M_l circled, and the Pareto fronts of the cascade and variable-width modes."""
    n = len(r.pricings)
    fig, axes = plt.subplots(1, n, figsize=(6 * n, 4.5), squeeze=False)
    big = r.large_index
    for ax, pricing in zip(axes[0], r.pricings, strict=True):
        points = curves(r, pricing)
        s_score, s_cost = points["static"]
        ax.scatter(s_cost, s_score, s=12, c="0.65", label="static grid")
        _draw_front(ax, points["static"], STYLES["static"], "static Pareto front")
        ax.scatter([s_cost[big]], [s_score[big]], s=160, facecolors="none", edgecolors="k",
                   linewidths=1.5, label=f"M_l {r.candidates[big].label}")  # fmt: skip
        if "cascade" in points and r.cascade is not None:
            first = r.candidates[r.cascade.small_index].label
            _draw_front(ax, points["cascade"], STYLES["cascade"], f"cascade {first} → M_l")
        width = int(r.small_width * 100)
        _draw_front(ax, points["adaptive"], STYLES["adaptive"], f"variable width (M_s {width}%)")
        _style_front_panel(ax, pricing.name)
    axes[0][0].set_ylabel("macro-F1 (test)")
    fig.tight_layout()
    save_figure(fig, path)


def _style_front_panel(ax, title: str) -> None:
    """Log cycles axis, title, grid and legend of one F1-against-cycles panel."""
    ax.set_xscale("log")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("average cycles per inference")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


def plot_fig12(r: StudyResult, path: Path) -> None:
    """Fig. 12 style, one panel per pricing: the variable-width Pareto front (solid) and the
    static front (dashed) on the test set with the replicated class at every factor."""
    n = len(r.pricings)
    fig, axes = plt.subplots(1, n, figsize=(6 * n, 4.5), squeeze=False)
    colours = ["#e6a800", "#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    for ax, pricing in zip(axes[0], r.pricings, strict=True):
        for k, rep in enumerate(r.replicated):
            colour = colours[k % len(colours)]
            points = curves(r, pricing, rep)
            name = f"{r.replicated_class} ×{rep.factor} ({rep.share:.0%})"
            _draw_front(ax, points["adaptive"], {"color": colour, "marker": ".", "ms": 3},
                        f"variable width, {name}")  # fmt: skip
            _draw_front(ax, points["static"], {"color": colour, "ls": "--", "lw": 0.8},
                        f"static front, {name}")  # fmt: skip
        _style_front_panel(ax, pricing.name)
    axes[0][0].set_ylabel("macro-F1 (test)")
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
                "f1_val_int8",
                "f1_test_int8",
                "executed_cycles_float32",
                "executed_cycles_int8",
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
                    c.f1_val_int8,
                    c.f1_test_int8,
                    c.executed.get("float32", ""),
                    c.executed.get("int8", ""),
                    bool(val[i]),
                    bool(test[i]),
                    r.gains.get(i, ""),
                    i == r.large_index,
                ]
            )
