"""``fedhar compare``'s table: macro-F1 and the device cost of each mode, across runs.

:func:`read_run` reads one run's ``report.json`` through the fields every report format keeps
(the mode names under each client's ``modes``, the per-mode ``summary``), so that a report
that also keeps every round is read as well: a client's last round is the one compared.
:func:`compare_rows` gives one :class:`ModeRow` per run and mode; :func:`write_tables` writes
them as ``compare.csv`` and ``compare.md``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from fedhar.enums import MODES

COSTS = ("memory_bytes", "cycles", "seconds", "energy_j")
"""The device figures compared, each a mean over the users that report it: peak training
memory in bytes (the ``total`` of its categories), cycles, seconds and joules of one job."""


class CompareError(ValueError):
    """A run directory that cannot be compared: one line naming it and what is wrong."""


@dataclass(frozen=True)
class ModeRow:
    """One mode of one run: the run's label and scenario, the users scored, the mean and
    minimum macro-F1 over them, and the mean device cost of the mode's job (None where no
    user reports it; 0 for ``none``, which trains nothing), and the personalization gain:
    the mean over users scored in both of the mode's F1 minus the user's ``none`` F1 (None
    for ``none`` itself, or where no user has both)."""

    run: str
    scenario: str
    mode: str
    n_users: int
    f1_mean: float
    f1_min: float
    memory_bytes: float | None
    cycles: float | None
    seconds: float | None
    energy_j: float | None
    gain_vs_none: float | None = None


def read_run(run_dir: Path, label: str) -> list[ModeRow]:
    """The rows of the run in ``run_dir`` (its ``report.json``), modes in report order.

    Raises:
        CompareError: no readable report there, a sweep's report (whose runs are its
            ``T<window>/`` folders) or one without any scored mode.
    """
    path = run_dir / "report.json"
    report = _report(run_dir)
    records = [_last_round(c) for c in report.get("clients") or [] if isinstance(c, dict)]
    summary = report.get("summary") if isinstance(report.get("summary"), dict) else {}
    header = report.get("header") if isinstance(report.get("header"), dict) else {}
    scenario = str(header.get("scenario", ""))
    rows = []
    for mode in _modes(records, summary):
        row = _mode_row(label, scenario, mode, records, summary.get(mode))
        if row is not None:
            rows.append(row)
    if not rows:
        raise CompareError(f"{path}: expected scored modes, found none")
    return rows


def _report(run_dir: Path) -> dict[str, Any]:
    """The run's ``report.json`` as a JSON object.

    Raises:
        CompareError: no readable report there, or a sweep's report.
    """
    path = run_dir / "report.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CompareError(f"{path}: no such file, expected a fedhar run's output") from None
    except (OSError, ValueError) as exc:
        raise CompareError(
            f"{path}: expected a JSON report, got an unreadable file ({exc})"
        ) from None
    if not isinstance(report, dict):
        raise CompareError(f"{path}: expected a JSON object, got {type(report).__name__}")
    if report.get("sweep") and not report.get("clients"):
        raise CompareError(f"{path}: a sweep's report; compare its runs instead ({run_dir}/T*/)")
    return report


@dataclass(frozen=True)
class RunUsers:
    """One run's per-user side: its label, how its general models were pretrained
    (``centralized``, or ``federated`` with the report's ``pretrain`` totals: rounds run and
    bytes down and up over every fold, statistics exchange included, and their mean per
    fold), and each user's macro-F1 per mode (its last round's)."""

    run: str
    method: str
    pretrain: dict[str, float]
    f1: dict[str, dict[str, float]]


def read_users(run_dir: Path, label: str) -> RunUsers:
    """The per-user F1 and pretraining figures of the run in ``run_dir``.

    Raises:
        CompareError: as :func:`read_run`.
    """
    report = _report(run_dir)
    f1: dict[str, dict[str, float]] = {}
    for client in report.get("clients") or []:
        if not isinstance(client, dict):
            continue
        modes = _last_round(client)
        scores = {m: _number(v.get("f1")) for m, v in modes.items() if isinstance(v, dict)}
        f1[str(client.get("user"))] = {m: v for m, v in scores.items() if v is not None}
    block = report.get("pretrain") if isinstance(report.get("pretrain"), dict) else {}
    totals = block.get("totals") if isinstance(block.get("totals"), dict) else {}
    figures = {k: v for k, v in ((k, _number(v)) for k, v in totals.items()) if v is not None}
    return RunUsers(label, str(block.get("method", "centralized")), figures, f1)


USER_MODES = ("none", "tl", "full")
"""The modes of the per-user table: No-Pers., TL and Full."""


def write_user_tables(runs: list[RunUsers], out: Path) -> list[Path]:
    """Writes ``out/compare_users.csv`` (user, then each run's F1 of each of
    :data:`USER_MODES`, empty where absent) and ``out/compare_users.md`` (the same with a mean
    row, each column's over the users it scores, and each run's pretraining: method, rounds and
    bytes); returns both paths."""
    columns = [f"{r.run}:{m}" for r in runs for m in USER_MODES]
    users = sorted({u for r in runs for u in r.f1}, key=lambda u: (not u.isdigit(), len(u), u))
    table = {u: [r.f1.get(u, {}).get(m) for r in runs for m in USER_MODES] for u in users}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["user", *columns])
    for user, values in table.items():
        writer.writerow([user, *("" if v is None else v for v in values)])
    csv_path, md_path = out / "compare_users.csv", out / "compare_users.md"
    csv_path.write_text(buffer.getvalue(), encoding="utf-8")
    lines = ["| user | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 1)]
    for user, values in table.items():
        lines.append(f"| {user} | " + " | ".join(_cell(v, 1.0, ".3f") for v in values) + " |")
    means = [_mean(list(col)) for col in zip(*table.values(), strict=True)] if table else []
    lines.append("| mean | " + " | ".join(_cell(v, 1.0, ".3f") for v in means) + " |")
    lines += ["", "| run | pretraining | rounds (all folds) | rounds per fold | MB down | MB up |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for r in runs:
        p = r.pretrain
        lines.append(
            f"| {r.run} | {r.method} | {_cell(p.get('rounds_run'), 1.0, '.0f')} | "
            f"{_cell(p.get('mean_rounds_run_per_fold'), 1.0, '.1f')} | "
            f"{_cell(p.get('bytes_down'), 1e-6, '.1f')} | {_cell(p.get('bytes_up'), 1e-6, '.1f')} |"
        )
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [csv_path, md_path]


def _last_round(client: dict[str, Any]) -> dict[str, Any]:
    """The client's per-mode figures of its last round: a report that keeps every round
    holds them in ``rounds`` (the last one marked, or the last listed); else the client's
    own ``modes``."""
    rounds = [r for r in client.get("rounds") or [] if isinstance(r, dict) and "modes" in r]
    marked = [r for r in rounds if r.get("last") or r.get("final")]
    chosen = marked[-1] if marked else rounds[-1] if rounds else client
    modes = chosen.get("modes")
    return modes if isinstance(modes, dict) else {}


def _modes(records: list[dict[str, Any]], summary: dict[str, Any]) -> list[str]:
    """Every mode named in the records or the summary: the known ones in report order, then
    any other in name order."""
    named = set(summary) | {m for r in records for m in r}
    known = [m.value for m in MODES if m.value in named]
    return known + sorted(named - set(known))


def _mode_row(
    label: str,
    scenario: str,
    mode: str,
    records: list[dict[str, Any]],
    summary: Any,
) -> ModeRow | None:
    figures = [r[mode] for r in records if isinstance(r.get(mode), dict)]
    f1 = [v for v in (_number(f.get("f1")) for f in figures) if v is not None]
    mean = _number(summary.get("mean")) if isinstance(summary, dict) else None
    low = _number(summary.get("min")) if isinstance(summary, dict) else None
    if mean is None or low is None:
        if not f1:
            return None
        mean, low = sum(f1) / len(f1), min(f1)
    n_users = summary.get("n_users") if isinstance(summary, dict) else None
    costs = {name: _mean([_cost(f, name) for f in figures]) for name in COSTS}
    return ModeRow(
        label, scenario, mode, int(n_users) if isinstance(n_users, int) else len(f1),
        mean, low, **costs, gain_vs_none=_gain(records, mode),
    )  # fmt: skip


def _gain(records: list[dict[str, Any]], mode: str) -> float | None:
    """Mean over the users scored in ``mode`` and ``none`` of their F1 difference."""
    if mode == "none":
        return None
    pairs = [
        (_number(r[mode].get("f1")), _number(r["none"].get("f1")))
        for r in records
        if isinstance(r.get(mode), dict) and isinstance(r.get("none"), dict)
    ]
    return _mean([a - b for a, b in pairs if a is not None and b is not None])


def _cost(figures: dict[str, Any], name: str) -> float | None:
    value = figures.get(name)
    if name == "memory_bytes" and isinstance(value, dict):
        value = value.get("total")
    return _number(value)


def _number(value: Any) -> float | None:
    """``value`` as a finite float; None for anything else (missing, null, text, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def run_labels(run_dirs: list[Path]) -> list[str]:
    """A short label per run: its folder's name, or the whole path where two names clash."""
    names = [d.resolve().name or str(d) for d in run_dirs]
    return [n if names.count(n) == 1 else str(d) for n, d in zip(names, run_dirs, strict=True)]


def compare_rows(run_dirs: list[Path]) -> list[ModeRow]:
    """The rows of every run, in the order given; raises :class:`CompareError` for the first
    run that cannot be read."""
    rows: list[ModeRow] = []
    for run_dir, label in zip(run_dirs, run_labels(run_dirs), strict=True):
        rows += read_run(run_dir, label)
    return rows


def write_tables(rows: list[ModeRow], out: Path) -> list[Path]:
    """Writes ``out/compare.csv`` (one row per run and mode, costs empty where absent) and
    ``out/compare.md`` (the same as a Markdown table); returns both paths."""
    columns = [f.name for f in fields(ModeRow)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else v for v in asdict(row).values()])
    csv_path, md_path = out / "compare.csv", out / "compare.md"
    csv_path.write_text(buffer.getvalue(), encoding="utf-8")
    heads = ["run", "scenario", "mode", "users", "F1 mean", "F1 min", "memory (kB)",
             "cycles (M)", "seconds", "joules", "gain vs none"]  # fmt: skip
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for r in rows:
        cells = [r.run, r.scenario, r.mode, str(r.n_users), f"{r.f1_mean:.3f}", f"{r.f1_min:.3f}",
                 _cell(r.memory_bytes, 1e-3, ".1f"), _cell(r.cycles, 1e-6, ".1f"),
                 _cell(r.seconds, 1.0, ".2f"), _cell(r.energy_j, 1.0, ".3f"),
                 _cell(r.gain_vs_none, 1.0, "+.3f")]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [csv_path, md_path]


def _cell(value: float | None, scale: float, spec: str) -> str:
    return "-" if value is None else format(value * scale, spec)
