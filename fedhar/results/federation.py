"""Folds the federation's per-client log into the run report, and draws the report's pages.

The ServerApp logs each client's record to ``OUT/clients.jsonl`` as it arrives (on every
engine). :func:`merge_federation` puts each user's last-round
:class:`~fedhar.results.record.ClientRecord` in the report, and every logged round in its
``rounds``. :func:`write_pages` draws the figures (PNG and SVG) and ``report.html``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from fedhar.enums import MODES, Mode, Status
from fedhar.results import figures, run_page
from fedhar.results.journal import CLIENTS_FILE, load_globals, read_rows
from fedhar.results.record import ClientRecord
from fedhar.results.report import ReportWriter


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
    """Puts the last-round record of every logged user in the report, and every logged round
    in its ``rounds``; rewrites the report.

    ``none``'s scores stay the general model's float32 scores (the device's ``f1_deployed`` of the
    model it received, as deployed, is kept). A user skipped for low battery keeps the figures of
    its last ``ok`` round (its wearable still holds that model), under the skip's ``status``,
    ``reason`` and ``round``; its ``modes_round`` names the round the figures come from. Returns the
    number of users merged."""
    path = Path(out_dir) / CLIENTS_FILE
    logged = {(r["user"], r["round"]): r for r in (read_rows(path) if path.exists() else [])}
    writer.rounds = [ClientRecord.from_dict(r) for r in logged.values()]
    writer.global_f1 = load_globals(out_dir)
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
            merged = replace(
                source,
                modes={m: modes[m] for m in MODES if m in modes},
                modes_round=source.round,
            )
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
    """Draws the figures of ``OUT/report.json`` (and of a sweep), each as PNG and SVG, and
    writes ``report.html``; returns the PNG figures and the page written."""
    out_dir = Path(out_dir)
    report = json.loads((out_dir / "report.json").read_text())
    clients = [ClientRecord.from_dict(c) for c in report.get("clients", [])]
    header = report.get("header", {})
    title = str(header.get("scenario", ""))
    drawn: dict[str, Path] = {}
    if sweep:
        drawn["table2"] = figures.table2(sweep, out_dir / "table2.png")
    if clients:
        drawn["f1_by_user"] = figures.f1_by_user(clients, out_dir / "f1_by_user.png", title)
        drawn["gain_vs_energy"] = figures.gain_vs_energy(
            clients, out_dir / "gain_vs_energy.png", title
        )
        drawn["confusion"] = figures.confusion(
            clients, [str(c) for c in header.get("classes", [])], out_dir / "confusion.png"
        )
        if any(m.curve for c in clients for m in c.modes.values()):
            drawn["learning_curves"] = figures.learning_curves(
                clients, out_dir / "learning_curves.png"
            )
    battery = report.get("battery")
    if battery:
        drawn["soc_by_round"] = figures.soc_by_round(battery, out_dir / "soc_by_round.png", title)
        drawn["energy_by_user"] = figures.energy_by_user(
            battery, out_dir / "energy_by_user.png", title
        )
    page = run_page.render(report, drawn, out_dir / "report.html", sweep)
    return [*drawn.values(), page]
