"""``fedhar run --jobs N``: folds pretrained and clients run in parallel processes give the same
report, journal and cache entries as one process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedhar.cli import main

from .conftest import write_scenario


def test_jobs_do_not_change_the_report_or_the_cached_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = write_scenario(tmp_path, n_users=4, modes="[none, tl]")
    reports, entries = {}, {}
    for jobs in (1, 2):
        cache = tmp_path / f"cache-{jobs}"
        out = tmp_path / f"out-{jobs}"
        monkeypatch.setenv("FEDHAR_CACHE_DIR", str(cache))
        assert main(["run", str(scenario), "--out", str(out), "--jobs", str(jobs)]) == 0
        run = json.loads((out / "run.json").read_text())
        assert (run["jobs"], run["pretrain_cache_misses"], run["pretrain_cache_hits"]) == (
            jobs,
            4,
            0,
        )
        reports[jobs] = b"".join(
            (out / name).read_bytes() for name in ("report.json", "report.csv", "clients.jsonl")
        )
        entries[jobs] = {p.name: p.read_bytes() for p in (cache / "pretrain").glob("*.pt")}
    assert reports[1] == reports[2]
    report = json.loads((tmp_path / "out-1" / "report.json").read_text())
    assert [c["user"] for c in report["clients"]] == ["1", "2", "3", "4"]
    assert len(entries[1]) == 4
    assert entries[1] == entries[2]
    assert not list((tmp_path / "cache-2" / "pretrain").glob("*.tmp"))


def test_jobs_below_one_is_an_argument_error(tmp_path: Path, capsys) -> None:
    scenario = write_scenario(tmp_path)
    assert main(["run", str(scenario), "--out", str(tmp_path / "out"), "--jobs", "0"]) == 2
    assert "--jobs: expected an integer >= 1, got 0" in capsys.readouterr().err
