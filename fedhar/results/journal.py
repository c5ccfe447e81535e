"""Per-client results, written one line at a time as each client finishes.

``OUT/clients.jsonl`` holds one client record (:meth:`ClientRecord.to_dict
<fedhar.results.record.ClientRecord.to_dict>`) per (round, user) outcome, appended and flushed as
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

from fedhar.results.record import ClientOutcome

CLIENTS_FILE = "clients.jsonl"


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
        row = outcome.record.to_dict()
        if outcome.update is not None and outcome.received is not None:
            path = self._update_path(outcome.record.round, outcome.record.user)
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
