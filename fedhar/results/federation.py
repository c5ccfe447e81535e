"""Folds the federation's per-client log into the run report, and draws the report's pages.

The ServerApp logs each client's outcome to ``OUT/clients.jsonl`` as it arrives (on every engine).
:func:`merge_federation` copies each user's last-round outcome into the report's
:class:`~fedhar.results.report.ClientRecord`: the device's F1 per training mode, F1 after
re-quantizing to int8, peak memory by category, operations, cycles, seconds, joules and payload
bytes. With a battery-powered device, the state of charge, energy by load and jobs come along; a
user skipped for low battery in the last round keeps the figures of its last ``ok`` round, under
status ``skipped``. ``f1["none"]`` stays the general model's float32 score; the device's score of
the int8 model it received is ``f1_int8["none"]``. :func:`write_pages` draws the PNG figures and
``report.html``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fedhar.results import figures
from fedhar.results import html as html_report
from fedhar.results.journal import CLIENTS_FILE
from fedhar.results.report import BATTERY_FIELDS, ReportWriter

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
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if status is not None and row["status"] != status:
            continue
        if row["round"] >= rows.get(row["user"], {"round": -1})["round"]:
            rows[row["user"]] = row
    return rows


def merge_federation(writer: ReportWriter, out_dir: Path) -> int:
    """Copies the last-round outcome of every logged user into its report record; rewrites
    the report. A user skipped for low battery keeps the figures of its last ``ok`` round
    (its device still holds that model); its ``status``, ``reason`` and ``round`` are the
    skip's. Returns the number of users merged."""
    rows = last_round(out_dir)
    last_ok = last_round(out_dir, status="ok")
    for user, row in rows.items():
        record = writer.records.get(user)
        if record is None:
            continue
        record.status = row["status"]
        record.reason = row.get("reason", "")
        record.round = int(row["round"])
        source = row if row["status"] == "ok" else None
        if row["status"] == "skipped":
            source = last_ok.get(user)
        if source is not None:
            f1 = {**source["f1"], **({"none": record.f1["none"]} if "none" in record.f1 else {})}
            record.f1 = {m: f1[m] for m in figures.MODE_ORDER if m in f1}
            for name in ("f1_int8", "memory_bytes", "macs", "cycles", "seconds", "energy_j",
                         "payload_bytes"):  # fmt: skip
                setattr(record, name, source.get(name, {}))
            for name in BATTERY_FIELDS:
                setattr(record, name, source.get(name))
        writer.records[user] = record
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
    clients = report.get("clients", [])
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
