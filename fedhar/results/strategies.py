"""The comparison of a strategy sweep's runs: one row per (selection strategy, deadline).

A scenario whose ``sweep`` lists ``selection`` strategies (and ``deadline_s`` values) runs once
per pair (``fedhar run``); :func:`strategy_row` reads one run's ``report.json`` into the
comparison's row, and :func:`strategies_markdown` writes the rows as a table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fedhar.enums import Mode

SECONDS_PER_DAY = 86400.0

COLUMNS: tuple[tuple[str, str], ...] = (
    ("cell", "run"),
    ("global_f1", "global F1"),
    ("unjoined_f1", "F1 not yet joined"),
    ("personalized_f1", "mean personalized F1"),
    ("fleet_energy_j", "fleet energy (J)"),
    ("participations", "participations"),
    ("dropouts", "drop-outs"),
    ("stragglers", "stragglers"),
    ("first_depletion_days", "days to first depletion"),
)
"""Row key and column title of the table, in order."""


def cell_name(strategy: str, k: int | None, deadline_s: float | None) -> str:
    """The folder of one run of the sweep: ``<strategy>[-k<k>]-<deadline s | none>``."""
    size = f"-k{k}" if k is not None else ""
    deadline = "none" if deadline_s is None else f"{deadline_s:g}s"
    return f"{strategy}{size}-{deadline}"


def strategy_row(cell: str, report: Mapping[str, Any]) -> dict[str, Any]:
    """One run's row from its ``report.json`` payload.

    Keys: ``cell``; ``global_f1`` and ``unjoined_f1``, the mean macro-F1 on TS_i of the model
    the server held for every user (for the users never sent a model) after the last round
    (None when not scored); ``personalized_f1`` and ``personalized_users``, the mean final F1
    of the Full job (TL without Full) over the users that ran it, and their number;
    ``fleet_energy_j``, every device's energy over the run (J); ``participations``,
    ``dropouts`` and ``stragglers``, summed over the rounds; ``first_depletion_days``, the
    simulated days to the fleet's first cut-off (None: never).
    """
    battery = report.get("battery") or {}
    by_round = battery.get("by_round", {})
    last = by_round[max(by_round, key=int)] if by_round else {}
    summary = report.get("summary", {})
    trained = next((summary[m.value] for m in (Mode.FULL, Mode.TL) if m.value in summary), {})
    first = battery.get("first_depletion_s")

    def total(key: str) -> int:
        return sum(len(line[key]) for line in by_round.values())

    return {
        "cell": cell,
        "global_f1": (last.get("global_f1") or {}).get("mean"),
        "unjoined_f1": (last.get("unjoined_f1") or {}).get("mean"),
        "personalized_f1": trained.get("mean"),
        "personalized_users": trained.get("n_users", 0),
        "fleet_energy_j": sum(battery.get("energy_j_by_load", {}).get("total", {}).values()),
        "participations": total("participants"),
        "dropouts": total("dropouts"),
        "stragglers": total("stragglers"),
        "first_depletion_days": None if first is None else first / SECONDS_PER_DAY,
    }


def _text(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def strategies_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as a Markdown table (:data:`COLUMNS`; ``-``: none)."""
    lines = [
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(_text(r.get(k)) for k, _ in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"
