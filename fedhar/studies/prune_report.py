"""Files that ``fedhar compress`` writes for a ``compress.prune`` study: ``summary.json``, the
Pareto figure of F1 against MACs (``pareto_macs.png``/``.svg``) and ``report.html`` with the
table beside zhou2024 Table II and the channel-scaling table (§II, Fig. 2)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fedhar.results import html
from fedhar.results.figures import legend_outside, plt, save_figure
from fedhar.schema.compress import PruneConfig
from fedhar.studies.prune import PruneResult

PAPER_SOURCE = "zhou2024_har_nas_meets_pruning.txt, Table II (UCI-HAR), lines 205-216"
PAPER_TABLE_II: tuple[tuple[str, str, float, float, float], ...] = (
    ("DCL", "", 424.26e3, 105.95e6, 92.51),
    ("DCL", "SFTNAS", 33.74e3, 1.86e6, 92.49),
    ("Attend", "", 445.38e3, 120.55e6, 94.07),
    ("Attend", "SFTNAS", 41.11e3, 1.37e6, 93.29),
    ("TinyHAR", "", 298.18e3, 36.27e6, 94.58),
    ("TinyHAR", "SFTNAS", 13.96e3, 0.767e6, 94.36),
)
"""(model, method, parameters, MACs, macro-F1 %) as typed from :data:`PAPER_SOURCE` (the
paper's AutoSlim and PaS rows are left out: fedhar runs neither)."""


def _brief(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "label": row["label"],
        "beta": row["beta"],
        "params": row["params"],
        "macs": row["macs"],
        "f1": row["f1"],
        "f1_val": row["f1_val"],
        "kept_channels": row["kept_channels"],
        "kept_filters": row["kept_filters"],
        "kernels": row["arch"].get("kernels"),
        "peak_memory_bytes": row["peak_memory_bytes"],
        "fits_budget": row["fits_budget"],
        "device_trainable": row["device_trainable"],
        "best_epoch": row["best_epoch"],
    }


def summary(result: PruneResult, prune: PruneConfig, name: str) -> dict[str, Any]:
    """The study's ``summary.json`` content (no timings, so a resumed run writes the same)."""
    bases = {}
    for base, entry in result.models.items():
        b, chosen = entry["base"], entry["swept"][entry["selected"]]
        bases[base] = {
            "params": b["params"],
            "macs": b["macs"],
            "f1": b["f1"],
            "f1_val": b["f1_val"],
            "peak_memory_bytes": b["peak_memory_bytes"],
            "budget_checked_on": b["budget_entry"],
            "device_trainable": b["device_trainable"],
            "selected": {
                **_brief(chosen),
                "mac_reduction": b["macs"] / chosen["macs"],
                "param_reduction": b["params"] / chosen["params"],
                "f1_drop": b["f1"] - chosen["f1"],
            },
            "qat_int8": None
            if entry.get("qat") is None
            else {k: v for k, v in entry["qat"].items() if k not in ("key", "kind", "base")},
            "swept": [_brief(r) for r in entry["swept"]],
        }
    return {
        "scenario": name,
        "windows": result.windows,
        "channels": result.channel_names,
        "memory_budget_bytes": prune.memory_budget_bytes,
        "profile": prune.profile,
        "selection_rule": (
            "smallest MACs within the budget with validation F1 >= the base's minus "
            f"{prune.f1_tolerance:g}; else best validation F1 within the budget; else the "
            "smallest peak memory"
        ),
        "bases": bases,
        "channel_scaling": [
            {k: v for k, v in row.items() if k not in ("key", "kind")} for row in result.channels
        ],
    }


def plot_pareto(result: PruneResult, path: Path, title: str) -> Path:
    """Test macro-F1 against MACs per window (log x): each base, its swept models and the
    selected one."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for i, (base, entry) in enumerate(result.models.items()):
        color = f"C{i}"
        swept = sorted(entry["swept"], key=lambda r: r["macs"])
        ax.plot(
            [r["macs"] for r in swept],
            [r["f1"] for r in swept],
            "-o",
            ms=4,
            color=color,
            label=f"{base}: searched (β sweep)",
        )
        for r in swept:
            ax.annotate(
                r["label"],
                (r["macs"], r["f1"]),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
            )
        b = entry["base"]
        ax.plot([b["macs"]], [b["f1"]], "s", ms=8, color=color, label=f"{base}: unpruned base")
        chosen = entry["swept"][entry["selected"]]
        ax.plot(
            [chosen["macs"]],
            [chosen["f1"]],
            "*",
            ms=14,
            color=color,
            mec="k",
            label=f"{base}: selected",
        )
    ax.set_xscale("log")
    ax.set_xlabel("MACs per window (the estimator's count)")
    ax.set_ylabel("macro-F1 (test users)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    legend_outside(ax)
    return save_figure(fig, path)


def _kib(n: int | None) -> str:
    return "–" if n is None else f"{n / 1024:.1f}"


def write_page(summ: Mapping[str, Any], figure: Path, path: Path) -> Path:
    """``report.html``: the figure, the table beside Table II, the sweep, the deployment check
    and the channel-scaling table."""
    rows = []
    for model, method, params, macs, f1 in PAPER_TABLE_II:
        rows.append(
            [
                f"zhou2024: {model}" + (f" + {method}" if method else ""),
                f"{params / 1e3:.2f} k",
                f"{macs / 1e6:.3g}",
                f"{f1:.2f}",
                "–",
                "–",
            ]
        )
    for base, b in summ["bases"].items():
        s = b["selected"]
        rows.append(
            [
                f"fedhar: {base}",
                f"{b['params'] / 1e3:.2f} k",
                f"{b['macs'] / 1e6:.3g}",
                f"{100 * b['f1']:.2f}",
                "1",
                "–",
            ]
        )
        rows.append(
            [
                f"fedhar: {base} + search ({s['label']})",
                f"{s['params'] / 1e3:.2f} k",
                f"{s['macs'] / 1e6:.3g}",
                f"{100 * s['f1']:.2f}",
                f"{s['mac_reduction']:.1f}",
                f"{100 * s['f1_drop']:.2f}",
            ]
        )
        if b["qat_int8"] is not None:
            q = b["qat_int8"]
            rows.append(
                [
                    f"fedhar: {base} + search + int8 QAT",
                    f"{s['params'] / 1e3:.2f} k",
                    f"{s['macs'] / 1e6:.3g}",
                    f"{100 * q['f1']:.2f}",
                    f"{s['mac_reduction']:.1f}",
                    f"{100 * (b['f1'] - q['f1']):.2f}",
                ]
            )
    sweep = []
    for base, b in summ["bases"].items():
        for r in b["swept"]:
            peak = r["peak_memory_bytes"] or {}
            sweep.append(
                [
                    base,
                    r["label"],
                    r["params"],
                    r["macs"],
                    r["f1"],
                    r["f1_val"],
                    " ".join(r["kept_channels"]),
                    str(r["kept_filters"]),
                    str(r["kernels"]),
                    _kib(peak.get("full_training_arena")),
                    _kib(peak.get("tl_training_arena")),
                    _kib(peak.get("inference_float32")),
                    _kib(peak.get("inference_activations")),
                    "yes" if r["fits_budget"] else "no",
                ]
            )
    parts = [
        html.paragraph(
            f"{summ['windows']['train']} train, {summ['windows']['val']} validation and "
            f"{summ['windows']['test']} test windows (test users); channels "
            f"{' '.join(summ['channels'])}. F1: macro-F1 of the PyTorch model on the test users. "
            "MACs per window: the C library estimator's count (DCL and TinyHAR: count_macs' "
            f"rules). Selection rule: "
            f"{summ['selection_rule']}. Budget {summ['memory_budget_bytes']} B, checked on "
            + "; ".join(f"{base}: {b['budget_checked_on']}" for base, b in summ["bases"].items())
            + f" ({summ['profile']} for the C library's models; DCL and TinyHAR are PyTorch "
            "only, their memory is eq. 12's float32 inference activations)."
        ),
        html.image(figure, figure.stem),
        html.heading("Beside zhou2024 Table II"),
        html.paragraph(
            f"Paper rows typed from {PAPER_SOURCE}; the paper's models are DCL, Attend and TinyHAR "
            "on UCI-HAR's preprocessed windows, fedhar's on the 9-channel view of UCI HAPT's raw "
            "signals with UCI HAR's test users."
        ),
        html.table(
            ["model", "params", "MMACs", "F1 [%]", "MAC reduction [×]", "F1 drop [pt]"], rows
        ),
        html.heading("The β sweep (peak memory in KiB on the profile)"),
        html.table(
            [
                "base",
                "β",
                "params",
                "MACs",
                "F1",
                "F1 val",
                "kept channels",
                "filters",
                "kernels",
                "Full arena",
                "TL arena",
                "float32 inference",
                "activations (eq. 12)",
                "fits",
            ],
            sweep,
            left=2,
            number=".4f",
        ),
    ]
    qat = [
        [
            base,
            b["qat_int8"]["of"],
            b["qat_int8"]["f1"],
            b["qat_int8"]["model_bytes"],
            b["qat_int8"]["scratch_bytes"],
            b["qat_int8"]["inference_bytes"],
        ]
        for base, b in summ["bases"].items()
        if b["qat_int8"] is not None
    ]
    if qat:
        parts += [
            html.heading("Int8 QAT of the selected model (fedhar's C integer kernels)"),
            html.table(
                ["base", "model", "F1", "model [B]", "scratch [B]", "inference [B]"],
                qat,
                left=2,
                number=".4f",
            ),
        ]
    scaling = summ["channel_scaling"]
    if scaling:
        parts += [
            html.heading("Channel scaling (zhou2024 §II, Fig. 2)"),
            html.table(
                [
                    "base",
                    "channel set",
                    "channels",
                    "params before",
                    "MACs before",
                    "params after",
                    "MACs after",
                    "kept channels",
                ],
                [
                    [
                        r["base"],
                        r["channels"],
                        r["n_channels"],
                        r["before"]["params"],
                        r["before"]["macs"],
                        *(
                            ["–", "–", "(not searched)"]
                            if r["after"] is None
                            else [
                                r["after"]["params"],
                                r["after"]["macs"],
                                " ".join(r["after"]["kept_channels"]),
                            ]
                        ),
                    ]
                    for r in scaling
                ],
                left=2,
            ),
        ]
    return html.write_page(path, f"fedhar compress (prune): {summ['scenario']}", parts)
