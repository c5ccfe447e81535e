"""Files that ``fedhar compress`` writes from its scored models: ``summary.json``,
``models.csv``, the Pareto figures of F1 against memory (Daghero et al. 2022 Fig. 8) and against
cycles (Fig. 10), ``bits.json`` (the chosen mixed assignment, for ``federation.bits_from``) and
``report.html``."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fedhar.adaptive.modes import pareto_mask
from fedhar.files import atomic_open, write_atomic
from fedhar.results import html
from fedhar.results.figures import legend_outside, plt, save_figure
from fedhar.schema.compress import CompressConfig
from fedhar.studies.compress import EXECUTED_PROFILE, ModelRow, StudyResult

FORMAT_ORDER = ("float32", "dynamic", "full_int8", "pact8", "pact4", "pact2", "pact1", "mixed")
_COLORS = {
    "float32": "#7f7f7f",
    "dynamic": "#8c564b",
    "full_int8": "#e377c2",
    "pact8": "#1f77b4",
    "pact4": "#2ca02c",
    "pact2": "#ff7f0e",
    "pact1": "#d62728",
    "mixed": "#9467bd",
}
EXECUTED = "executed"
"""Cycles axis of emulated executions (see :func:`cycles_axis`)."""
INTEGER_FORMATS = ("full_int8", "pact8", "pact4", "pact2", "pact1", "mixed")
"""Formats that run entirely in integers on the device (the fronts of Figs. 8 and 10)."""


def _formats(rows: Sequence[ModelRow]) -> list[str]:
    present = {r.format for r in rows}
    return [f for f in FORMAT_ORDER if f in present]


def _front(rows: Sequence[ModelRow], cost: str, profile: str) -> list[ModelRow]:
    """Test-F1 Pareto front of ``rows`` against ``cost`` (``memory`` or ``cycles``), by cost."""
    rows = [r for r in rows if np.isfinite(_cost(r, cost, profile))]
    if not rows:
        return []
    values = np.array([_cost(r, cost, profile) for r in rows])
    mask = pareto_mask(np.array([r.f1_test for r in rows]), values)
    return sorted(
        (r for r, m in zip(rows, mask, strict=True) if m), key=lambda r: _cost(r, cost, profile)
    )


def _cost(r: ModelRow, cost: str, profile: str) -> float:
    """Memory bytes, or cycles: executed on the emulated M4 where the study ran it
    (``profile`` is then :data:`EXECUTED`), else counted and priced on ``profile``."""
    if cost == "memory":
        return float(r.memory_bytes)
    if profile == EXECUTED:
        if r.executed_cycles is not None:
            return float(r.executed_cycles)
        return float(r.cycles.get(EXECUTED_PROFILE, float("nan")))
    return float(r.cycles[profile])


def cycles_axis(result: StudyResult) -> str:
    """What the cycles figure and fronts use: :data:`EXECUTED` when the study emulated its
    models, else the first profile's name."""
    if any(r.executed_cycles is not None for r in result.rows):
        return EXECUTED
    return result.profiles[0]


def _brief(r: ModelRow, profile: str) -> dict[str, Any]:
    return {
        "arch": r.arch,
        "format": r.format,
        "lambda": r.lam,
        "bits": r.bits,
        "f1": round(r.f1_test, 4),
        "accuracy": None if r.accuracy_test is None else round(r.accuracy_test, 4),
        "f1_val": round(r.f1_val, 4),
        "memory_bytes": r.memory_bytes,
        "cycles": _rounded(_cost(r, "cycles", profile)),
        "energy_uj": {k: round(v, 4) for k, v in r.energy_uj.items()},
        "executed_cycles": r.executed_cycles,
        "executed_energy_uj": r.executed_energy_uj,
    }


def _rounded(v: float) -> int | None:
    return None if v != v else round(v)


def mixed_ratio(rows: Sequence[ModelRow]) -> dict[str, Any]:
    """``mixed_memory_ratio_at_best_8bit_f1``: the memory of the smallest mixed model whose
    test F1 reaches the best 8-bit (``pact8``) model's, over that 8-bit model's memory."""
    eight = [r for r in rows if r.format == "pact8"]
    mixed = [r for r in rows if r.format == "mixed"]
    if not eight or not mixed:
        return {"ratio": None, "why": "needs pact8 and mixed models"}
    best = max(eight, key=lambda r: (r.f1_test, -r.memory_bytes))
    reach = [r for r in mixed if r.f1_test >= best.f1_test]
    if not reach:
        top = max(mixed, key=lambda r: r.f1_test)
        return {
            "ratio": None,
            "why": f"no mixed model reaches the best 8-bit F1 {best.f1_test:.4f} "
            f"(best mixed {top.f1_test:.4f})",
            "best_8bit": best.key,
        }
    small = min(reach, key=lambda r: r.memory_bytes)
    return {
        "ratio": small.memory_bytes / best.memory_bytes,
        "best_8bit": best.key,
        "best_8bit_f1": best.f1_test,
        "best_8bit_bytes": best.memory_bytes,
        "mixed": small.key,
        "mixed_f1": small.f1_test,
        "mixed_bytes": small.memory_bytes,
    }


def equal_f1_ratio(rows: Sequence[ModelRow]) -> dict[str, Any]:
    """The paper's "up to N% less memory than 8-bit for the same F1": over every mixed model,
    its memory over that of the smallest 8-bit (``pact8``) model whose test F1 is at least as
    high; the smallest such ratio, and the pair."""
    eight = [r for r in rows if r.format == "pact8"]
    best: dict[str, Any] = {"ratio": None}
    for m in (r for r in rows if r.format == "mixed"):
        reach = [e for e in eight if e.f1_test >= m.f1_test]
        if not reach:
            continue
        e = min(reach, key=lambda r: (r.memory_bytes, -r.f1_test))
        ratio = m.memory_bytes / e.memory_bytes
        if best["ratio"] is None or ratio < best["ratio"]:
            best = {
                "ratio": ratio,
                "mixed": m.key,
                "mixed_f1": m.f1_test,
                "mixed_bytes": m.memory_bytes,
                "eight_bit": e.key,
                "eight_bit_f1": e.f1_test,
                "eight_bit_bytes": e.memory_bytes,
            }
    return best


def summary(result: StudyResult, cfg: CompressConfig, name: str) -> dict[str, Any]:
    """The acceptance numbers: best F1 per format, the best F1 within the memory budget, the
    mixed-precision memory ratio, the post-training formats, and the two global fronts."""
    rows = result.rows
    profile = cycles_axis(result)
    best = {
        f: _brief(max((r for r in rows if r.format == f), key=lambda r: r.f1_test), profile)
        for f in _formats(rows)
    }
    integer = [r for r in rows if r.format in INTEGER_FORMATS]
    within = [r for r in integer if r.memory_bytes <= cfg.memory_budget_bytes]
    ptq_rows: dict[str, Any] = {}
    for arch in result.archs:
        entry = {}
        for f in cfg.ptq + [f"pact{b}" for b in cfg.bits if b == 8]:
            match = [r for r in rows if r.arch == arch.label and r.format == f]
            if match:
                entry[f] = _brief(match[0], profile)
        base = entry.get("float32")
        for f, b in entry.items():
            if base is not None and f != "float32":
                b["f1_minus_float32"] = round(b["f1"] - base["f1"], 4)
                if b["accuracy"] is not None and base["accuracy"] is not None:
                    b["accuracy_minus_float32"] = round(b["accuracy"] - base["accuracy"], 4)
        if entry:
            ptq_rows[arch.label] = entry
    mixed = [r for r in rows if r.format == "mixed"]
    return {
        "scenario": name,
        "profiles": result.profiles,
        "cycles_source": (
            f"executed on the emulated Cortex-M4F, priced with {EXECUTED_PROFILE}'s instruction "
            "timings (float32: its counted operations priced on that profile)"
            if profile == EXECUTED
            else f"counted operations priced on {profile}"
        ),
        "windows": {
            "train": len(result.data.train[0]),
            "val": len(result.data.val[0]),
            "test": len(result.data.test[0]),
        },
        "classes": result.data.classes,
        "models": len(rows),
        "architectures": [a.label for a in result.archs],
        "best_f1_by_format": best,
        "best_f1_within_budget": {
            "budget_bytes": cfg.memory_budget_bytes,
            "model": _brief(max(within, key=lambda r: r.f1_test), profile) if within else None,
        },
        "mixed_memory_ratio_at_best_8bit_f1": mixed_ratio(rows)["ratio"],
        "mixed_memory_ratio_detail": mixed_ratio(rows),
        "mixed_memory_ratio_at_equal_f1": equal_f1_ratio(rows),
        "mixed_bits": [_brief(r, profile) for r in sorted(mixed, key=lambda r: r.memory_bytes)],
        "ptq": ptq_rows,
        "front_memory": [_brief(r, profile) for r in _front(integer, "memory", profile)],
        "front_cycles": [_brief(r, profile) for r in _front(integer, "cycles", profile)],
        "ranges_on_fronts": _ranges(integer, profile),
    }


def _ranges(rows: Sequence[ModelRow], profile: str) -> dict[str, Any]:
    """Score, memory and cycle ranges of the models on either front (Table 2's columns)."""
    on = {r.key: r for r in _front(rows, "memory", profile) + _front(rows, "cycles", profile)}
    if not on:
        return {}
    f1 = [r.f1_test for r in on.values()]
    mem = [r.memory_bytes for r in on.values()]
    cyc = [_cost(r, "cycles", profile) for r in on.values()]
    return {
        "f1": [round(min(f1), 4), round(max(f1), 4)],
        "memory_kb": [round(min(mem) / 1024, 3), round(max(mem) / 1024, 3)],
        "cycles_k": [round(min(cyc) / 1e3, 1), round(max(cyc) / 1e3, 1)],
    }


COLUMNS = (
    "arch",
    "format",
    "lambda",
    "bits",
    "f1_test",
    "f1_val",
    "accuracy_test",
    "memory_bytes",
    "scratch_bytes",
)


def write_models_csv(result: StudyResult, path: Path) -> None:
    """One row per model: format, bits per layer, F1, memory, and cycles and energy per
    inference on each profile."""
    header = [*COLUMNS]
    for p in result.profiles:
        header += [f"cycles_{p}", f"energy_uj_{p}"]
    header += ["executed_cycles_m4", "executed_energy_uj_m4"]
    with atomic_open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in sorted(
            result.rows, key=lambda r: (r.arch, FORMAT_ORDER.index(r.format), r.lam or 0)
        ):
            bits = ";".join(f"{k}={v[0]}/{v[1]}" for k, v in r.bits.items())
            line: list[Any] = [r.arch, r.format, "" if r.lam is None else r.lam, bits]
            acc = "" if r.accuracy_test is None else f"{r.accuracy_test:.4f}"
            line += [f"{r.f1_test:.4f}", f"{r.f1_val:.4f}", acc, r.memory_bytes, r.scratch_bytes]
            for p in result.profiles:
                line += [f"{r.cycles[p]:.0f}", f"{r.energy_uj[p]:.4f}"]
            line += [
                "" if r.executed_cycles is None else f"{r.executed_cycles:.0f}",
                "" if r.executed_energy_uj is None else f"{r.executed_energy_uj:.4f}",
            ]
            w.writerow(line)


def plot_front(result: StudyResult, cost: str, path: Path, title: str) -> Path:
    """F1 against memory (``cost="memory"``, Fig. 8) or cycles (Fig. 10): every model a point,
    one colour per format, each format's own front a line, the global front dashed black."""
    profile = cycles_axis(result)
    fig, ax = plt.subplots(figsize=(8, 4.8))
    integer = [r for r in result.rows if r.format in INTEGER_FORMATS]
    for f in _formats(result.rows):
        mine = [r for r in result.rows if r.format == f and np.isfinite(_cost(r, cost, profile))]
        if not mine:
            continue
        xs = [_cost(r, cost, profile) for r in mine]
        ax.scatter(xs, [r.f1_test for r in mine], s=14, color=_COLORS[f], alpha=0.45)
        front = _front(mine, cost, profile)
        ax.plot(
            [_cost(r, cost, profile) for r in front],
            [r.f1_test for r in front],
            "-o",
            ms=4,
            color=_COLORS[f],
            label=f,
        )
    glob = _front(integer, cost, profile)
    ax.plot(
        [_cost(r, cost, profile) for r in glob],
        [r.f1_test for r in glob],
        "k--",
        lw=1.2,
        label="global front (integer formats)",
    )
    ax.set_xscale("log")
    ax.set_xlabel(
        "model memory [bytes]" if cost == "memory" else f"cycles per inference ({profile})"
    )
    ax.set_ylabel("macro-F1 (test)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    legend_outside(ax)
    return save_figure(fig, path)


def write_bits(result: StudyResult, path: Path) -> dict[str, list[int]] | None:
    """``bits.json``: the bits of the mixed model of :func:`mixed_ratio` (else the most
    accurate mixed model), the ``federation.bits_from`` file; None without mixed models."""
    mixed = [r for r in result.rows if r.format == "mixed"]
    if not mixed:
        return None
    detail = mixed_ratio(result.rows)
    chosen = next((r for r in mixed if r.key == detail.get("mixed")), None) or max(
        mixed, key=lambda r: r.f1_test
    )
    bits = {k: [int(v[0]), int(v[1])] for k, v in chosen.bits.items()}
    write_atomic(path, json.dumps({"model": chosen.key, "bits": bits}, indent=1) + "\n")
    return bits


def write_page(
    result: StudyResult, summ: dict[str, Any], figures: Sequence[Path], path: Path
) -> Path:
    """``report.html``: the figures, the best model of each format, the post-training formats
    and the mixed assignments."""
    profile = cycles_axis(result)
    best = summ["best_f1_by_format"]
    parts = [
        html.paragraph(
            f"{summ['models']} models over {len(result.archs)} architectures; F1 is the macro-F1 "
            f"of the deployed model run by fedhar's C kernels on {summ['windows']['test']} test "
            f"windows; cycles: {summ['cycles_source']}."
        ),
        *(html.image(p, p.stem) for p in figures),
        html.heading("Best model of each format"),
        html.table(
            ["format", "arch", "F1", "memory [B]", f"cycles ({profile})"],
            [[f, b["arch"], b["f1"], b["memory_bytes"], b["cycles"]] for f, b in best.items()],
            left=2,
        ),
    ]
    ptq_rows = []
    for arch, entry in summ["ptq"].items():
        for f, b in entry.items():
            energy = ", ".join(f"{k} {v:.3g}" for k, v in b["energy_uj"].items())
            ptq_rows.append([arch, f, b["f1"], b["memory_bytes"], energy])
    parts += [
        html.heading("Post-training formats (Contoli et al. 2023) and QAT int8"),
        html.table(
            ["arch", "format", "F1", "memory [B]", "energy per inference [µJ]"], ptq_rows, left=2
        ),
    ]
    mixed = summ["mixed_bits"]
    if mixed:
        parts += [
            html.heading("Mixed-precision models (EdMIPS), bits per layer (weights/activations)"),
            html.table(
                ["arch", "λ", "bits", "F1", "memory [B]"],
                [
                    [
                        m["arch"],
                        m["lambda"],
                        " ".join(f"{k} {v[0]}/{v[1]}" for k, v in m["bits"].items()),
                        m["f1"],
                        m["memory_bytes"],
                    ]
                    for m in mixed
                ],
                left=3,
            ),
            html.paragraph(
                "mixed_memory_ratio_at_best_8bit_f1 = "
                f"{summ['mixed_memory_ratio_at_best_8bit_f1']} "
                f"({json.dumps(summ['mixed_memory_ratio_detail'])})"
            ),
        ]
    return html.write_page(path, f"fedhar compress: {summ['scenario']}", parts)
