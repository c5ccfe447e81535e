"""WISDM Smartphone and Smartwatch Activity and Biometrics dataset (2019), raw accelerometer.

Files: ``wisdm_2019/raw/{phone,watch}/accel/data_<subject>_accel_<device>.txt[.gz]``, one line
per sample ``subject,code,timestamp_ns,x,y,z;`` with x, y, z in m/s² (gravity included) and
timestamps in nanoseconds of each device's own clock. Activity codes A–S (no N). The nominal
rate is 20 Hz; each subject's rate is measured (median sample interval) and a subject off by
more than 5 % (phone 1607 records at about 25 Hz) is resampled to the common rate.

Parsing is vectorised over a whole file; a file that fails the fast path's format checks is
parsed line by line, and every malformed line is skipped and reported with its line number.
Parsed arrays are cached (see :mod:`fedhar.data.cache`).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from fedhar.data.cache import Arrays, cached_arrays, report_issues
from fedhar.data.labels import select_classes
from fedhar.data.paths import missing_error
from fedhar.data.preprocess import resample
from fedhar.data.reading import read_data_file
from fedhar.data.types import HarDataset, LoadReport, Segment
from fedhar.progress import progress

ACTIVITIES: dict[str, str] = {
    "A": "walking", "B": "jogging", "C": "stairs", "D": "sitting", "E": "standing",
    "F": "typing", "G": "teeth", "H": "soup", "I": "chips", "J": "pasta", "K": "drinking",
    "L": "sandwich", "M": "kicking", "O": "catch", "P": "dribbling", "Q": "writing",
    "R": "clapping", "S": "folding",
}  # fmt: skip
DEFAULT_CLASSES = ["A", "B", "C", "D", "E"]
NOMINAL_FS = 20.0
RATE_TOLERANCE = 0.05
DEVICES = ("phone", "watch")
CHANNELS = ["acc_x", "acc_y", "acc_z"]
_PARSER = "wisdm2019-v2"
_FILE_RE = re.compile(r"^data_(\d+)_accel_(phone|watch)\.txt(\.gz)?$")
_CODES = np.frombuffer("".join(ACTIVITIES).encode(), dtype=np.uint8)


def find_root(data_dir: Path) -> Path | None:
    """The folder holding ``raw/`` : ``data_dir/wisdm_2019``, ``data_dir/wisdm-dataset`` (the
    official zip's name) or ``data_dir`` itself; ``None`` if none has ``raw/``."""
    for root in (data_dir / "wisdm_2019", data_dir / "wisdm-dataset", data_dir):
        if (root / "raw").is_dir():
            return root
    return None


def subject_files(data_dir: Path, device: str) -> list[tuple[str, Path]]:
    """``(subject, path)`` for every accelerometer file of ``device``, sorted by subject.

    Raises:
        DatasetMissingError: when the folder or its files are absent.
    """
    root = find_root(data_dir)
    folder = (root or data_dir / "wisdm_2019") / "raw" / device / "accel"
    found: dict[str, Path] = {}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            match = _FILE_RE.match(path.name)
            if match and match.group(2) == device:
                found.setdefault(match.group(1), path)
    if not found:
        raise missing_error(
            "wisdm2019",
            [folder],
            f"files data_<subject>_accel_{device}.txt or .txt.gz (subjects 1600-1650)",
            "download the 'WISDM Smartphone and Smartwatch Activity and Biometrics Dataset' "
            "from the UCI Machine Learning Repository and unpack its wisdm-dataset/raw folder "
            "to <data dir>/wisdm_2019/raw",
        )
    return sorted(found.items(), key=lambda item: int(item[0]))


def _read_text(path: Path) -> bytes:
    data = read_data_file(path, "WISDM 2019 raw accelerometer records (text)")
    return data.replace(b"\r", b"")


def _fast_parse(body: bytes) -> Arrays | None:
    """Vectorised parse of a file whose every line is ``int,X,int,float,float,float;``;
    ``None`` when any line breaks that shape (the caller then parses line by line)."""
    if not body or b"\n\n" in body or not body.endswith(b";"):
        return None
    buf = np.frombuffer(body, dtype=np.uint8)
    newlines = np.flatnonzero(buf == ord("\n"))
    ends = np.concatenate((newlines, [buf.size]))
    if np.any(buf[ends - 1] != ord(";")) or np.count_nonzero(buf == ord(";")) != ends.size:
        return None
    comma_at = np.flatnonzero(buf == ord(","))
    if comma_at.size != 5 * ends.size:
        return None
    comma_at = comma_at.reshape(-1, 5)
    starts = np.concatenate(([0], newlines + 1))
    if np.any(comma_at[:, 0] <= starts) or np.any(comma_at[:, 4] >= ends):
        return None  # the five commas of every line lie inside it, in order
    if np.any(comma_at[:, 1] - comma_at[:, 0] != 2):
        return None  # the activity code is one byte
    code_bytes = buf[comma_at[:, 0] + 1].copy()
    if not np.all(np.isin(code_bytes, _CODES)):
        return None
    # numpy's C text reader, column by column (the code column is skipped).
    table = io.BytesIO(body.replace(b";", b""))
    try:
        ids = np.loadtxt(table, delimiter=",", usecols=(0, 2), dtype=np.int64, ndmin=2)
        table.seek(0)
        xyz = np.loadtxt(table, delimiter=",", usecols=(3, 4, 5), dtype=np.float64, ndmin=2)
    except ValueError:
        return None
    subject, ts = ids[:, 0].copy(), ids[:, 1].copy()
    if not np.all(np.isfinite(xyz)):
        return None
    n = subject.size
    return {
        "subject": subject, "code": code_bytes, "ts": ts,
        "xyz": xyz.astype(np.float32), "line": np.arange(1, n + 1, dtype=np.int64),
        "issue_line": np.empty(0, np.int64), "issue_reason": np.empty(0, dtype="U1"),
    }  # fmt: skip


def _parse_record(line: str) -> tuple[tuple[int, int, int, float, float, float] | None, str]:
    """One line → ``((subject, code byte, ts, x, y, z), "")`` or ``(None, reason)``."""
    if not line.endswith(";"):
        return None, "record does not end with ';'"
    fields = line[:-1].split(",")
    if len(fields) != 6:
        return None, f"expected 6 comma-separated fields, found {len(fields)}"
    subject, code, ts, *xyz = (f.strip() for f in fields)
    if not subject.isdigit():
        return None, f"field 1 (subject) {subject!r} is not an integer"
    if code not in ACTIVITIES:
        return None, f"field 2 (activity) {code!r} is not one of the codes A-S (no N)"
    if not ts.lstrip("-").isdigit():
        return None, f"field 3 (timestamp) {ts!r} is not an integer"
    values = []
    for index, text in enumerate(xyz, start=4):
        try:
            value = float(text)
        except ValueError:
            return None, f"field {index} ({'xyz'[index - 4]}) {text!r} is not a number"
        if not np.isfinite(value):
            return None, f"field {index} ({'xyz'[index - 4]}) {text!r} is not finite"
        values.append(value)
    return (int(subject), ord(code), int(ts), values[0], values[1], values[2]), ""


def _slow_parse(body: bytes) -> Arrays:
    """Line-by-line parse that skips and records every malformed line; blank lines are
    ignored."""
    rows: list[tuple[int, int, int, float, float, float]] = []
    lines: list[int] = []
    issue_line: list[int] = []
    issue_reason: list[str] = []
    for number, raw in enumerate(body.split(b"\n"), start=1):
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            continue
        record, reason = _parse_record(text)
        if record is None:
            issue_line.append(number)
            issue_reason.append(reason)
        else:
            rows.append(record)
            lines.append(number)
    table = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return {
        "subject": np.array([r[0] for r in rows], dtype=np.int64),
        "code": np.array([r[1] for r in rows], dtype=np.uint8),
        "ts": np.array([r[2] for r in rows], dtype=np.int64),
        "xyz": table[:, 3:6].astype(np.float32),
        "line": np.array(lines, dtype=np.int64),
        "issue_line": np.array(issue_line, dtype=np.int64),
        "issue_reason": np.array(issue_reason, dtype=str),
    }


def parse_file(path: Path, *, use_cache: bool = True) -> Arrays:
    """Parsed arrays of one raw file (cached): ``subject [n]`` int64, ``code [n]`` uint8
    (ASCII letter), ``ts [n]`` int64 ns, ``xyz [n, 3]`` float32 m/s², ``line [n]`` 1-based
    line numbers, and ``issue_line`` / ``issue_reason`` for skipped lines."""

    def parse() -> Arrays:
        body = _read_text(path).rstrip(b"\n")
        return _fast_parse(body) or _slow_parse(body)

    return cached_arrays(path, _PARSER, parse, use_cache=use_cache)


def load_wisdm2019(
    data_dir: Path,
    *,
    device: str = "phone",
    classes: list[str] | None = None,
    target_fs: float | None = None,
    users: list[str] | None = None,
    use_cache: bool = True,
) -> HarDataset:
    """Loads WISDM 2019 raw accelerometer data of one device.

    Args:
        data_dir: the data directory (holding ``wisdm_2019/raw``).
        device: ``"phone"`` or ``"watch"``.
        classes: class entries (codes ``"A"`` or names ``"walking"``, or ``"name=A+B"`` to
            merge); default A walking, B jogging, C stairs, D sitting, E standing.
        target_fs: output rate in Hz; default the nominal 20 Hz.
        users: subject ids to load (default all present).
        use_cache: read and write the parsed-array cache.

    Returns:
        A :class:`HarDataset` with channels acc_x, acc_y, acc_z in m/s²; one segment per
        contiguous run of one activity with increasing timestamps.
    """
    if device not in DEVICES:
        raise ValueError(f"wisdm2019: device must be one of {DEVICES}, got {device!r}")
    names, mapping = select_classes("wisdm2019", ACTIVITIES, classes, DEFAULT_CLASSES)
    code_to_label = {ord(code): label for code, label in mapping.items()}
    out_fs = float(target_fs) if target_fs is not None else NOMINAL_FS
    files = subject_files(data_dir, device)
    if users is not None:
        wanted = {str(u) for u in users}
        unknown = sorted(wanted - {s for s, _ in files})
        if unknown:
            raise ValueError(f"wisdm2019 {device}: no file for subjects {unknown}")
        files = [(s, p) for s, p in files if s in wanted]
    report = LoadReport()
    segments: list[Segment] = []
    for subject, path in progress(files, desc=f"wisdm2019 {device}", total=len(files)):
        report.files.append(str(path))
        arrays = parse_file(path, use_cache=use_cache)
        report_issues(report, str(path), arrays)
        segments.extend(_subject_segments(subject, path, arrays, code_to_label, out_fs, report))
    report.notes.append(
        f"device {device}: {len(files)} subjects; classes "
        + ", ".join(
            f"{n}={'+'.join(c for c, i in mapping.items() if i == k)}" for k, n in enumerate(names)
        )
        + f"; output rate {out_fs:g} Hz; acceleration in m/s^2 (gravity included)"
    )
    return HarDataset("wisdm2019", names, list(CHANNELS), out_fs, segments, report)


def _subject_segments(
    subject: str,
    path: Path,
    arrays: Arrays,
    code_to_label: dict[int, int],
    out_fs: float,
    report: LoadReport,
) -> list[Segment]:
    """Segments of one subject's file: split where the activity changes or time does not
    increase; rate-checked and resampled when off the output rate."""
    subj, code, ts, xyz, line = (arrays[k] for k in ("subject", "code", "ts", "xyz", "line"))
    wrong = subj != int(subject)
    for number in line[wrong].tolist():
        report.skip(str(path), number, f"field 1 (subject) is not {subject}, the file's subject")
    keep = ~wrong
    code, ts, xyz, line = code[keep], ts[keep], xyz[keep], line[keep]
    report.records_ok += int(code.size)
    missing = [c for c in ACTIVITIES if ord(c) not in set(np.unique(code).tolist())]
    if missing:
        report.notes.append(
            f"subject {subject}: no activity "
            + ", ".join(f"{c} ({ACTIVITIES[c]})" for c in missing)
        )
    step = np.diff(ts)
    breaks = np.flatnonzero((code[1:] != code[:-1]) | (step <= 0)) + 1
    for index in np.flatnonzero(step <= 0):
        if code[index] == code[index + 1]:
            report.notes.append(
                f"{path}:{int(line[index + 1])}: timestamp does not increase within activity "
                f"{chr(int(code[index]))}; a new segment starts here"
            )
    same = (code[1:] == code[:-1]) & (step > 0)
    interval_ns = float(np.median(step[same])) if np.any(same) else 0.0
    if interval_ns <= 0:
        report.notes.append(f"subject {subject}: too few samples to measure the rate; skipped")
        return []
    measured_fs = 1e9 / interval_ns
    if not 5.0 <= measured_fs <= 200.0:
        report.notes.append(
            f"subject {subject}: median interval {interval_ns:g} ticks is not 5-200 Hz in ns; "
            "timestamps are not nanoseconds, subject skipped"
        )
        return []
    off_rate = abs(measured_fs - out_fs) > RATE_TOLERANCE * out_fs
    if off_rate:
        report.notes.append(
            f"subject {subject}: median interval {interval_ns / 1e6:.1f} ms "
            f"({measured_fs:.2f} Hz); resampled to {out_fs:g} Hz"
        )
    segments = []
    edges = np.concatenate(([0], breaks, [code.size]))
    for a, b in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        label = code_to_label.get(int(code[a]))
        if label is None:
            continue
        seg = Segment(
            user=subject,
            label=label,
            signal=xyz[a:b].astype(np.float32),
            fs=out_fs,
            t=(ts[a:b] - ts[a]).astype(np.float64) * 1e-9,
            source=f"{path}:{int(line[a])}-{int(line[b - 1])}",
        )
        segments.append(resample(seg, out_fs) if off_rate else seg)
    return segments
