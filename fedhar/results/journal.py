"""Per-client results, written one line at a time as each client finishes.

``OUT/clients.jsonl`` holds one JSON object per (round, user) outcome, appended and flushed as
soon as the reply is in, so an interrupted run loses nothing; :meth:`ResultLog.done` tells a
resumed run which (round, user) pairs it can skip. With aggregation, the accepted updates of a
round are kept beside it (``OUT/updates/round-<r>/<user>.npz``, the received and the
personalized weights) so that a resumed run aggregates exactly what the first run would have.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from fedhar.wearable.loads import LOADS
from server.strategy import ClientOutcome

CLIENTS_FILE = "clients.jsonl"


def outcome_to_dict(outcome: ClientOutcome) -> dict[str, Any]:
    """Plain JSON data of one outcome (report keys as in ``report.json``'s ``clients``)."""
    row: dict[str, Any] = {
        "round": outcome.round,
        "user": outcome.user,
        "status": outcome.status,
        "reason": outcome.reason,
    }
    report = outcome.report
    if report is None:
        return row
    modes = report.modes
    row.update(
        {
            "n_train": report.n_train,
            "n_test": report.n_test,
            "f1": {m: r.f1 for m, r in modes.items()},
            "f1_int8": {m: r.f1_int8 for m, r in modes.items()},
            "memory_bytes": {m: r.memory_bytes for m, r in modes.items() if r.memory_bytes},
            "macs": {m: r.macs for m, r in modes.items() if m != "none"},
            "cycles": {m: r.cycles for m, r in modes.items() if m != "none"},
            "seconds": {m: r.seconds for m, r in modes.items() if m != "none"},
            "energy_j": {m: r.energy_j for m, r in modes.items() if m != "none"},
            "payload_bytes": {"down": report.payload_bytes_down, "up": report.payload_bytes_up},
        }
    )
    if outcome.device is not None:
        row.update(device_figures(outcome.device))
    return row


def device_figures(device: dict[str, float]) -> dict[str, Any]:
    """A battery-powered device's round in report form: ``soc_end`` (fraction),
    ``energy_j_by_load`` (J by load) and ``jobs`` (completed personalization jobs by mode)."""
    return {
        "soc_end": float(device["soc_end"]),
        "energy_j_by_load": {load: float(device[f"energy_j_{load}"]) for load in LOADS},
        "jobs": {"full": int(device["full_jobs"]), "tl": int(device["tl_jobs"])},
    }


class ResultLog:
    """Append-only log of outcomes under ``out_dir``.

    Args:
        out_dir: the run's output directory (created if needed).
        resume: keep the outcomes already logged (else start a fresh log).
    """

    def __init__(self, out_dir: str | Path, resume: bool) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / CLIENTS_FILE
        self.rows: list[dict[str, Any]] = []
        if resume and self.path.exists():
            lines = self.path.read_text().splitlines()
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    self.rows.append(json.loads(line))
                except json.JSONDecodeError:
                    # Only the last line may be cut short (by an interruption): redo that client.
                    if number != len(lines):
                        raise ValueError(f"{self.path}: line {number} is not valid JSON") from None
            self._rewrite()
        else:
            self.path.write_text("")

    def done(self, round_number: int, user: str) -> dict[str, Any] | None:
        """The logged outcome of ``user`` in ``round_number``, if any (the latest one)."""
        found = None
        for row in self.rows:
            if row["round"] == round_number and row["user"] == user:
                found = row
        return found

    def append(self, outcome: ClientOutcome) -> dict[str, Any]:
        """Logs ``outcome`` (flushed and synced to disk); keeps its update when it has one."""
        row = outcome_to_dict(outcome)
        if outcome.update is not None and outcome.received is not None:
            path = self._update_path(outcome.round, outcome.user)
            path.parent.mkdir(parents=True, exist_ok=True)
            arrays = {f"update/{k}": v for k, v in outcome.update.items()}
            arrays.update({f"received/{k}": v for k, v in outcome.received.items()})
            np.savez(path, **arrays)
        with self.path.open("a") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.rows.append(row)
        return row

    def load_update(
        self, round_number: int, user: str
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
        """The (received, update) weights kept for ``user`` in ``round_number``, if any."""
        path = self._update_path(round_number, user)
        if not path.exists():
            return None
        with np.load(path) as z:
            received = {k[len("received/") :]: z[k] for k in z.files if k.startswith("received/")}
            update = {k[len("update/") :]: z[k] for k in z.files if k.startswith("update/")}
        return received, update

    def _update_path(self, round_number: int, user: str) -> Path:
        return self.out_dir / "updates" / f"round-{round_number}" / f"{user}.npz"

    def _rewrite(self) -> None:
        with self.path.open("w") as f:
            for row in self.rows:
                f.write(json.dumps(row, sort_keys=True) + "\n")
