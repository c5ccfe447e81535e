"""WISDM Activity Prediction v1.1 raw accelerometer data (``WISDM_ar_v1.1_raw.txt``).

36 users, 6 activities, 20 Hz, acceleration in m/s²-like units (10 = 1 g), timestamps in ns
of phone uptime. The file is read plain, gzip-compressed, or straight out of the official
``WISDM_ar_latest.tar.gz``. Records are ``user,activity,timestamp,x,y,z;`` and the file has
known quirks, each handled here:

- every physical line is split on ``;``, so a line holding two records yields both;
- a record ending in ``,;`` (an empty seventh field) loses the trailing comma and is kept;
- blank lines are ignored (and counted);
- a record with missing, extra or non-numeric fields, an unknown activity, or timestamp 0
  is skipped and reported with its file, line number and reason;
- where the timestamp does not increase within one user's activity run, a new segment starts
  (and is reported in the notes).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fedhar.data.cache import Arrays, cached_arrays, report_issues
from fedhar.data.labels import select_classes
from fedhar.data.paths import (
    WISDM_V11_ARCHIVE,
    WISDM_V11_MEMBER,
    WISDM_V11_URL,
    fetch_wisdm_v11,
    missing_error,
)
from fedhar.data.preprocess import resample
from fedhar.data.reading import read_data_file, read_tar_member
from fedhar.data.types import HarDataset, LoadReport, Segment

ACTIVITIES = ["Walking", "Jogging", "Upstairs", "Downstairs", "Sitting", "Standing"]
NOMINAL_FS = 20.0
RATE_TOLERANCE = 0.05
CHANNELS = ["acc_x", "acc_y", "acc_z"]
RAW_NAMES = ("WISDM_ar_v1.1_raw.txt", "WISDM_ar_v1.1_raw.txt.gz")
_PARSER = "wisdm-v1.1-v1"
_NOTED_LOCATIONS = 10
_ACTIVITY_INDEX = {name: i for i, name in enumerate(ACTIVITIES)}
_FIELDS = ("user", "activity", "timestamp", "x", "y", "z")


def candidates(data_dir: Path) -> list[Path]:
    """Where the raw file is looked for, in order of preference."""
    folders = [data_dir / "wisdm_v1.1", data_dir / "wisdm_v1.1" / "WISDM_ar_v1.1", data_dir]
    paths = [folder / name for folder in folders for name in RAW_NAMES]
    return paths + [data_dir / "wisdm_v1.1" / WISDM_V11_ARCHIVE, data_dir / WISDM_V11_ARCHIVE]


def find_source(data_dir: Path, *, download: bool = False) -> Path:
    """The raw file (or official archive) under ``data_dir``; downloads the archive first when
    ``download`` and nothing is found.

    Raises:
        DatasetMissingError: nothing found (and no download asked, or the download failed).
    """
    for path in candidates(data_dir):
        if path.is_file():
            return path
    if download:
        return fetch_wisdm_v11(data_dir)
    raise missing_error(
        "wisdm",
        [data_dir / "wisdm_v1.1", data_dir],
        f"{RAW_NAMES[0]} (plain or .gz) or the official archive {WISDM_V11_ARCHIVE}",
        f"download {WISDM_V11_URL} into <data dir>/wisdm_v1.1/ "
        "(or pass --download / download=True to let fedhar fetch and verify it)",
    )


def _read_lines(path: Path) -> list[str]:
    expected = "WISDM v1.1 raw records (text)"
    if path.name.endswith(".tar.gz"):
        data = read_tar_member(path, WISDM_V11_MEMBER, expected)
    else:
        data = read_data_file(path, expected)
    return data.decode("utf-8", errors="replace").splitlines()


def _parse_record(text: str) -> tuple[tuple[int, int, int, float, float, float] | None, str]:
    """One record (without its ``;``) → ``(user, activity index, ts, x, y, z)`` or
    ``(None, reason)`` naming the field and what was expected."""
    fields = [f.strip() for f in text.split(",")]
    if len(fields) != 6:
        return None, f"expected 6 comma-separated fields {_FIELDS}, found {len(fields)}"
    empty = [name for name, value in zip(_FIELDS, fields, strict=True) if value == ""]
    if empty:
        return None, f"field {empty[0]!r} is empty"
    user, activity, ts, *xyz = fields
    if not user.isdigit() or int(user) < 1:
        return None, f"field 'user' {user!r} is not a positive integer"
    if activity not in _ACTIVITY_INDEX:
        return None, f"field 'activity' {activity!r} is not one of {ACTIVITIES}"
    if not ts.lstrip("-").isdigit():
        return None, f"field 'timestamp' {ts!r} is not an integer"
    if int(ts) <= 0:
        return None, f"field 'timestamp' is {ts}, expected a positive time in ns"
    values = []
    for name, value in zip(("x", "y", "z"), xyz, strict=True):
        try:
            number = float(value)
        except ValueError:
            return None, f"field {name!r} {value!r} is not a number"
        if not np.isfinite(number):
            return None, f"field {name!r} {value!r} is not finite"
        values.append(number)
    return (int(user), _ACTIVITY_INDEX[activity], int(ts), *values), ""


def _is_plain(line: str) -> bool:
    """True for a line shaped like one ordinary record: five commas and a single final ``;``."""
    return line.count(",") == 5 and line.count(";") == 1 and line.endswith(";")


def _parse_plain(lines: list[str]) -> tuple[Arrays, np.ndarray]:
    """Parses plain lines (see :func:`_is_plain`) at numpy speed.

    A batch holding a value numpy cannot convert is halved until the culprits are isolated,
    so one bad line costs a few extra conversions, not a slow parse of the whole file.

    Returns:
        The valid records (``user``, ``activity``, ``ts``, ``xyz``) and a boolean ``[len(lines)]``
        mask of those lines; the others are left to the record-by-record parser, which names
        what is wrong with them.
    """
    tokens = np.array(",".join(lines).replace(";", "").encode().split(b",")).reshape(-1, 6)
    try:
        user = tokens[:, 0].astype(np.int64)
        ts = tokens[:, 2].astype(np.int64)
        xyz = tokens[:, 3:].astype(np.float64)
    except ValueError:
        if len(lines) == 1:
            empty = {"user": np.empty(0, np.int64), "activity": np.empty(0, np.int64)}
            empty |= {"ts": np.empty(0, np.int64), "xyz": np.empty((0, 3))}
            return empty, np.zeros(1, dtype=bool)
        half = len(lines) // 2
        first, first_ok = _parse_plain(lines[:half])
        second, second_ok = _parse_plain(lines[half:])
        both = {key: np.concatenate((first[key], second[key])) for key in first}
        return both, np.concatenate((first_ok, second_ok))
    names, inverse = np.unique(tokens[:, 1], return_inverse=True)
    index = np.array([_ACTIVITY_INDEX.get(n.decode(errors="replace"), -1) for n in names])
    activity = index[inverse.reshape(-1)]
    ok = (
        (activity >= 0)
        & np.char.isdigit(tokens[:, 0])
        & np.char.isdigit(tokens[:, 2])
        & (user >= 1)
        & (ts > 0)
        & np.all(np.isfinite(xyz), axis=1)
    )
    records = {"user": user[ok], "activity": activity[ok], "ts": ts[ok], "xyz": xyz[ok]}
    return records, ok


def parse_lines(lines: Sequence[str]) -> Arrays:
    """Parses the physical lines of the raw file. Plain one-record lines go through a
    vectorised path; every other line (and any plain line that path rejects) is split on
    ``;`` and parsed record by record.

    Returns:
        ``user [n]`` int64, ``activity [n]`` int64 (index into :data:`ACTIVITIES`), ``ts [n]``
        int64 ns, ``xyz [n, 3]`` float32, ``line [n]`` 1-based physical line of each kept
        record, in file order; ``issue_line`` / ``issue_reason`` for every skipped record;
        ``note`` with the counts of blank lines, lines holding several records, records with a
        trailing comma and records missing their ``;``.
    """
    plain = np.array([_is_plain(line) for line in lines], dtype=bool)
    plain_numbers = np.flatnonzero(plain) + 1
    fast: Arrays = {}
    fast_ok = np.zeros(0, dtype=bool)
    if plain_numbers.size:
        fast, fast_ok = _parse_plain([lines[i - 1] for i in plain_numbers])
    rest = np.concatenate((np.flatnonzero(~plain) + 1, plain_numbers[~fast_ok]))
    rows: list[tuple[int, int, int, float, float, float]] = []
    kept: list[tuple[int, int]] = []
    issue_line: list[int] = []
    issue_reason: list[str] = []
    blank = multi = trailing_comma = unterminated = 0
    for number in np.sort(rest).tolist():
        pieces = lines[number - 1].split(";")
        records = [p.strip() for p in pieces[:-1] if p.strip()]
        tail = pieces[-1].strip()
        if tail:
            records.append(tail)
            unterminated += 1
        if not records:
            blank += 1
            continue
        multi += len(records) > 1
        for position, record in enumerate(records):
            if record.endswith(","):
                record = record[:-1]
                trailing_comma += 1
            parsed, reason = _parse_record(record)
            if parsed is None:
                issue_line.append(number)
                issue_reason.append(reason)
            else:
                rows.append(parsed)
                kept.append((number, position))
    notes = [
        f"{blank} blank lines (or lines of only ';') ignored",
        f"{multi} lines held more than one record (split on ';')",
        f"{trailing_comma} records ended in ',;' (trailing comma removed, record kept)",
        f"{unterminated} records had no terminating ';' (kept when otherwise valid)",
    ]
    n_fast = int(np.count_nonzero(fast_ok))
    line = np.concatenate((plain_numbers[fast_ok], np.array([k[0] for k in kept], np.int64)))
    position = np.concatenate(
        (np.zeros(n_fast, np.int64), np.array([k[1] for k in kept], np.int64))
    )
    order = np.lexsort((position, line))
    slow = {
        "user": np.array([r[0] for r in rows], dtype=np.int64),
        "activity": np.array([r[1] for r in rows], dtype=np.int64),
        "ts": np.array([r[2] for r in rows], dtype=np.int64),
        "xyz": np.array([r[3:] for r in rows], dtype=np.float64).reshape(-1, 3),
    }
    merged = {
        key: np.concatenate((fast[key], part)) if n_fast else part for key, part in slow.items()
    }
    return {
        "user": merged["user"][order],
        "activity": merged["activity"][order],
        "ts": merged["ts"][order],
        "xyz": merged["xyz"][order].astype(np.float32),
        "line": line[order],
        "issue_line": np.array(issue_line, dtype=np.int64),
        "issue_reason": np.array(issue_reason, dtype=str),
        "note": np.array(notes, dtype=str),
    }


def load_wisdm_v11(
    data_dir: Path,
    *,
    classes: list[str] | None = None,
    target_fs: float | None = None,
    download: bool = False,
    use_cache: bool = True,
) -> HarDataset:
    """Loads WISDM v1.1 raw data.

    Args:
        data_dir: the data directory (file under ``wisdm_v1.1/`` or at its top).
        classes: class entries (names such as ``"walking"``, or ``"stairs=upstairs+downstairs"``
            to merge); default all six.
        target_fs: output rate in Hz; default the nominal 20 Hz (no resampling).
        download: fetch and verify the official archive when the file is absent.
        use_cache: read and write the parsed-array cache.

    Returns:
        A :class:`HarDataset` with channels acc_x, acc_y, acc_z (m/s², 10 ≈ 1 g); segments are
        runs of one user and activity with increasing timestamps, in file order per user.
    """
    vocabulary = {name: name.lower() for name in ACTIVITIES}
    names, mapping = select_classes("wisdm", vocabulary, classes, ACTIVITIES)
    label_of = {_ACTIVITY_INDEX[raw]: label for raw, label in mapping.items()}
    source = find_source(data_dir, download=download)
    arrays = cached_arrays(
        source, _PARSER, lambda: parse_lines(_read_lines(source)), use_cache=use_cache
    )
    report = LoadReport(files=[str(source)])
    report_issues(report, str(source), arrays)
    report.notes.extend(str(n) for n in arrays["note"])
    report.records_ok = int(arrays["user"].size)
    out_fs = float(target_fs) if target_fs is not None else NOMINAL_FS
    segments = _segments(source, arrays, label_of, out_fs, report)
    report.notes.append(
        f"{len({s.user for s in segments})} users; output rate {out_fs:g} Hz; "
        "acceleration in m/s^2 (10 = 1 g, gravity included)"
    )
    return HarDataset("wisdm", names, list(CHANNELS), out_fs, segments, report)


def _segments(
    source: Path, arrays: Arrays, label_of: dict[int, int], out_fs: float, report: LoadReport
) -> list[Segment]:
    """Runs of one user and activity with increasing timestamps, ordered by user then file
    position; resampled when ``out_fs`` is not the nominal rate."""
    user, activity, ts, xyz, line = (arrays[k] for k in ("user", "activity", "ts", "xyz", "line"))
    if user.size == 0:
        return []
    same_run = (user[1:] == user[:-1]) & (activity[1:] == activity[:-1])
    backwards = np.flatnonzero(same_run & (np.diff(ts) <= 0)) + 1
    if backwards.size:
        where = ", ".join(str(int(line[i])) for i in backwards[:_NOTED_LOCATIONS])
        more = f" (first {_NOTED_LOCATIONS})" if backwards.size > _NOTED_LOCATIONS else ""
        report.notes.append(
            f"{source}: timestamp did not increase within a user's activity run at "
            f"{backwards.size} records, each starting a new segment; lines{more}: {where}"
        )
    steps = np.diff(ts)
    forward = same_run & (steps > 0)
    for uid in np.unique(user).tolist():
        mine = forward & (user[1:] == uid)
        if not np.any(mine):
            continue
        interval_ms = float(np.median(steps[mine])) / 1e6
        if abs(1000.0 / interval_ms - NOMINAL_FS) > RATE_TOLERANCE * NOMINAL_FS:
            report.notes.append(
                f"user {uid}: median sample interval {interval_ms:.4g} ms, not the nominal "
                f"{1000.0 / NOMINAL_FS:g} ms (timestamps taken as ns); check this user's times"
            )
    edges = np.concatenate(([0], np.flatnonzero(~same_run) + 1, backwards, [user.size]))
    edges = np.unique(edges)
    segments: list[Segment] = []
    for a, b in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        label = label_of.get(int(activity[a]))
        if label is None:
            continue
        seg = Segment(
            user=str(int(user[a])),
            label=label,
            signal=xyz[a:b].astype(np.float32),
            fs=NOMINAL_FS,
            t=(ts[a:b] - ts[a]).astype(np.float64) * 1e-9,
            source=f"{source}:{int(line[a])}-{int(line[b - 1])}",
        )
        segments.append(seg if out_fs == NOMINAL_FS else resample(seg, out_fs))
    segments.sort(key=lambda s: int(s.user))
    return segments
