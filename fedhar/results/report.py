"""The run report (``report.json`` and ``report.csv``) of the per-client records.

Each user has one :class:`~fedhar.results.record.ClientRecord` (``clients``: its last round's
figures, the summary's source; the summary covers the ``ok`` and ``skipped`` users, and
``summary_left_out`` names the others with their status) and, once the federation ran, one per
logged round (``rounds``, the last of each user marked), and ``federation`` its status
(``completed``, or ``failed`` with the reason and the users it never reached); a battery run
adds the battery's figures over the rounds (:func:`~fedhar.results.rounds.battery_section`),
and federated pretraining its rounds, bytes and clients' cost (``pretrain``).
:class:`ReportWriter` rewrites the whole report atomically each time a client finishes, so an
interrupted run keeps every finished client and ``--resume`` can skip them. ``report.csv`` is
the tidy table of :mod:`fedhar.results.tidy`. ``report.json`` has sorted keys, floats rounded to
:data:`FLOAT_DIGITS` digits and no wall-clock fields, so the same scenario and seed give
byte-identical files.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fedhar.enums import MODES, Mode, Status
from fedhar.errors import InputError
from fedhar.files import write_atomic
from fedhar.results.record import ClientRecord
from fedhar.results.rounds import battery_section, last_round_of, ordered_rounds, user_key
from fedhar.results.tidy import tidy_csv

FLOAT_DIGITS = 6
TIE = 10.0**-FLOAT_DIGITS
"""Scores closer than this are equal: a resumed run reads its logged clients at
``FLOAT_DIGITS`` digits."""
REPORT_FORMAT = 5
"""5: the summary covers one set of users, the same for every mode and figure (those whose record
is ``ok`` or ``skipped``; ``summary_left_out`` names the others), and ``federation`` says
whether the federation completed; 4: each mode's ``f1_deployed`` (and the summary's
``mean_deployed``) scores the model as deployed in the run's payload format, once
``f1_int8``/``mean_int8``; 3: ``rounds`` holds every logged round, ``battery`` the battery's
figures over them, and each mode's summary its cost (2: the last round only; 1: parallel dicts
per figure)."""


class ReportError(InputError):
    """An existing report cannot be resumed (unreadable, or from another scenario)."""


@dataclass(frozen=True)
class ModeSummary:
    """Macro-F1 over users for one mode: mean, population std, min, max, users counted;
    the mean as deployed, after re-quantization to the payload's format (None without such
    figures), and the share of users
    whose F1 beats their No-Pers F1 (None for ``none``); the users it harmed (F1 below their
    No-Pers F1 by more than :data:`TIE`) and, with the guard, the users whose job's model the
    guard kept out. The job's cost: the arena's peak bytes by category and ``total`` (the
    largest over users), and the mean MCU cycles, seconds and energy (J) over users (zero for
    ``none``)."""

    mean: float
    std: float
    min: float
    max: float
    n_users: int
    mean_deployed: float | None = None
    improved: float | None = None
    harmed: list[str] | None = None
    guard_rejected: list[str] | None = None
    memory_bytes: dict[str, int] | None = None
    mean_cycles: float = 0.0
    mean_seconds: float = 0.0
    mean_energy_j: float = 0.0


def present_modes(records: list[ClientRecord]) -> list[Mode]:
    """The modes any record holds, in :data:`~fedhar.enums.MODES` order."""
    return [m for m in MODES if any(m in r.modes for r in records)]


SUMMARIZED: tuple[Status, ...] = (Status.OK, Status.SKIPPED)
"""The statuses whose records the summary covers: the users with the device's figures (a
skipped user keeps those of its last ``ok`` round)."""


def covered(records: list[ClientRecord]) -> list[ClientRecord]:
    """The records the summary covers: those whose status is in :data:`SUMMARIZED`; when there
    is none (no device reported figures), every record, whose scores are then all the general
    model's, without device figures: one set either way."""
    return [r for r in records if r.status in SUMMARIZED] or list(records)


def left_out(records: list[ClientRecord]) -> dict[str, str]:
    """user → status of the users the summary leaves out (declined, failed, rejected)."""
    kept = {r.user for r in covered(records)}
    return {r.user: r.status.value for r in records if r.user not in kept}


def summarize(records: list[ClientRecord]) -> dict[Mode, ModeSummary]:
    """Per mode, the spread of the users' macro-F1, over the users :func:`covered` keeps:
    every mean of every mode covers that same set (a failed user's general-model score would
    otherwise count in ``none``'s mean but not in its deployed mean, nor in the trained
    modes')."""
    records = covered(records)
    out: dict[Mode, ModeSummary] = {}
    for mode in present_modes(records):
        values = [r.modes[mode].f1 for r in records if mode in r.modes]
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        deployed = [
            r.modes[mode].f1_deployed
            for r in records
            if mode in r.modes and r.modes[mode].f1_deployed is not None
        ]
        pairs = [
            (r.modes[mode].f1, r.modes[Mode.NONE].f1)
            for r in records
            if mode in r.modes and Mode.NONE in r.modes
        ]
        compared = [r for r in records if mode in r.modes and Mode.NONE in r.modes]
        guarded = [r for r in records if mode in r.modes and r.modes[mode].guard]
        ran = [r.modes[mode] for r in records if mode in r.modes]
        memory: dict[str, int] = {}
        for m in ran:
            for k, v in m.memory_bytes.items():
                memory[k] = max(v, memory.get(k, 0))
        out[mode] = ModeSummary(
            mean,
            std,
            min(values),
            max(values),
            len(values),
            mean_deployed=sum(deployed) / len(deployed) if deployed else None,
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
            memory_bytes=memory or None,
            mean_cycles=sum(m.cycles for m in ran) / len(ran),
            mean_seconds=sum(m.seconds for m in ran) / len(ran),
            mean_energy_j=sum(m.energy_j for m in ran) / len(ran),
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
        self.rounds: list[ClientRecord] = []
        self.federation: dict[str, Any] | None = None
        self.pretrain: dict[str, Any] | None = None
        """Federated pretraining's figures (``report.json``'s ``pretrain`` block), or None
        (centralized pretraining writes no block)."""
        self.global_f1: dict[int, dict[str, Any]] = {}
        """round → F1 of the model held for each user, and the users not yet joined
        (:func:`~fedhar.results.journal.load_globals`)."""
        self.json_path = self.out_dir / "report.json"
        self.csv_path = self.out_dir / "report.csv"
        if resume and self.json_path.is_file():
            self._load_existing()

    def _load_existing(self) -> None:
        try:
            data = json.loads(self.json_path.read_text(encoding="utf-8"))
            header = data["header"]
            clients = [ClientRecord.from_dict(c) for c in data["clients"]]
            rounds = [
                ClientRecord.from_dict({k: v for k, v in r.items() if k != "last"})
                for r in data.get("rounds", [])
            ]
            pretrain = data.get("pretrain")
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
        self.rounds = rounds
        self.pretrain = pretrain if isinstance(pretrain, dict) else None

    def done(self, user: str) -> bool:
        """True when ``user``'s record is already in the report."""
        return user in self.records

    def add(self, record: ClientRecord) -> None:
        """Adds (or replaces) a client's record and rewrites both files atomically."""
        self.records[record.user] = record
        self.write()

    def ordered(self) -> list[ClientRecord]:
        """Records in user order (numeric ids numerically)."""
        return sorted(self.records.values(), key=lambda r: user_key(r.user))

    def write(self) -> None:
        """Rewrites ``report.json`` and ``report.csv`` from the current records and rounds."""
        records = self.ordered()
        rounds = ordered_rounds(self.rounds)
        last = last_round_of(rounds)
        payload: dict[str, Any] = {
            "format": REPORT_FORMAT,
            "header": self.header,
            "clients": [_rounded(r.to_dict()) for r in records],
            "rounds": [{**_rounded(r.to_dict()), "last": r.round == last[r.user]} for r in rounds],
            "summary": {m.value: _rounded(asdict(s)) for m, s in summarize(records).items()},
            "summary_left_out": left_out(records),
        }
        if self.federation is not None:
            payload["federation"] = self.federation
        if self.pretrain is not None:
            payload["pretrain"] = _rounded(self.pretrain)
        battery = battery_section(rounds, self.global_f1)
        if battery is not None:
            payload["battery"] = _rounded(battery)
        write_atomic(self.json_path, json.dumps(payload, sort_keys=True, indent=1) + "\n")
        write_atomic(self.csv_path, tidy_csv(self.header, records, rounds, FLOAT_DIGITS))
