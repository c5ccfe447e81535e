"""Per-client records and the run report (``report.json`` and ``report.csv``).

A :class:`ClientRecord` holds one user's figures; :class:`ReportWriter` rewrites the whole
report atomically each time a client finishes, so an interrupted run keeps every finished
client and ``--resume`` can skip them. ``report.json`` has sorted keys, floats rounded to
:data:`FLOAT_DIGITS` digits and no wall-clock fields, so the same scenario and seed give
byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fedhar.metrics import Scores

FLOAT_DIGITS = 6
REPORT_FORMAT = 1
BATTERY_FIELDS = ("soc_end", "energy_j_by_load", "jobs")


class ReportError(ValueError):
    """An existing report cannot be resumed (unreadable, or from another scenario)."""


@dataclass
class ClientRecord:
    """One user's results. Per-mode figures are keyed by mode (``none``, ``tl``, ...).

    Attributes:
        user: user id.
        fold: fold name (``loso-<user>``, ``kfold-<i>``).
        n_train: windows in TR_i.
        n_test: windows in TS_i.
        f1: macro-F1 on TS_i, in [0, 1].
        accuracy: accuracy on TS_i, in [0, 1].
        balanced_accuracy: balanced accuracy on TS_i, in [0, 1].
        confusion: ``[n_classes, n_classes]`` counts on TS_i (row = true class).
        status: the device's outcome: ``ok``, ``declined``, ``failed``, ``rejected`` or
            ``skipped`` (low battery; ``ok`` before the federation runs).
        reason: why the status is not ``ok``.
        round: the federated round the device figures come from (0: no federation yet).
        f1_int8: macro-F1 on TS_i after re-quantizing each mode's model to int8.
        memory_bytes: per training mode, the C library's arena peak bytes by category and
            ``total``.
        macs: per training mode, multiply-accumulates of the personalization job.
        cycles: per training mode, MCU cycles of the job on the device's profile.
        seconds: per training mode, MCU seconds of the job.
        energy_j: per training mode, MCU energy of the job in joules.
        payload_bytes: bytes on the wire of the model received (``down``) and of the update
            sent back (``up``, 0 without one).
        soc_end: battery state of charge (fraction) at the end of the last round the
            battery-powered device reported (None, and left out of the report, without a
            ``device:`` section).
        energy_j_by_load: that round's device energy by load (``sensor``, ``inference``,
            ``training``, ``radio``, ``sleep``), in J (None and left out without a battery).
        jobs: personalization jobs the device completed in that round, by mode (``full``,
            ``tl``) (None and left out without a battery).
    """

    user: str
    fold: str
    n_train: int
    n_test: int
    f1: dict[str, float] = field(default_factory=dict)
    accuracy: dict[str, float] = field(default_factory=dict)
    balanced_accuracy: dict[str, float] = field(default_factory=dict)
    confusion: dict[str, list[list[int]]] = field(default_factory=dict)
    status: str = "ok"
    reason: str = ""
    round: int = 0
    f1_int8: dict[str, float] = field(default_factory=dict)
    memory_bytes: dict[str, dict[str, int]] = field(default_factory=dict)
    macs: dict[str, int] = field(default_factory=dict)
    cycles: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    energy_j: dict[str, float] = field(default_factory=dict)
    payload_bytes: dict[str, int] = field(default_factory=dict)
    soc_end: float | None = None
    energy_j_by_load: dict[str, float] | None = None
    jobs: dict[str, int] | None = None

    def add_scores(self, mode: str, scores: Scores) -> None:
        """Records the scores of ``mode``."""
        self.f1[mode] = scores.macro_f1
        self.accuracy[mode] = scores.accuracy
        self.balanced_accuracy[mode] = scores.balanced_accuracy
        self.confusion[mode] = scores.confusion

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ClientRecord:
        """Inverse of :meth:`to_dict`."""
        return ClientRecord(**data)

    def to_dict(self) -> dict[str, Any]:
        """Plain data; the battery fields are left out when None, so a run without a battery
        writes the same report as before they existed."""
        data = asdict(self)
        for name in BATTERY_FIELDS:
            if data[name] is None:
                del data[name]
        return data


@dataclass(frozen=True)
class ModeSummary:
    """Macro-F1 over users for one mode: mean, population std, min, max, users counted;
    the mean after int8 re-quantization (None without int8 figures) and the share of users
    whose F1 beats their No-Pers F1 (None for ``none``)."""

    mean: float
    std: float
    min: float
    max: float
    n_users: int
    mean_int8: float | None = None
    improved: float | None = None


def summarize(records: list[ClientRecord]) -> dict[str, ModeSummary]:
    """Per mode, the spread of the users' macro-F1 (modes in order of first appearance)."""
    modes: list[str] = []
    for r in records:
        modes += [m for m in r.f1 if m not in modes]
    out: dict[str, ModeSummary] = {}
    for mode in modes:
        values = [r.f1[mode] for r in records if mode in r.f1]
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        int8 = [r.f1_int8[mode] for r in records if mode in r.f1_int8]
        pairs = [(r.f1[mode], r.f1["none"]) for r in records if mode in r.f1 and "none" in r.f1]
        out[mode] = ModeSummary(
            mean,
            std,
            min(values),
            max(values),
            len(values),
            mean_int8=sum(int8) / len(int8) if int8 else None,
            improved=(
                sum(a > b for a, b in pairs) / len(pairs) if pairs and mode != "none" else None
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


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
            "summary": {m: _rounded(asdict(s)) for m, s in summarize(records).items()},
        }
        _write_atomic(self.json_path, json.dumps(payload, sort_keys=True, indent=1) + "\n")
        _write_atomic(self.csv_path, _csv(records))


def _csv(records: list[ClientRecord]) -> str:
    """One row per user: identity, sizes, then f1/accuracy/balanced accuracy per mode."""
    modes: list[str] = []
    for r in records:
        modes += [m for m in r.f1 if m not in modes]
    trained = [m for m in modes if any(m in r.energy_j for r in records)]
    columns = ["user", "fold", "status", "n_train", "n_test"]
    for metric in ("f1", "accuracy", "balanced_accuracy", "f1_int8"):
        columns += [f"{metric}_{m}" for m in modes]
    for metric in ("memory_bytes", "cycles", "seconds", "energy_j"):
        columns += [f"{metric}_{m}" for m in trained]
    columns += ["payload_bytes_down", "payload_bytes_up"]
    loads: list[str] = []
    for r in records:
        loads += [k for k in r.energy_j_by_load or {} if k not in loads]
    battery = any(r.soc_end is not None for r in records)
    if battery:
        columns += ["soc_end"] + [f"energy_j_{load}" for load in loads]
    columns += ["reason"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for r in records:
        row: list[Any] = [r.user, r.fold, r.status, r.n_train, r.n_test]
        for metric in (r.f1, r.accuracy, r.balanced_accuracy, r.f1_int8):
            row += [_rounded(metric[m]) if m in metric else "" for m in modes]
        memory = {m: v.get("total") for m, v in r.memory_bytes.items()}
        for metric in (memory, r.cycles, r.seconds, r.energy_j):
            row += [_rounded(metric[m]) if m in metric else "" for m in trained]
        row += [r.payload_bytes.get("down", ""), r.payload_bytes.get("up", "")]
        if battery:
            by_load = r.energy_j_by_load or {}
            row += ["" if r.soc_end is None else _rounded(r.soc_end)]
            row += [_rounded(by_load[k]) if k in by_load else "" for k in loads]
        row += [r.reason]
        writer.writerow(row)
    return buffer.getvalue()
