"""Folds the federation's per-client log into the run report, and draws the report's pages.

The ServerApp logs each client's record to ``OUT/clients.jsonl`` as it arrives (on every
engine). :func:`merge_federation` puts each user's last-round
:class:`~fedhar.results.record.ClientRecord` in the report. :func:`write_pages` draws the PNG
figures and ``report.html``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from fedhar.enums import MODES, Mode, Status
from fedhar.results import figures
from fedhar.results import html as html_report
from fedhar.results.journal import CLIENTS_FILE, read_rows
from fedhar.results.record import ClientRecord
from fedhar.results.report import ReportWriter

FIGURES: tuple[tuple[str, str], ...] = (
    ("Macro-F1 per user and mode", "f1_by_user.png"),
    ("F1 gain vs device energy", "gain_vs_energy.png"),
)
TABLE2_FIGURE = "table2.png"


def last_round(out_dir: Path, status: str | None = None) -> dict[str, dict[str, Any]]:
    """user → that user's outcome row of the highest round in ``OUT/clients.jsonl`` (with
    ``status``: among the rows of that status)."""
    path = Path(out_dir) / CLIENTS_FILE
    rows: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return rows
    for row in read_rows(path):
        if status is not None and row["status"] != status:
            continue
        if row["round"] >= rows.get(row["user"], {"round": -1})["round"]:
            rows[row["user"]] = row
    return rows


def merge_federation(writer: ReportWriter, out_dir: Path) -> int:
    """Puts the last-round record of every logged user in the report; rewrites the report.

    ``none``'s scores stay the general model's float32 scores (the device's ``f1_int8`` of the
    int8 model it received is kept). A user skipped for low battery keeps the figures of its
    last ``ok`` round (its wearable still holds that model), under the skip's ``status``,
    ``reason`` and ``round``. Returns the number of users merged."""
    rows = last_round(out_dir)
    last_ok = last_round(out_dir, status=Status.OK)
    for user, row in rows.items():
        general = writer.records.get(user)
        if general is None:
            continue
        logged = ClientRecord.from_dict(row)
        source = logged if logged.status == Status.OK else None
        if logged.status == Status.SKIPPED and user in last_ok:
            source = ClientRecord.from_dict(last_ok[user])
        merged = general
        if source is not None:
            modes = dict(source.modes)
            none = general.modes.get(Mode.NONE)
            if none is not None:
                device = modes.get(Mode.NONE)
                modes[Mode.NONE] = none if device is None else device.with_scores(none)
            merged = replace(source, modes={m: modes[m] for m in MODES if m in modes})
        writer.records[user] = replace(
            merged,
            fold=general.fold,
            n_train=general.n_train,
            n_test=general.n_test,
            status=logged.status,
            reason=logged.reason,
            round=logged.round,
        )
    writer.write()
    return len(rows)


def sweep_row(window: int, report: Mapping[str, Any]) -> dict[str, Any]:
    """One row of a Table II-style sweep: the window length and each mode's mean F1."""
    return {
        "window": int(window),
        "mean": {m: s["mean"] for m, s in report.get("summary", {}).items()},
    }


def write_pages(out_dir: Path, sweep: Sequence[Mapping[str, Any]] = ()) -> list[Path]:
    """Draws the figures of ``OUT/report.json`` (and of a sweep) and writes ``report.html``;
    returns the files written."""
    out_dir = Path(out_dir)
    report = json.loads((out_dir / "report.json").read_text())
    clients = [ClientRecord.from_dict(c) for c in report.get("clients", [])]
    title = str(report.get("header", {}).get("scenario", ""))
    drawn: list[tuple[str, Path]] = []
    if clients:
        drawn.append((FIGURES[0][0], figures.f1_by_user(clients, out_dir / FIGURES[0][1], title)))
        drawn.append(
            (FIGURES[1][0], figures.gain_vs_energy(clients, out_dir / FIGURES[1][1], title))
        )
    if sweep:
        drawn.insert(
            0, ("Table II over input sizes", figures.table2(sweep, out_dir / TABLE2_FIGURE))
        )
    page = html_report.render(report, drawn, out_dir / "report.html", sweep)
    return [p for _, p in drawn] + [page]
