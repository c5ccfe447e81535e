"""WISDM v1.1 raw parser on a hand-written fixture in the raw file's exact format.

``fixtures/WISDM_ar_v1.1_raw_quirks.txt``, line by line:

- 1-4, 11: well-formed records of user 33 Jogging;
- 5 and 17: blank lines;
- 6: a record ending in ``,;`` (kept);
- 7: two records on one physical line (both kept);
- 8: a record with 5 fields (skipped);
- 9: a non-numeric y value ``1l.5`` (skipped);
- 10: timestamp 0 (skipped);
- 12: a timestamp earlier than line 11's in the same run (kept; a new segment starts);
- 13: continues that new segment;
- 14: an unknown activity ``Sleeping`` (skipped);
- 15: an empty x field (skipped);
- 16: the README's two-records line, user 30 Standing then user 34 Walking;
- 18-19: user 34 Walking then Sitting;
- 20-21: user 1 Walking; line 21 is the last line and has no ``;`` and no newline (kept).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from fedhar.data.paths import (
    WISDM_V11_MEMBER,
    ChecksumError,
    DatasetMissingError,
    fetch_wisdm_v11,
    sha256_file,
    verify_sha256,
)
from fedhar.data.registry import load_dataset
from fedhar.data.types import HarDataset
from fedhar.data.wisdm_v11 import load_wisdm_v11, parse_lines

from .conftest import FIXTURES

QUIRKS = FIXTURES / "WISDM_ar_v1.1_raw_quirks.txt"


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "wisdm_v1.1"
    folder.mkdir(parents=True)
    return folder


def _tar_gz(dest: Path, member: str, payload: bytes) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return dest


@pytest.fixture()
def quirks(tmp_path: Path, tmp_cache: Path) -> HarDataset:
    folder = _folder(tmp_path)
    (folder / "WISDM_ar_v1.1_raw.txt").write_bytes(QUIRKS.read_bytes())
    return load_wisdm_v11(tmp_path / "data")


def test_counts_of_kept_and_skipped_records(quirks: HarDataset) -> None:
    assert quirks.report.records_ok == 16
    assert quirks.report.records_skipped == 5
    assert [i.line for i in quirks.report.issues] == [8, 9, 10, 14, 15]
    assert all(i.file.endswith("WISDM_ar_v1.1_raw.txt") for i in quirks.report.issues)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (8, ["6 comma-separated fields", "found 5"]),
        (9, ["'y'", "'1l.5'", "not a number"]),
        (10, ["'timestamp'", "0"]),
        (14, ["'activity'", "'Sleeping'"]),
        (15, ["'x'", "empty"]),
    ],
)
def test_malformed_record_is_reported_with_line_field_and_reason(
    quirks: HarDataset, line: int, words: list[str]
) -> None:
    issue = next(i for i in quirks.report.issues if i.line == line)
    for word in words:
        assert word in issue.reason


def test_blank_multi_record_trailing_comma_and_unterminated_lines_are_counted(
    quirks: HarDataset,
) -> None:
    notes = "\n".join(quirks.report.notes)
    assert "2 blank lines" in notes
    assert "2 lines held more than one record" in notes
    assert "1 records ended in ',;'" in notes
    assert "1 records had no terminating ';'" in notes


def test_two_records_on_one_line_are_both_kept_even_across_users(quirks: HarDataset) -> None:
    by_user = {u: [s for s in quirks.segments if s.user == u] for u in quirks.users}
    assert quirks.users == ["1", "30", "33", "34"]
    standing = by_user["30"][0]
    assert quirks.classes[standing.label] == "standing"
    np.testing.assert_allclose(standing.signal, [[-1.8, 9.28, 3.79]], rtol=1e-6)
    walking34 = by_user["34"][0]
    assert quirks.classes[walking34.label] == "walking"
    assert walking34.signal.shape == (2, 3)
    assert walking34.source.endswith(":16-18")


def test_trailing_comma_record_keeps_its_z_value(quirks: HarDataset) -> None:
    jog = [s for s in quirks.segments if s.user == "33"][0]
    np.testing.assert_allclose(jog.signal[4], [-1.1849703, 12.108489, 7.205164], rtol=1e-6)


def test_non_monotonic_timestamp_starts_a_new_segment_and_is_noted(quirks: HarDataset) -> None:
    jog = [s for s in quirks.segments if s.user == "33"]
    assert [s.signal.shape[0] for s in jog] == [8, 2]
    assert jog[1].source.endswith(":12-13")
    assert np.all(np.diff(jog[0].t) > 0) and np.all(np.diff(jog[1].t) > 0)
    np.testing.assert_allclose(jog[1].t, [0.0, 0.05])
    assert any("did not increase" in n and "12" in n for n in quirks.report.notes)


def test_unterminated_last_record_is_kept(quirks: HarDataset) -> None:
    user1 = [s for s in quirks.segments if s.user == "1"][0]
    np.testing.assert_allclose(user1.signal[-1], [0.2, 9.7, 0.1], rtol=1e-6)
    np.testing.assert_allclose(user1.t, [0.0, 0.05])


def test_parse_lines_on_an_empty_file() -> None:
    arrays = parse_lines([])
    assert arrays["user"].shape == (0,) and arrays["xyz"].shape == (0, 3)


def test_plain_gz_and_official_tar_give_the_same_data(tmp_path: Path, tmp_cache: Path) -> None:
    payload = QUIRKS.read_bytes()
    loaded = []
    for index, name in enumerate(["plain", "gz", "tar"]):
        folder = _folder(tmp_path / name)
        if name == "plain":
            (folder / "WISDM_ar_v1.1_raw.txt").write_bytes(payload)
        elif name == "gz":
            (folder / "WISDM_ar_v1.1_raw.txt.gz").write_bytes(gzip.compress(payload))
        else:
            _tar_gz(folder / "WISDM_ar_latest.tar.gz", WISDM_V11_MEMBER, payload)
        ds = load_wisdm_v11(tmp_path / name / "data", use_cache=index != 1)
        loaded.append(ds)
    for ds in loaded[1:]:
        assert ds.users == loaded[0].users
        assert len(ds.segments) == len(loaded[0].segments)
        assert [i.line for i in ds.report.issues] == [i.line for i in loaded[0].report.issues]
        for a, b in zip(ds.segments, loaded[0].segments, strict=True):
            np.testing.assert_array_equal(a.signal, b.signal)


def test_cached_second_load_equals_first(tmp_path: Path, tmp_cache: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "WISDM_ar_v1.1_raw.txt").write_bytes(QUIRKS.read_bytes())
    first = load_wisdm_v11(tmp_path / "data")
    assert list((tmp_cache / "parsed").glob("*.npz"))
    second = load_wisdm_v11(tmp_path / "data")
    assert second.report == first.report
    assert len(second.segments) == len(first.segments)


def test_class_subset_and_merge(tmp_path: Path, tmp_cache: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "WISDM_ar_v1.1_raw.txt").write_bytes(QUIRKS.read_bytes())
    ds = load_dataset("wisdm", tmp_path / "data", classes=["moving=walking+jogging", "Sitting"])
    assert ds.classes == ["moving", "sitting"]
    assert sorted({s.label for s in ds.segments}) == [0, 1]
    assert sum(s.signal.shape[0] for s in ds.segments) == 15  # all but user 30's Standing


def test_missing_file_error_names_directory_files_and_how(tmp_path: Path) -> None:
    with pytest.raises(DatasetMissingError) as info:
        load_dataset("wisdm", tmp_path)
    message = str(info.value)
    assert str(tmp_path / "wisdm_v1.1") in message
    assert "WISDM_ar_v1.1_raw.txt" in message and "WISDM_ar_latest.tar.gz" in message
    assert (
        "https://www.cis.fordham.edu/wisdm/includes/datasets/latest/WISDM_ar_latest.tar.gz"
        in message
    )
    assert "--download" in message
    assert "\n" not in message


def test_download_offline_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(DatasetMissingError) as info:
        fetch_wisdm_v11(tmp_path, url="http://127.0.0.1:9/WISDM_ar_latest.tar.gz", timeout_s=5)
    message = str(info.value)
    assert "offline or host unreachable" in message
    assert str(tmp_path / "wisdm_v1.1" / "WISDM_ar_latest.tar.gz") in message
    assert not list((tmp_path / "wisdm_v1.1").glob("*"))


def test_download_checks_the_raw_sha256_and_caches(tmp_path: Path, tmp_cache: Path) -> None:
    payload = QUIRKS.read_bytes()
    served = _tar_gz(tmp_path / "served.tar.gz", WISDM_V11_MEMBER, payload)
    good = hashlib.sha256(payload).hexdigest()
    data = tmp_path / "data"
    with pytest.raises(ChecksumError, match="expected 0000"):
        fetch_wisdm_v11(data, url=served.as_uri(), raw_sha256="0" * 64)
    assert not (data / "wisdm_v1.1" / "WISDM_ar_latest.tar.gz").exists()
    archive = fetch_wisdm_v11(data, url=served.as_uri(), raw_sha256=good)
    assert archive.is_file()
    served.unlink()
    assert fetch_wisdm_v11(data, url=served.as_uri(), raw_sha256=good) == archive
    ds = load_wisdm_v11(data)
    assert ds.report.records_ok == 16


def test_verify_sha256_of_a_local_file(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"fedhar")
    digest = hashlib.sha256(b"fedhar").hexdigest()
    assert sha256_file(path) == digest
    verify_sha256(path, digest.upper())
    with pytest.raises(ChecksumError, match=str(path)):
        verify_sha256(path, "f" * 64)


def test_a_user_off_the_nominal_rate_is_noted(tmp_path: Path, tmp_cache: Path) -> None:
    folder = _folder(tmp_path)
    lines = [f"5,Sitting,{10**12 + i * 100_000_000},0.1,9.8,0.2;" for i in range(30)]
    (folder / "WISDM_ar_v1.1_raw.txt").write_text("\n".join(lines) + "\n")
    ds = load_wisdm_v11(tmp_path / "data")
    assert any(n.startswith("user 5: median sample interval 100 ms") for n in ds.report.notes)
    np.testing.assert_allclose(ds.segments[0].t[:3], [0.0, 0.1, 0.2])


def test_vectorised_and_record_by_record_paths_agree() -> None:
    """Plain lines take the vectorised path; the same lines with a trailing space do not."""
    lines = QUIRKS.read_text().splitlines()
    fast = parse_lines(lines)
    slow = parse_lines([line + " " for line in lines])
    for key in ("user", "activity", "ts", "xyz", "line", "issue_line"):
        np.testing.assert_array_equal(fast[key], slow[key])
    assert fast["issue_reason"].tolist() == slow["issue_reason"].tolist()


def test_one_bad_value_among_many_plain_lines_is_isolated() -> None:
    lines = [f"7,Walking,{10**12 + i * 50_000_000},0.1,9.8,0.2;" for i in range(1000)]
    lines[613] = "7,Walking,1030650000000,0.1,9.8e,0.2;"
    arrays = parse_lines(lines)
    assert arrays["user"].size == 999
    assert arrays["issue_line"].tolist() == [614]
    assert "field 'y' '9.8e'" in arrays["issue_reason"][0]
