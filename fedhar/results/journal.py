"""Append-only JSONL journals, and the run's per-client results written through one.

A :class:`Journal` is one file: a header line carrying the identity of the work it records
(scenario hash, seed, ...), then one JSON object per line, each appended, flushed and fsync'd
before :meth:`Journal.append` returns, so an interrupted command loses nothing. On resume every
complete line is read back; only a torn last line (an append cut short) is dropped, and
truncated away; any other unreadable line is an error naming the file and the line. A journal
written for another identity is never resumed, and without resume an existing journal is
replaced only where the caller says so. Every command that resumes keeps one: ``fedhar run``
(``OUT/clients.jsonl``, :class:`ResultLog`), ``fedhar study`` (``DIR/rows.jsonl``) and
``fedhar adaptive`` (``OUT/grid.jsonl``).

``OUT/clients.jsonl`` holds one client record (:meth:`ClientRecord.to_dict
<fedhar.results.record.ClientRecord.to_dict>`) per (round, user) outcome, appended and flushed
as soon as the reply is in, so an interrupted run loses nothing; :meth:`ResultLog.resumed` tells
a resumed run which (round, user) pairs it can skip (every logged one but the failed ones). With
aggregation, the accepted updates of a round are kept beside it
(``OUT/updates/round-<r>/<user>.npz``, the received and the personalized weights) so that a
resumed run aggregates exactly what the first run would have.
With a battery, each outcome's device state is kept the same way
(``OUT/devices/round-<r>/<user>.json``, written before its row), so a resumed run hands every
device the state it replied with, on any engine (:mod:`fedhar.wearable.federation`). A battery
run with aggregation also keeps, per round, the F1 of the model the server holds for each user
and which users have not yet joined (``OUT/global/round-<r>.json``).
When the ServerApp has run its last round it writes ``OUT/federation.done``
(:meth:`ResultLog.mark_ended`); the engines clear it before a run starts and check it after
(:func:`federation_ended`), so a ServerApp that died mid-run cannot pass for a finished one,
even where its engine (a deployment's ``flwr run``) reports success.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fedhar.enums import Status
from fedhar.errors import InputError
from fedhar.files import atomic_open
from fedhar.results.record import ClientOutcome

if TYPE_CHECKING:
    from fedhar.schema.scenario import Scenario

CLIENTS_FILE = "clients.jsonl"
ENDED_FILE = "federation.done"
"""Written in ``OUT`` by the ServerApp once its last round is logged."""


JOURNAL_FORMAT = 1
"""Version of the header line ``{"fedhar_journal": JOURNAL_FORMAT, "identity": {...}}``."""


class JournalError(InputError):
    """A journal that cannot be opened as asked (corrupt, written for another run, or in the
    way of a new one); the message is one line naming the file."""


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as plain JSON data (``json.dumps``' fallback)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"a journal row holds plain JSON data, got {type(value).__name__}")


def _line(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(data, sort_keys=True, default=_plain) + "\n").encode("utf-8")


def _object(raw: bytes) -> dict[str, Any] | None:
    """The JSON object on one line, or None when the line holds none."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _describe(value: Any) -> str:
    """A short form of one value for a one-line message."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 24 else text[:16] + "…"


@dataclass
class _Contents:
    """A journal file as read: its header's identity (None: no complete header), its rows,
    and the bytes its complete lines take (a torn last line lies after them)."""

    identity: dict[str, Any] | None
    rows: list[dict[str, Any]]
    complete_bytes: int


def _read(path: Path) -> _Contents:
    *lines, tail = path.read_bytes().split(b"\n")  # ``tail``: what follows the last newline
    if tail.strip():
        last = len(lines)  # an unterminated last line: an append cut short, never read
    else:
        last = max((i for i, raw in enumerate(lines) if raw.strip()), default=-1)
    contents = _Contents(None, [], 0)
    offset = 0
    for index, raw in enumerate(lines):
        offset += len(raw) + 1
        if not raw.strip():
            contents.complete_bytes = offset
            continue
        value = _object(raw)
        if value is None:
            if index == last:
                break  # a torn last line
            raise JournalError(
                f"{path}: line {index + 1}: not a JSON object; only a torn last line is "
                "dropped on resume, so fix or delete this line"
            )
        if contents.identity is None:
            if value.get("fedhar_journal") != JOURNAL_FORMAT or "identity" not in value:
                raise JournalError(
                    f"{path}: line {index + 1}: expected the journal header "
                    f'{{"fedhar_journal": {JOURNAL_FORMAT}, "identity": ...}}, got '
                    f"{_describe(value)} (written by an older fedhar?); start in another --out"
                )
            contents.identity = value["identity"]
        else:
            contents.rows.append(value)
        contents.complete_bytes = offset
    return contents


def identity_sha256(data: Any) -> str:
    """sha256 hex of ``data``'s canonical JSON (sorted keys): a journal identity's digest of
    a scenario or a configuration."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()


def scenario_identity(scenario: Scenario) -> dict[str, Any]:
    """A scenario's part of a journal identity: its name, the sha256 of its validated content
    and its seed."""
    return {
        "scenario": scenario.name,
        "scenario_sha256": identity_sha256(scenario.identity_dump()),
        "seed": scenario.seed,
    }


def journal_identity(path: str | Path) -> dict[str, Any] | None:
    """The identity in the header of the journal at ``path``; None when there is no file or
    no complete header. Raises :class:`JournalError` on a corrupt line."""
    path = Path(path)
    if not path.is_file():
        return None
    return _read(path).identity


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of the journal at ``path`` (a torn last line is left out; the file is not
    changed). Raises :class:`JournalError` on a corrupt line."""
    return _read(Path(path)).rows


class Journal:
    """An append-only JSONL file of plain JSON rows, fsync'd one line at a time.

    Args:
        path: the journal file (its folder is created).
        identity: plain JSON data naming what the journal records (scenario hash, seed, ...);
            stored in the header line, and a resumed journal must carry an equal one.
        resume: keep the rows of an existing journal (dropping a torn last line).
        replace: without ``resume``, start afresh over an existing journal; otherwise an
            existing journal is an error (``use --resume``).
        keep_appended: also keep every appended row in :attr:`rows` (``False``: only the rows
            read back on resume are kept, for a caller that never reads its own rows back).

    Attributes:
        rows: the rows read back on resume, then every appended one (with ``keep_appended``).

    Raises:
        JournalError: a corrupt line (not a torn last one), a journal of another identity,
            or an existing journal without ``resume`` or ``replace``.
    """

    def __init__(
        self,
        path: str | Path,
        identity: Mapping[str, Any],
        *,
        resume: bool,
        replace: bool = False,
        keep_appended: bool = True,
    ) -> None:
        self.path = Path(path)
        self.keep_appended = keep_appended
        self.identity: dict[str, Any] = json.loads(_line(identity))
        self.rows: list[dict[str, Any]] = []
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if exists and resume:
            contents = _read(self.path)
            if contents.identity is not None:
                self._check(contents.identity)
                self.rows = contents.rows
                if contents.complete_bytes < self.path.stat().st_size:
                    self._sync("r+b", size=contents.complete_bytes)
                return
        elif exists and not replace:
            raise JournalError(
                f"{self.path}: holds the journal of an earlier run; use --resume to continue "
                "it, or another --out"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._sync("wb", _line({"fedhar_journal": JOURNAL_FORMAT, "identity": self.identity}))

    def append(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Writes ``row`` as one line, flushed and fsync'd; returns it as a resume reads it
        back (plain JSON data)."""
        line = _line(row)
        self._sync("ab", line)
        kept: dict[str, Any] = json.loads(line)
        if self.keep_appended:
            self.rows.append(kept)
        return kept

    def _check(self, found: dict[str, Any]) -> None:
        keys = sorted(set(found) | set(self.identity))
        differ = [k for k in keys if found.get(k) != self.identity.get(k)]
        if differ:
            what = "; ".join(
                f"{k} {_describe(found.get(k))} there, {_describe(self.identity.get(k))} now"
                for k in differ
            )
            raise JournalError(
                f"{self.path}: cannot resume, written for another run ({what}); "
                "start it in another --out"
            )

    def _sync(self, mode: str, data: bytes = b"", size: int | None = None) -> None:
        """Opens the file in ``mode``, cuts it to ``size`` bytes when given, writes ``data``,
        and flushes and fsyncs it before returning."""
        with self.path.open(mode) as fh:
            if size is not None:
                fh.truncate(size)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


class ResultLog:
    """The run's journal of outcomes, ``OUT/clients.jsonl`` under ``out_dir``.

    Args:
        out_dir: the run's output directory (created if needed).
        resume: keep the outcomes already logged; otherwise an existing log is replaced
            (``fedhar run`` without ``--resume`` starts afresh, and says so).
        identity: the run's identity (scenario name, hash and seed); a resumed log must
            have been written for an equal one.

    Raises:
        JournalError: on resume, a corrupt line or a log of another run.
    """

    def __init__(
        self, out_dir: str | Path, resume: bool, identity: Mapping[str, Any] | None = None
    ) -> None:
        self.out_dir = Path(out_dir)
        # Only the rows of the run this one resumes are kept: the server never reads back what
        # it appends, and 10,000 clients × 3 rounds of rows are about 200 MB in memory.
        self.journal = Journal(
            self.out_dir / CLIENTS_FILE,
            identity or {},
            resume=resume,
            replace=True,
            keep_appended=False,
        )
        self.path = self.journal.path
        # The latest row of each (round, user), so a lookup per client and round is O(1).
        self._resumed: dict[tuple[int, str], dict[str, Any]] = {
            (row["round"], row["user"]): row for row in self.journal.rows
        }

    def resumed(self, round_number: int, user: str) -> dict[str, Any] | None:
        """The outcome of ``user`` in ``round_number`` that the run this one resumes logged
        (the latest one), if any and if it did not fail: a ``failed`` outcome (the client
        raised, its node died or never answered) is tried again, while ``declined``,
        ``rejected`` and ``skipped`` are decisions, kept."""
        row = self._resumed.get((round_number, user))
        return None if row is None or row["status"] == Status.FAILED else row

    def append(self, outcome: ClientOutcome) -> dict[str, Any]:
        """Logs ``outcome`` (flushed and synced to disk); keeps its update and its device's
        state when it has them (before the row, so that a logged row's files exist)."""
        row = outcome.record.to_dict()
        if outcome.device is not None:
            path = device_path(self.out_dir, outcome.record.round, outcome.record.user)
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(path) as fh:
                fh.write(outcome.device.encode("utf-8"))
        if outcome.update is not None and outcome.received is not None:
            path = self._update_path(outcome.record.round, outcome.record.user)
            path.parent.mkdir(parents=True, exist_ok=True)
            arrays = {f"update/{k}": v for k, v in outcome.update.items()}
            arrays.update({f"received/{k}": v for k, v in outcome.received.items()})
            with atomic_open(path) as fh:
                np.savez(fh, **arrays)
        return self.journal.append(row)

    def load_update(
        self, round_number: int, user: str
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
        """The (received, update) weights kept for ``user`` in ``round_number``, if any."""
        return load_kept_update(self.out_dir, round_number, user)

    def load_device(self, round_number: int, user: str) -> str | None:
        """The device state (JSON text) kept for ``user`` in ``round_number``, if any."""
        path = device_path(self.out_dir, round_number, user)
        return path.read_text(encoding="utf-8") if path.exists() else None

    def save_global(
        self, round_number: int, f1_by_user: Mapping[str, float], unjoined: list[str]
    ) -> None:
        """Keeps, after ``round_number``, the macro-F1 of the model the server holds for each
        user (user → F1) and the users not yet joined (rewritten whole; a resumed run writes
        the same)."""
        path = global_path(self.out_dir, round_number)
        data = {"f1": dict(f1_by_user), "unjoined": list(unjoined)}
        with atomic_open(path) as fh:
            fh.write(json.dumps(data, sort_keys=True).encode("utf-8"))

    def mark_ended(self, rounds: int) -> None:
        """Records that the federation ran its ``rounds`` rounds to the end."""
        with atomic_open(self.out_dir / ENDED_FILE) as fh:
            fh.write(json.dumps({"rounds": rounds}).encode("utf-8"))

    def _update_path(self, round_number: int, user: str) -> Path:
        return update_path(self.out_dir, round_number, user)


def clear_ended(out_dir: str | Path) -> None:
    """Forgets an earlier run's end mark in ``out_dir`` (before a run or a resume starts)."""
    (Path(out_dir) / ENDED_FILE).unlink(missing_ok=True)


def federation_ended(out_dir: str | Path) -> bool:
    """Whether the ServerApp of the run in ``out_dir`` ran its last round
    (:meth:`ResultLog.mark_ended` since the last :func:`clear_ended`)."""
    return (Path(out_dir) / ENDED_FILE).exists()


def global_path(out_dir: Path, round_number: int) -> Path:
    """Where a run keeps, after ``round_number``, the F1 of the model held for each user."""
    return Path(out_dir) / "global" / f"round-{round_number}.json"


def load_globals(out_dir: Path) -> dict[int, dict[str, Any]]:
    """round → ``{"f1": {user: F1}, "unjoined": [user, ...]}`` of every
    ``OUT/global/round-<r>.json`` of a run."""
    out: dict[int, dict[str, Any]] = {}
    for path in (Path(out_dir) / "global").glob("round-*.json"):
        out[int(path.stem.split("-")[1])] = json.loads(path.read_text(encoding="utf-8"))
    return dict(sorted(out.items()))


def update_path(out_dir: Path, round_number: int, user: str) -> Path:
    """Where a run keeps ``user``'s accepted update of ``round_number``."""
    return Path(out_dir) / "updates" / f"round-{round_number}" / f"{user}.npz"


def device_path(out_dir: Path, round_number: int, user: str) -> Path:
    """Where a run keeps the state of ``user``'s device at the end of ``round_number``."""
    return Path(out_dir) / "devices" / f"round-{round_number}" / f"{user}.json"


def load_kept_update(
    out_dir: Path, round_number: int, user: str
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
    """The (received, update) weights a run in ``out_dir`` kept for ``user`` in
    ``round_number``, if any."""
    path = update_path(out_dir, round_number, user)
    if not path.exists():
        return None
    with np.load(path) as z:
        received = {k[len("received/") :]: z[k] for k in z.files if k.startswith("received/")}
        update = {k[len("update/") :]: z[k] for k in z.files if k.startswith("update/")}
    return received, update
