"""The run's ``report.html``, from a ``report.json`` payload and its drawn figures.

Its sections, each under an anchor: ``identity`` (the header), ``federation`` (only when the
federation failed: its reason and the users it did not reach), ``cost`` (per mode, the macro-F1
over users beside the job's cost: the arena's peak bytes by category against the MCU's SRAM,
cycles, seconds and joules; the paper's Table III view), ``table2`` (a sweep's mean F1 over
input sizes), ``f1`` (figures of F1 per user and gain against energy), ``battery`` (a battery
run: state of charge per round and energy by load per user, skipped users marked),
``confusion``, ``curves`` (learning curves) and ``per-user`` (per-user scores and costs, in
tables narrow enough for a 1280-px page; the reasons of users not ``ok`` listed below them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fedhar.enums import MODES, PAPER_MODES, Mode
from fedhar.mcu import load_profile
from fedhar.results.figures import MODE_LABELS, PAPER_TABLE2_WISDM
from fedhar.results.html import escape, image, paragraph, section, table, write_page
from fedhar.results.record import ClientRecord
from fedhar.results.rounds import user_key
from fedhar.schema.base import SchemaError

FIGURE_SECTIONS: dict[str, str] = {
    "f1_by_user": "f1",
    "gain_vs_energy": "f1",
    "soc_by_round": "battery",
    "energy_by_user": "battery",
    "confusion": "confusion",
    "learning_curves": "curves",
    "table2": "table2",
}
"""Figure name (its file's stem) → the section it is shown in."""


def sram_bytes(profile: object) -> int | None:
    """SRAM bytes of the header's MCU profile (name or path), None when it cannot be read
    here (a profile file of another machine)."""
    try:
        return int(load_profile(str(profile)).sram_bytes)
    except (SchemaError, OSError):
        return None


def _label(mode: str) -> str:
    return MODE_LABELS.get(Mode(mode), mode)


def _sci(value: float | None) -> str | None:
    """A large number in three significant digits (``9.77e+10``)."""
    return None if value is None else format(value, ".3g")


def _cost_parts(summary: Mapping[str, Any], sram: int | None) -> list[str]:
    modes = [m for m in MODES if m in summary]
    sram_text = f"{sram} B" if sram is not None else "unknown"
    rows = []
    for m in modes:
        s = summary[m]
        total = (s.get("memory_bytes") or {}).get("total")
        share = None if total is None or not sram else f"{100.0 * total / sram:.1f} %"
        rows.append(
            [_label(m), s["mean"], s["std"], s.get("mean_deployed"), s.get("improved"),
             s["n_users"], total, share, _sci(s.get("mean_cycles")), s.get("mean_seconds"),
             s.get("mean_energy_j")]
        )  # fmt: skip
    parts = [
        table(
            [
                "mode",
                "mean F1",
                "std",
                "mean F1 deployed",
                "users improved",
                "users",
                "peak RAM (B)",
                "of SRAM",
                "cycles",
                "MCU s",
                "energy (J)",
            ],
            rows,
        ),  # fmt: skip
        paragraph(
            f"F1: macro-F1 on TS_i over users. Cost: the personalization job's arena peak "
            f"(largest over users) against the MCU's SRAM ({sram_text}), and the mean over "
            "users of its cycles, MCU seconds and energy; No Pers. does not train."
        ),
    ]
    trained = [m for m in modes if summary[m].get("memory_bytes")]
    if trained:
        categories = sorted({k for m in trained for k in summary[m]["memory_bytes"]} - {"total"})
        memory = [summary[m]["memory_bytes"] for m in trained]
        rows = [[c, *(mb.get(c) for mb in memory)] for c in categories]
        rows.append(["total", *(mb.get("total") for mb in memory)])
        if sram:
            rows.append(
                ["share of SRAM", *(f"{100.0 * mb.get('total', 0) / sram:.1f} %" for mb in memory)]
            )
        parts += [
            paragraph("Memory by category (bytes, arena peak, largest over users):"),
            table(["category", *(_label(m) for m in trained)], rows),
        ]
    return parts


def _battery_parts(
    battery: Mapping[str, Any], clients: Sequence[ClientRecord], figures: Mapping[str, Path]
) -> list[str]:
    users = dict(sorted(battery.get("users", {}).items(), key=lambda kv: user_key(kv[0])))
    energy = battery.get("energy_j_by_load", {})
    loads = sorted(energy.get("total", {}))
    rounds = sorted({int(r) for u in users.values() for r in [*u["soc_end"], *u["skipped_rounds"]]})
    status = {c.user: c.status.value for c in clients}
    rows, marked = [], []
    for user, u in users.items():
        socs = ["skipped" if r in u["skipped_rounds"] else u["soc_end"].get(str(r)) for r in rounds]
        by_load = u["energy_j_by_load"]
        jobs = u["jobs"]
        rows.append(
            [user, status.get(user, ""), *socs, *(by_load.get(k) for k in loads),
             sum(by_load.values()), jobs.get("full", 0), jobs.get("tl", 0)]
        )  # fmt: skip
        marked.append(bool(u["skipped_rounds"]))
    skipped = [user for user, u in users.items() if u["skipped_rounds"]]
    parts = [image(figures[name], name) for name in ("soc_by_round", "energy_by_user")
             if name in figures]  # fmt: skip
    parts += [
        paragraph(
            "Per user: state of charge at the end of each round (a fraction; 'skipped': the "
            "server skipped the user that round for low battery), energy by load over the run "
            "(J) and personalization jobs. Users skipped in some round: "
            + (", ".join(skipped) if skipped else "none")
            + "."
        ),
        table(
            [
                "user",
                "status",
                *(f"SoC r{r}" for r in rounds),
                *(f"{k} (J)" for k in loads),
                "total (J)",
                "Full jobs",
                "TL jobs",
            ],
            rows,
            left=2,
            marked=marked,
        ),  # fmt: skip
        *_round_parts(battery.get("by_round", {}), battery.get("first_depletion_s")),
        paragraph("Energy by load per round, all users (J):"),
        table(
            ["round", *loads, "total"],
            [
                [r, *(e.get(k) for k in loads), sum(e.values())]
                for r, e in sorted(energy.get("by_round", {}).items(), key=lambda kv: int(kv[0]))
            ]
            + [["run", *(energy["total"].get(k) for k in loads), sum(energy["total"].values())]],
        ),
    ]
    return parts


def _round_parts(by_round: Mapping[str, Any], first_depletion_s: float | None) -> list[str]:
    """The table of each round's participants, stragglers, drop-outs, state of charge and
    F1 of the model held for the users not yet joined."""
    if not by_round:
        return []
    rows = []
    for r, line in sorted(by_round.items(), key=lambda kv: int(kv[0])):
        glob, unjoined = line.get("global_f1") or {}, line.get("unjoined_f1") or {}
        rows.append(
            [r, len(line["participants"]), len(line["updates"]), len(line["stragglers"]),
             len(line["dropouts"]), len(line["not_chosen"]), len(line["devices_off"]),
             line["mean_soc"], sum(line["energy_j_by_load"].values()),
             glob.get("mean"), unjoined.get("mean"), unjoined.get("n_users")]
        )  # fmt: skip
    first = "never" if first_depletion_s is None else f"{first_depletion_s / 86400:.2f} days"
    return [
        paragraph(
            "Per round: clients sent the model, updates aggregated on time, stragglers (past "
            "the deadline), drop-outs (cut off by the battery before finishing a job), clients "
            "not chosen, devices off at the round's end, mean state of charge, energy of all "
            "devices (J), and the mean macro-F1 on TS_i of the model the server held for each "
            "user after the round, over every user and over the users not yet joined (never "
            "sent a model). First depletion in the fleet: " + first + "."
        ),
        table(
            [
                "round",
                "participants",
                "updates",
                "stragglers",
                "drop-outs",
                "not chosen",
                "off",
                "mean SoC",
                "energy (J)",
                "F1 not yet joined",
                "users not yet joined",
            ],
            rows,
        ),  # fmt: skip
    ]


def _per_user_parts(clients: Sequence[ClientRecord], modes: Sequence[str]) -> list[str]:
    trained = [m for m in modes if Mode(m).trains]
    marked = [c.status.value != "ok" for c in clients]
    scores = [
        [c.user, c.status.value, c.modes_round,
         *(c.modes[Mode(m)].f1 if Mode(m) in c.modes else None for m in modes),
         *(c.modes[Mode(m)].f1_deployed if Mode(m) in c.modes else None for m in modes)]
        for c in clients
    ]  # fmt: skip
    costs = []
    for c in clients:
        row: list[Any] = [c.user]
        for m in trained:
            r = c.modes.get(Mode(m))
            row += [None, None, None] if r is None else [_sci(r.cycles), r.seconds, r.energy_j]
        costs.append(row)
    parts = [
        paragraph(
            "Scores: macro-F1 on TS_i, from the round named (a skipped user keeps its last ok "
            "round's); deployed: the model re-quantized to the payload's format."
        ),
        table(
            [
                "user",
                "status",
                "figures of round",
                *(f"F1 {_label(m)}" for m in modes),
                *(f"deployed {_label(m)}" for m in modes),
            ],
            scores,
            left=2,
            marked=marked,
        ),  # fmt: skip
    ]
    if trained:
        parts += [
            paragraph("Costs of each job on the MCU: cycles, seconds and energy (J)."),
            table(
                [
                    "user",
                    *(f"{what} {_label(m)}" for m in trained for what in ("cycles", "s", "J")),
                ],
                costs,
                marked=marked,
            ),  # fmt: skip
        ]
    notes = [f"<li>user {escape(c.user)}: {escape(c.reason)}</li>" for c in clients if c.reason]
    if notes:
        parts.append(f"<p>Why users are not ok:</p><ul>{''.join(notes)}</ul>")
    return parts


def _federation_parts(report: Mapping[str, Any]) -> list[str]:
    """A ``federation`` section when the federation failed: why, and whom it never reached."""
    federation = report.get("federation") or {}
    if federation.get("status") != "failed":
        return []
    missed = federation.get("users_not_reached") or []
    texts = [
        f"The federation failed: {federation.get('reason', '')}",
        "Users it did not reach in the last round: "
        + (", ".join(map(str, missed)) if missed else "none")
        + ". Their records are those logged before the failure (failed when none was).",
    ]
    return [section("federation", "Federation failed", [paragraph(t) for t in texts])]


def _covered_parts(report: Mapping[str, Any]) -> list[str]:
    """Which users the summary covers: the ``ok`` and ``skipped`` ones, the others named."""
    out = report.get("summary_left_out") or {}
    if not out:
        return []
    names = ", ".join(f"{u} ({status})" for u, status in sorted(out.items()))
    return [paragraph(f"Every mean covers the same users, those ok or skipped; left out: {names}.")]


def render(
    report: Mapping[str, Any],
    figures: Mapping[str, Path],
    path: Path,
    sweep: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Writes ``path`` from a ``report.json`` payload, its figures (name → PNG, names of
    :data:`FIGURE_SECTIONS`) and optional sweep rows (``{"window": T, "mean": {mode: F1}}``);
    returns ``path``."""
    header = report.get("header", {})
    clients = [ClientRecord.from_dict(c) for c in report.get("clients", [])]
    summary = report.get("summary", {})
    modes = [m.value for m in MODES if m in summary]

    def shown(anchor: str) -> list[str]:
        return [image(p, name) for name, p in figures.items() if FIGURE_SECTIONS[name] == anchor]

    identity = [
        [k, v if not isinstance(v, list) else ", ".join(map(str, v))] for k, v in header.items()
    ]
    parts = [
        section("identity", "Run", [table(["field", "value"], identity)]),
        *_federation_parts(report),
        section("cost", "Summary: F1 and cost per mode", [
            *_covered_parts(report), *_cost_parts(summary, sram_bytes(header.get("mcu", "")))]),
    ]  # fmt: skip
    if sweep:
        rows = []
        for r in sweep:
            paper = PAPER_TABLE2_WISDM.get(int(r["window"]), {})
            rows.append(
                [f"({r['window']},3)"]
                + [r["mean"].get(m) for m in PAPER_MODES]
                + [paper.get(m) for m in PAPER_MODES]
            )
        header_row = ["input", "No Pers.", "TL", "Full", "paper No Pers.", "paper TL", "paper Full"]
        parts.append(
            section(
                "table2",
                "Table II: mean macro-F1 over input sizes (paper: WISDM v1.1)",
                [*shown("table2"), table(header_row, rows)],
            )
        )
    if shown("f1"):
        parts.append(section("f1", "Macro-F1 per user and gain against energy", shown("f1")))
    battery = report.get("battery")
    if battery:
        parts.append(section("battery", "Battery", _battery_parts(battery, clients, figures)))
    for anchor, title in (("confusion", "Confusion matrices"), ("curves", "Learning curves")):
        if shown(anchor):
            parts.append(section(anchor, title, shown(anchor)))
    if clients:
        parts.append(section("per-user", "Per user", _per_user_parts(clients, modes)))
    return write_page(path, f"fedhar report: {header.get('scenario', '')}", parts)
