"""WISDM 2019 loader: small written files (fast and line-by-line paths) and the real data."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from fedhar.data.paths import DatasetMissingError
from fedhar.data.preprocess import make_windows
from fedhar.data.registry import load_dataset
from fedhar.data.types import HarDataset
from fedhar.data.wisdm2019 import load_wisdm2019, parse_file

PHONE_SUBJECTS = [
    "1600", "1604", "1606", "1607", "1609", "1611", "1612", "1615", "1617", "1618", "1622",
    "1624", "1626", "1630", "1631", "1632", "1634", "1636", "1637", "1638", "1639", "1640",
]  # fmt: skip


def _lines(subject: int, code: str, n: int, t0: int, interval_ns: int) -> list[str]:
    return [
        f"{subject},{code},{t0 + i * interval_ns},{0.1 * i:.4f},9.80665,-{0.01 * i:.5f};"
        for i in range(n)
    ]


def _write(folder: Path, subject: int, lines: list[str], gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = ("\n".join(lines) + "\n").encode()
    name = f"data_{subject}_accel_phone.txt"
    path = folder / (name + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


@pytest.fixture()
def small(tmp_path: Path, tmp_cache: Path) -> Path:
    folder = tmp_path / "wisdm_2019" / "raw" / "phone" / "accel"
    _write(
        folder,
        1700,
        _lines(1700, "A", 120, 10**12, 50_000_000) + _lines(1700, "B", 80, 2 * 10**12, 50_000_000),
    )
    _write(folder, 1701, _lines(1701, "A", 150, 5 * 10**12, 40_000_000), gz=False)  # 25 Hz
    return tmp_path


def test_small_files_load_with_rate_check_and_missing_activities(small: Path) -> None:
    ds = load_wisdm2019(small)
    assert ds.users == ["1700", "1701"]
    assert ds.classes == ["walking", "jogging", "stairs", "sitting", "standing"]
    assert ds.report.records_ok == 350 and ds.report.records_skipped == 0
    notes = "\n".join(ds.report.notes)
    assert "subject 1701: median interval 40.0 ms (25.00 Hz); resampled to 20 Hz" in notes
    assert "subject 1700: no activity C (stairs), D (sitting)" in notes
    seg = [s for s in ds.segments if s.user == "1701"][0]
    assert seg.signal.shape[0] == int(149 * 0.04 * 20) + 1
    np.testing.assert_allclose(np.diff(seg.t), 0.05)


def test_malformed_lines_are_skipped_with_line_numbers(small: Path) -> None:
    folder = small / "wisdm_2019" / "raw" / "phone" / "accel"
    lines = _lines(1702, "A", 40, 10**12, 50_000_000)
    lines[4] = "1702,A,1000200000000,0.5,9.8;"  # 5 fields
    lines[9] = "1702,N,1000450000000,0.5,9.8,1.0;"  # no activity N
    lines[14] = "1702,A,1000700000000,0.5,x9.8,1.0;"  # non-numeric y
    lines[19] = "1703,A,1000950000000,0.5,9.8,1.0;"  # wrong subject for the file
    _write(folder, 1702, lines)
    ds = load_wisdm2019(small, users=["1702"])
    assert ds.report.records_ok == 36
    assert [(i.line, i.reason.split(" ")[0:2]) for i in ds.report.issues][:3] == [
        (5, ["expected", "6"]),
        (10, ["field", "2"]),
        (15, ["field", "5"]),
    ]
    assert ds.report.issues[3].line == 20 and "1702" in ds.report.issues[3].reason
    assert all(i.file.endswith("data_1702_accel_phone.txt.gz") for i in ds.report.issues)


def test_fast_and_line_by_line_parsers_agree(small: Path) -> None:
    folder = small / "wisdm_2019" / "raw" / "phone" / "accel"
    good = _lines(1704, "D", 30, 10**12, 50_000_000)
    fast = parse_file(_write(folder / "fast", 1704, good), use_cache=False)
    slow = parse_file(_write(folder / "slow", 1704, good + [""]), use_cache=False)
    assert fast["issue_line"].size == 0
    for key in ("subject", "code", "ts", "xyz", "line"):
        np.testing.assert_array_equal(fast[key], slow[key])


def test_class_mapping_merges_codes(small: Path) -> None:
    ds = load_wisdm2019(small, classes=["moving=A+B"])
    assert ds.classes == ["moving"]
    assert {s.label for s in ds.segments} == {0}
    with pytest.raises(ValueError, match="class 'N'"):
        load_wisdm2019(small, classes=["N"])


def test_missing_folder_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetMissingError) as info:
        load_dataset("wisdm2019", tmp_path, device="watch")
    message = str(info.value)
    assert str(tmp_path / "wisdm_2019" / "raw" / "watch" / "accel") in message
    assert "data_<subject>_accel_watch.txt or .txt.gz" in message and "UCI" in message


@pytest.mark.realdata
def test_real_phone_subjects_classes_and_counts(wisdm2019_phone: HarDataset) -> None:
    ds = wisdm2019_phone
    assert ds.users == PHONE_SUBJECTS
    assert ds.classes == ["walking", "jogging", "stairs", "sitting", "standing"]
    assert ds.report.records_ok == 1_433_489 and ds.report.records_skipped == 0
    assert len(ds.report.files) == 22
    notes = set(ds.report.notes)
    assert "subject 1607: no activity J (pasta)" in notes
    assert "subject 1609: no activity B (jogging)" in notes
    assert "subject 1618: no activity O (catch)" in notes
    assert not any(n.startswith("subject 1600: no activity") for n in notes)
    assert any(n.startswith("subject 1607: median interval 39.9 ms") for n in notes)
    assert sum("resampled" in n for n in notes) == 1
    jogging = {s.user for s in ds.segments if ds.classes[s.label] == "jogging"}
    assert "1609" not in jogging and len(jogging) == 21
    assert len(ds.segments) == 22 * 5 - 1


@pytest.mark.realdata
def test_real_1607_is_20_hz_after_resampling(wisdm2019_phone: HarDataset) -> None:
    for seg in [s for s in wisdm2019_phone.segments if s.user == "1607"]:
        np.testing.assert_allclose(np.diff(seg.t), 0.05, atol=1e-9)
        assert 3500 <= seg.signal.shape[0] <= 3700  # about 3 minutes at 20 Hz


@pytest.mark.realdata
def test_real_100x3_windows_per_user(wisdm2019_phone: HarDataset) -> None:
    ws = make_windows(wisdm2019_phone, 100, 50)
    assert ws.x.shape[1:] == (3, 100)
    users, counts = np.unique(ws.users, return_counts=True)
    per_user = dict(zip(users.tolist(), counts.tolist(), strict=True))
    assert per_user["1609"] == 280  # 4 activities × 70
    assert per_user["1600"] == 350
    assert len(ws) == 7763
