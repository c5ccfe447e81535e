"""The run report (``report.json`` and ``report.csv``) of the per-client records.

Each user has one :class:`~fedhar.results.record.ClientRecord`; :class:`ReportWriter` rewrites
the whole report atomically each time a client finishes, so an interrupted run keeps every finished
client and ``--resume`` can skip them. ``report.json`` has sorted keys, floats rounded to
:data:`FLOAT_DIGITS` digits and no wall-clock fields, so the same scenario and seed give
byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fedhar.enums import MODES, Mode
from fedhar.errors import InputError
from fedhar.files import write_atomic
from fedhar.results.record import ClientRecord

FLOAT_DIGITS = 6
TIE = 10.0**-FLOAT_DIGITS
"""Scores closer than this are equal: a resumed run reads its logged clients at
``FLOAT_DIGITS`` digits."""
REPORT_FORMAT = 2
"""2: each client holds one record per mode under ``modes`` (1: parallel dicts per figure)."""


class ReportError(InputError):
    """An existing report cannot be resumed (unreadable, or from another scenario)."""


@dataclass(frozen=True)
class ModeSummary:
    """Macro-F1 over users for one mode: mean, population std, min, max, users counted;
    the mean after int8 re-quantization (None without int8 figures) and the share of users
    whose F1 beats their No-Pers F1 (None for ``none``); the users it harmed (F1 below their
    No-Pers F1 by more than :data:`TIE`) and, with the guard, the users whose job's model the
    guard kept out."""

    mean: float
    std: float
    min: float
    max: float
    n_users: int
    mean_int8: float | None = None
    improved: float | None = None
    harmed: list[str] | None = None
    guard_rejected: list[str] | None = None


def present_modes(records: list[ClientRecord]) -> list[Mode]:
    """The modes any record holds, in :data:`~fedhar.enums.MODES` order."""
    return [m for m in MODES if any(m in r.modes for r in records)]


def summarize(records: list[ClientRecord]) -> dict[Mode, ModeSummary]:
    """Per mode, the spread of the users' macro-F1."""
    out: dict[Mode, ModeSummary] = {}
    for mode in present_modes(records):
        values = [r.modes[mode].f1 for r in records if mode in r.modes]
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        int8 = [
            r.modes[mode].f1_int8
            for r in records
            if mode in r.modes and r.modes[mode].f1_int8 is not None
        ]
        pairs = [
            (r.modes[mode].f1, r.modes[Mode.NONE].f1)
            for r in records
            if mode in r.modes and Mode.NONE in r.modes
        ]
        compared = [r for r in records if mode in r.modes and Mode.NONE in r.modes]
        guarded = [r for r in records if mode in r.modes and r.modes[mode].guard]
        out[mode] = ModeSummary(
            mean,
            std,
            min(values),
            max(values),
            len(values),
            mean_int8=sum(int8) / len(int8) if int8 else None,
            improved=(sum(a > b for a, b in pairs) / len(pairs) if pairs and mode.trains else None),
            harmed=(
                [r.user for r in compared if r.modes[mode].f1 < r.modes[Mode.NONE].f1 - TIE]
                if compared and mode.trains
                else None
            ),
            guard_rejected=(
                [r.user for r in guarded if not r.modes[mode].guard["deployed"]]
                if guarded
                else None
            ),
        )
    return out


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, FLOAT_DIGITS) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


class ReportWriter:
    """Writes ``DIR/report.json`` and ``DIR/report.csv`` after every finished client.

    Args:
        out_dir: the output directory (created).
        header: run identity stored at the top of ``report.json`` (scenario name, its
            sha256, classes, ...); plain JSON data, no times.
        resume: keep the clients of an existing report with the same header; otherwise an
            existing report is replaced.

    Raises:
        ReportError: with ``resume``, an existing report that is unreadable or whose header
            differs (another scenario or seed).
    """

    def __init__(self, out_dir: str | Path, header: dict[str, Any], *, resume: bool) -> None:
        self.out_dir = Path(out_dir)
        self.header = _rounded(header)
        self.records: dict[str, ClientRecord] = {}
        self.json_path = self.out_dir / "report.json"
        self.csv_path = self.out_dir / "report.csv"
        if resume and self.json_path.is_file():
            self._load_existing()

    def _load_existing(self) -> None:
        try:
            data = json.loads(self.json_path.read_text(encoding="utf-8"))
            header = data["header"]
            clients = [ClientRecord.from_dict(c) for c in data["clients"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ReportError(
                f"{self.json_path}: cannot resume, unreadable report: {exc}"
            ) from None
        if header != self.header:
            changed = sorted(
                k for k in set(header) | set(self.header) if header.get(k) != self.header.get(k)
            )
            raise ReportError(
                f"{self.json_path}: cannot resume, the report was written for a different run "
                f"(differs in: {', '.join(changed)}); use another --out or drop --resume"
            )
        self.records = {c.user: c for c in clients}

    def done(self, user: str) -> bool:
        """True when ``user``'s record is already in the report."""
        return user in self.records

    def add(self, record: ClientRecord) -> None:
        """Adds (or replaces) a client's record and rewrites both files atomically."""
        self.records[record.user] = record
        self.write()

    def ordered(self) -> list[ClientRecord]:
        """Records in user order (numeric ids numerically)."""
        return sorted(
            self.records.values(),
            key=lambda r: (0, int(r.user), "") if r.user.isdigit() else (1, 0, r.user),
        )

    def write(self) -> None:
        """Rewrites ``report.json`` and ``report.csv`` from the current records."""
        records = self.ordered()
        payload = {
            "format": REPORT_FORMAT,
            "header": self.header,
            "clients": [_rounded(r.to_dict()) for r in records],
            "summary": {m.value: _rounded(asdict(s)) for m, s in summarize(records).items()},
        }
        write_atomic(self.json_path, json.dumps(payload, sort_keys=True, indent=1) + "\n")
        write_atomic(self.csv_path, _csv(records))


def _csv(records: list[ClientRecord]) -> str:
    """One row per user: identity, sizes, scores per mode, costs per training mode, payload
    and battery figures."""
    modes = present_modes(records)
    trained = [m for m in modes if m.trains]
    columns = ["user", "fold", "status", "n_train", "n_test"]
    for metric in ("f1", "accuracy", "balanced_accuracy", "f1_int8"):
        columns += [f"{metric}_{m}" for m in modes]
    for metric in ("memory_bytes", "cycles", "seconds", "energy_j"):
        columns += [f"{metric}_{m}" for m in trained]
    columns += ["payload_bytes_down", "payload_bytes_up"]
    loads: list[str] = []
    for r in records:
        loads += [k for k in (r.battery.energy_j_by_load if r.battery else {}) if k not in loads]
    battery = any(r.battery is not None for r in records)
    if battery:
        columns += ["soc_end"] + [f"energy_j_{load}" for load in loads]
    columns += ["reason"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)

    def cells(r: ClientRecord, among: list[Mode], figure: Callable[[Any], Any]) -> list[Any]:
        values = [figure(r.modes[m]) if m in r.modes else None for m in among]
        return ["" if v is None else _rounded(v) for v in values]

    for r in records:
        row: list[Any] = [r.user, r.fold, r.status.value, r.n_train, r.n_test]
        for metric in ("f1", "accuracy", "balanced_accuracy", "f1_int8"):
            row += cells(r, modes, lambda m, name=metric: getattr(m, name))
        row += cells(r, trained, lambda m: m.memory_bytes.get("total"))
        for metric in ("cycles", "seconds", "energy_j"):
            row += cells(r, trained, lambda m, name=metric: getattr(m, name))
        row += [r.payload_bytes_down, r.payload_bytes_up]
        if battery:
            by_load = r.battery.energy_j_by_load if r.battery else {}
            row += ["" if r.battery is None else _rounded(r.battery.soc_end)]
            row += [_rounded(by_load[k]) if k in by_load else "" for k in loads]
        row += [r.reason]
        writer.writerow(row)
    return buffer.getvalue()
