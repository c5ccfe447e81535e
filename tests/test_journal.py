"""The one resume journal: fsync'd appends, a torn last line dropped, a corrupt line reported
with its file and line, and a journal of another run refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from fedhar.results.journal import Journal, JournalError, read_rows

IDENTITY = {"scenario": "s", "scenario_sha256": "ab" * 32, "seed": 1}


def _journal(path: Path, rows: int) -> Journal:
    journal = Journal(path, IDENTITY, resume=False)
    for i in range(rows):
        journal.append({"i": i, "value": i / 3})
    return journal


def test_every_append_is_one_line_synced_to_disk(tmp_path: Path, monkeypatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    journal = _journal(tmp_path / "j.jsonl", 0)
    assert len(synced) == 1  # the header
    row = journal.append({"b": np.float64(0.5), "a": [np.int64(2)], "t": (1, 2)})
    assert len(synced) == 2
    assert row == {"a": [2], "b": 0.5, "t": [1, 2]}  # as a resume reads it back
    lines = (tmp_path / "j.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"fedhar_journal": 1, "identity": IDENTITY}
    assert lines[1] == '{"a": [2], "b": 0.5, "t": [1, 2]}'


def test_a_torn_last_line_is_dropped_and_truncated_away(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _journal(path, 3)
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"i": 3, "val')  # killed mid-append
    assert read_rows(path) == [{"i": i, "value": i / 3} for i in range(3)]
    resumed = Journal(path, IDENTITY, resume=True)
    assert [r["i"] for r in resumed.rows] == [0, 1, 2]
    assert path.read_bytes() == whole
    resumed.append({"i": 3, "value": 1.0})
    assert [r["i"] for r in Journal(path, IDENTITY, resume=True).rows] == [0, 1, 2, 3]


def test_a_complete_but_unreadable_last_line_is_torn_too(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _journal(path, 2)
    whole = path.read_bytes()
    path.write_bytes(whole + b"\x00\x00\x00\n\n")
    assert len(Journal(path, IDENTITY, resume=True).rows) == 2
    assert path.read_bytes() == whole


def test_a_torn_header_starts_the_journal_afresh(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"fedhar_jour')
    assert Journal(path, IDENTITY, resume=True).rows == []
    assert json.loads(path.read_text())["identity"] == IDENTITY


def test_a_corrupt_line_before_the_last_is_an_error_naming_file_and_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    _journal(path, 3)
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = '{"i": 1, "value": \n'  # line 3: the second row
    path.write_text("".join(lines))
    before = path.read_bytes()
    with pytest.raises(JournalError) as err:
        Journal(path, IDENTITY, resume=True)
    message = str(err.value)
    assert message.startswith(f"{path}: line 3: not a JSON object")
    assert "\n" not in message
    assert path.read_bytes() == before  # nothing is lost
    with pytest.raises(JournalError, match="line 3"):
        read_rows(path)


def test_resuming_a_journal_of_another_run_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _journal(path, 2)
    before = path.read_bytes()
    other = {**IDENTITY, "scenario_sha256": "cd" * 32, "seed": 2}
    with pytest.raises(JournalError) as err:
        Journal(path, other, resume=True)
    message = str(err.value)
    assert message.startswith(f"{path}: cannot resume, written for another run")
    assert "seed 1 there, 2 now" in message and "scenario_sha256 abab" in message
    assert "\n" not in message
    assert path.read_bytes() == before


def test_a_file_without_a_header_is_not_resumed(tmp_path: Path) -> None:
    path = tmp_path / "clients.jsonl"
    path.write_text('{"round": 1, "user": "a"}\n')
    with pytest.raises(JournalError, match=r"line 1: expected the journal header"):
        Journal(path, IDENTITY, resume=True)


def test_without_resume_an_existing_journal_is_kept_unless_replaced(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _journal(path, 2)
    before = path.read_bytes()
    with pytest.raises(JournalError, match="use --resume"):
        Journal(path, IDENTITY, resume=False)
    assert path.read_bytes() == before
    assert Journal(path, IDENTITY, resume=False, replace=True).rows == []
    assert read_rows(path) == []
