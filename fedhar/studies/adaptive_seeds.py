"""The spread of an adaptive study over seeds: the acceptance numbers of every seed's
``summary.json`` side by side, with their mean, standard deviation and range.

A seed draws the users' split, the grid models' and the variable-width network's initial
weights and batch order, and the calibration windows, so the spread over seeds is the spread of
the whole pipeline: which M_l and width are chosen, and how its modes compare with a static
front trained under the same seed.

One seed's static front is the upper envelope of many single training runs, each with its own
draw of noise, while its adaptive modes come from one network: the envelope favours the static
side by the largest draws. With the test users fixed (``split: users``) every seed scores the
same test windows, so :func:`against_mean_grid` also compares each seed's modes with the front
of the grid models' seed-mean test scores: one draw of the adaptive network against the
expected score of each static model.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from matplotlib.ticker import NullFormatter

from fedhar.adaptive.fronts import front_line
from fedhar.results.figures import plt, save_figure
from fedhar.studies.adaptive import (
    Replicated,
    StudyResult,
    covering_static_set,
    static_memory_ratio,
)
from fedhar.studies.adaptive_report import comparison, curves

SEEDS_FILE = "seeds.json"
"""The file ``fedhar adaptive --seeds`` writes: every seed's row and their spread."""

KEPT: frozenset[str] = frozenset(
    {
        "max_gap_to_static_front",
        "cycles_saving_at_equal_f1",
        "small_f1_val",
        "small_f1_test",
        "pareto_modes",
        "memory_ratio_static_over_adaptive",
        "memory_ratio_cascade_over_adaptive",
        "matching_adaptive_saving",
        "cheapest_matching_memory_ratio",
    }
)
"""The summary leaves compared across seeds, wherever they sit (top level, per pricing and
curve, per replication factor)."""


def _leaves(node: Any, path: str) -> Iterator[tuple[str, float | None]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _leaves(value, f"{path}.{key}" if path else str(key))
    elif path.rsplit(".", 1)[-1] in KEPT and not isinstance(node, list):
        yield path, None if node is None else float(node)


LABELS: tuple[str, ...] = ("seed", "priced_by", "large_model", "small_width", "cascade_models")
"""The keys of a seed's row that name its choices rather than measure them."""


def seed_row(seed: int, summary: Mapping[str, Any]) -> dict[str, Any]:
    """One seed's row: its seed, M_l, the width of M_s, the cascade's models and every
    :data:`KEPT` number of ``summary`` under its dotted path (e.g.
    ``fronts.<pricing>.adaptive.cycles_saving_at_equal_f1``; null where the study found none)."""
    row: dict[str, Any] = {
        "seed": seed,
        "priced_by": summary["priced_by"],
        "large_model": summary["large_model"],
        "small_width": summary["small_width"],
    }
    if "cascade" in summary:
        row["cascade_models"] = summary["cascade"]["models"]
    row.update(dict(_leaves(summary, "")))
    return row


def spread(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | int | None]]:
    """Per numeric path of ``rows``: ``n`` (seeds with a value), ``mean``, ``sd`` (sample
    standard deviation, null below 2 values), ``min`` and ``max``."""
    paths = [p for p in rows[0] if p not in LABELS]
    out: dict[str, dict[str, float | int | None]] = {}
    for path in paths:
        values = [r[path] for r in rows if r.get(path) is not None]
        out[path] = {
            "n": len(values),
            "mean": statistics.fmean(values) if values else None,
            "sd": statistics.stdev(values) if len(values) >= 2 else None,
            "min": min(values) if values else None,
            "max": max(values) if values else None,
        }
    return out


def _columns(row: Mapping[str, Any], prefix: str) -> list[tuple[str, str]]:
    """The table's (heading, path) columns for the numbers under ``prefix``: the main
    pricing's gap and saving, its saving on every replicated test set, and the memory ratios
    found under that prefix."""
    fronts = f"fronts.{row['priced_by']}.adaptive."
    cols = [("gap", prefix + fronts + "max_gap_to_static_front")]
    cols.append(("saving", prefix + fronts + "cycles_saving_at_equal_f1"))
    factors = prefix + "replicated.factors."
    for path in row:
        if path.startswith(factors) and path.endswith(fronts + "cycles_saving_at_equal_f1"):
            cols.append((f"saving x{path[len(factors) :].split('.')[0]}", path))
    cols.append(("mem static", prefix + "memory_ratio_static_over_adaptive"))
    if prefix + "cascade.memory_ratio_cascade_over_adaptive" in row:
        cols.append(("mem cascade", prefix + "cascade.memory_ratio_cascade_over_adaptive"))
    if prefix + "cascade.firsts.cheapest_matching_memory_ratio" in row:
        cols.append(("mem match", prefix + "cascade.firsts.cheapest_matching_memory_ratio"))
    return cols


def table(rows: list[dict[str, Any]], stats: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Lines of two plain-text tables: per seed M_l, width, M_s test F1 and, against the seed's
    own static front, the main pricing's gap and saving, its saving on every replicated test
    set and the memory ratios; then the same against the seed-mean front (when the rows hold
    it, :func:`against_mean_grid`). Each ends with the mean and sd of every column."""

    def cell(v: float | None) -> str:
        return f"{v:12.3f}" if v is not None else f"{'-':>12s}"

    lines = []
    blocks = [("against its own static front", "")]
    if any(p.startswith("mean_grid.") for p in rows[0]):
        blocks.append(("against the seed-mean static front", "mean_grid."))
    for title, prefix in blocks:
        cols = [("M_s F1", "small_f1_test"), *_columns(rows[0], prefix)]
        lines.append(title)
        lines.append(
            f"{'seed':>4s}  {'M_l':<16s}{'width':>6s}" + "".join(f"{c:>12s}" for c, _ in cols)
        )
        for r in rows:
            lines.append(
                f"{r['seed']:>4d}  {r['large_model']:<16s}{r['small_width']:>6.2f}"
                + "".join(cell(r.get(p)) for _, p in cols)
            )
        for stat in ("mean", "sd"):
            lines.append(
                f"{stat:>4s}  {'':<16s}{'':>6s}"
                + "".join(cell(stats[p][stat] if p in stats else None) for _, p in cols)
            )
    return lines


def grid_spread(results: list[StudyResult]) -> dict[str, Any]:
    """How much a static grid model's test F1 moves with the seed: per grid model present in
    every study of ``results`` (one per seed), its ``mean`` and ``sd`` over seeds, and the
    ``median_sd`` and ``max_sd`` over models (null below 2 seeds)."""
    grids = [{c.label: c.f1_test for c in r.candidates} for r in results]
    labels = [k for k in grids[0] if all(k in g for g in grids)]
    per_model = {
        k: {
            "mean": statistics.fmean(g[k] for g in grids),
            "sd": statistics.stdev([g[k] for g in grids]) if len(grids) >= 2 else None,
        }
        for k in labels
    }
    sds = [v["sd"] for v in per_model.values() if v["sd"] is not None]
    return {
        "median_sd": statistics.median(sds) if sds else None,
        "max_sd": max(sds) if sds else None,
        "per_model": per_model,
    }


def _mean_pair(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.fmean(p[0] for p in pairs), statistics.fmean(p[1] for p in pairs)


def mean_grid(results: list[StudyResult]) -> StudyResult:
    """The first study with every grid model's test scores (float32, int8, on the test set
    and on each replicated one) and executed cycles replaced by their means over ``results``.

    Raises:
        ValueError: when the studies' grids or replication factors differ.
    """
    first = results[0]
    labels = [c.label for c in first.candidates]
    factors = [rep.factor for rep in first.replicated]
    for r in results[1:]:
        if [c.label for c in r.candidates] != labels or [x.factor for x in r.replicated] != factors:
            raise ValueError("the seeds' studies have different grids or replication factors")
    cands = []
    for i, c in enumerate(first.candidates):
        f1, f1_int8 = _mean_pair([(r.candidates[i].f1_test, r.candidates[i].f1_test_int8)
                                  for r in results])  # fmt: skip
        executed = {
            q: statistics.fmean(r.candidates[i].executed[q] for r in results) for q in c.executed
        }
        cands.append(dataclasses.replace(c, f1_test=f1, f1_test_int8=f1_int8, executed=executed))
    reps = [
        dataclasses.replace(
            rep,
            static_f1=[
                _mean_pair([r.replicated[k].static_f1[i] for r in results])
                for i in range(len(cands))
            ],
        )
        for k, rep in enumerate(first.replicated)
    ]
    return dataclasses.replace(first, candidates=cands, replicated=reps)


def against_mean_grid(results: list[StudyResult]) -> list[dict[str, float | None]]:
    """For every study of ``results``: its :data:`KEPT` numbers (under ``mean_grid.``) with
    each pricing's static front, and the static set of Table 3, taken from the seed-mean grid
    of :func:`mean_grid` instead of the study's own. The studies must score the same test
    windows (``split: users``: the same test users under every seed)."""
    mean = mean_grid(results)
    rows = []
    for r in results:
        mine = dataclasses.replace(
            r, candidates=mean.candidates, replicated=_with_static(r.replicated, mean.replicated)
        )
        static_set = covering_static_set(mine.candidates, r.modes)
        node: dict[str, Any] = {
            "fronts": {p.name: comparison(curves(mine, p)) for p in r.pricings},
            "memory_ratio_static_over_adaptive": static_memory_ratio(
                mine.candidates, static_set, r.adaptive_bytes
            ),
        }
        if r.replicated:
            node["replicated"] = {
                "factors": {
                    str(rep.factor): {
                        "fronts": {p.name: comparison(curves(mine, p, rep)) for p in r.pricings}
                    }
                    for rep in mine.replicated
                }
            }
        rows.append(dict(_leaves(node, "mean_grid")))
    return rows


def _with_static(own: list[Replicated], mean: list[Replicated]) -> list[Replicated]:
    """``own`` replicated sets (their modes) with the static scores of ``mean``."""
    return [dataclasses.replace(o, static_f1=m.static_f1) for o, m in zip(own, mean, strict=True)]


SEEDS_FIGURE = "seeds.png"
"""The figure ``fedhar adaptive --seeds`` draws: every seed's fronts in one panel per pricing."""


def plot_seeds(seeds: list[int], results: list[StudyResult], path: Path, mean: bool) -> None:
    """One panel per pricing: every seed's static test front (thin, dashed), its variable-width
    Pareto front (coloured, labelled with M_l and the width of M_s) and, with ``mean``, the
    front of the grid models' seed-mean test scores (:func:`mean_grid`, thick, dashed)."""
    pricings = results[0].pricings
    fig, axes = plt.subplots(1, len(pricings), figsize=(6 * len(pricings), 4.5), squeeze=False)
    colours = plt.get_cmap("tab10")
    average = mean_grid(results) if mean else None
    for ax, pricing in zip(axes[0], pricings, strict=True):
        for k, (seed, r) in enumerate(zip(seeds, results, strict=True)):
            points = curves(r, pricing)
            cost, score_values = front_line(*points["static"])
            ax.plot(cost, score_values, color=colours(k % 10), ls=":", lw=0.8)
            cost, score_values = front_line(*points["adaptive"])
            label = f"seed {seed}: {r.candidates[r.large_index].label} @{r.small_width:g}"
            ax.plot(cost, score_values, color=colours(k % 10), marker=".", ms=3, label=label)
        if average is not None:
            cost, score_values = front_line(*curves(average, pricing)["static"])
            ax.plot(cost, score_values, color="k", ls="--", lw=1.8,
                    label="static front, seed-mean F1")  # fmt: skip
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{pricing.name} (dotted: each seed's static front)", fontsize=9)
        ax.set_xlabel("average cycles per inference")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("macro-F1 (test)")
    fig.tight_layout()
    save_figure(fig, path)
