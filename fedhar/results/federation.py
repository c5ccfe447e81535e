"""Folds the federation's per-client log into the run report, and draws the report's pages.

The ServerApp logs each client's record to ``OUT/clients.jsonl`` as it arrives (on every
engine). :func:`merge_federation` puts each user's last-round
:class:`~fedhar.results.record.ClientRecord` in the report, and every logged round in its
``rounds``, with the federation's status (completed, or failed: :class:`FederationFailure`).
:func:`write_pages` draws the figures (PNG and SVG) and ``report.html``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
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


@dataclass(frozen=True)
class FederationFailure:
    """Why a federation stopped before its end, and whom it was to reach.

    Attributes:
        reason: one line (e.g. the SuperLink exited during the run).
        users: the users the federation serves, in report order.
        rounds: the scenario's ``federation.rounds``.
    """

    reason: str
    users: Sequence[str]
    rounds: int


def federation_status(
    logged: Iterable[tuple[str, int]], failure: FederationFailure | None
) -> dict[str, Any]:
    """The report's ``federation`` entry: ``{"status": "completed"}``, or ``failed`` with the
    ``reason`` and ``users_not_reached``: the users with no outcome logged (``logged``: its
    (user, round) pairs) in the last round."""
    if failure is None:
        return {"status": "completed"}
    reached = {user for user, round_number in logged if round_number == failure.rounds}
    return {
        "status": "failed",
        "reason": failure.reason,
        "users_not_reached": [u for u in failure.users if u not in reached],
    }


def merge_federation(
    writer: ReportWriter, out_dir: Path, failure: FederationFailure | None = None
) -> int:
    """Puts the last-round record of every logged user in the report, and every logged round
    in its ``rounds``, and the federation's status (``failure``: it failed); rewrites the
    report. After a failure, a user with no outcome logged at all is marked ``failed``, with
    the federation's reason, so the report never shows it as ``ok``.

    ``none``'s scores stay the general model's float32 scores (the device's ``f1_deployed`` of the
    model it received, as deployed, is kept). A user skipped for low battery keeps the figures of
    its last ``ok`` round (its wearable still holds that model), under the skip's ``status``,
    ``reason`` and ``round``; its ``modes_round`` names the round the figures come from. Returns the
    number of users merged."""
    path = Path(out_dir) / CLIENTS_FILE
    logged = {(r["user"], r["round"]): r for r in (read_rows(path) if path.exists() else [])}
    writer.rounds = [ClientRecord.from_dict(r) for r in logged.values()]
    writer.federation = federation_status(logged, failure)
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
    if failure is not None:
        for user in writer.federation["users_not_reached"]:
            if user in writer.records and user not in rows:
                writer.records[user] = replace(
                    writer.records[user],
                    status=Status.FAILED,
                    reason=f"the federation failed before reaching this user: {failure.reason}",
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
