"""The spread of an adaptive study over seeds: the acceptance numbers of every seed's
``summary.json`` side by side, with their mean, standard deviation and range.

A seed draws the users' split, the grid models' and the variable-width network's initial
weights and batch order, and the calibration windows, so the spread over seeds is the spread of
the whole pipeline: which M_l and width are chosen, and how its modes compare with a static
front trained under the same seed.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Mapping
from typing import Any

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


def table(rows: list[dict[str, Any]], stats: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Lines of a plain-text table: per seed M_l, width, M_s test F1, the main pricing's gap and
    saving, its saving on every replicated test set and the memory ratios; then the mean and
    sd of each number."""
    cols = [
        ("M_s F1", "small_f1_test"),
        ("gap", "max_gap_to_static_front"),
        ("saving", "cycles_saving_at_equal_f1"),
    ]
    tail = f".fronts.{rows[0]['priced_by']}.adaptive.cycles_saving_at_equal_f1"
    for path in rows[0]:
        if path.startswith("replicated.factors.") and path.endswith(tail):
            cols.append((f"saving x{path.split('.')[2]}", path))
    cols += [
        ("mem static", "memory_ratio_static_over_adaptive"),
        ("mem cascade", "cascade.memory_ratio_cascade_over_adaptive"),
    ]

    def cell(v: float | None) -> str:
        return f"{v:12.3f}" if v is not None else f"{'-':>12s}"

    head = f"{'seed':>4s}  {'M_l':<16s}{'width':>6s}" + "".join(f"{c:>12s}" for c, _ in cols)
    lines = [head]
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


def grid_spread(grids: list[Mapping[str, float]]) -> dict[str, Any]:
    """How much a static grid model's test F1 moves with the seed: per model label present in
    every seed's grid (label → test F1), its ``mean`` and ``sd`` over seeds, and the
    ``median_sd`` and ``max_sd`` over models (null below 2 seeds)."""
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
