"""UCI HAPT v2.1: the raw 50 Hz smartphone signals behind UCI HAR, with activity segments.

Files under ``uci_har/RawData/``: ``acc_expXX_userYY.txt[.gz]`` (x y z in g, gravity
included), ``gyro_expXX_userYY.txt[.gz]`` (rad/s) and ``labels.txt`` (``exp user activity
start end``, 1-based inclusive row indices). Rows outside every label segment are
unlabelled and excluded. Default classes are the six basic activities; the six postural
transitions are included only on request. Acceleration stays in g unless
``acc_units="m/s2"`` (× 9.80665).

Channel sets (:data:`CHANNEL_SETS`): the stored total acceleration ``acc``, the gyroscope
``gyro`` and the body acceleration ``body_acc`` (total minus gravity, the 0.3 Hz zero-phase
Butterworth low-pass of :mod:`fedhar.data.gravity`, computed on each whole experiment before it
is cut). ``uci_har`` is the 9-channel view of UCI HAR's ``Inertial Signals`` (total_acc,
body_acc, body_gyro), in the order total acc, body acc, gyro.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from fedhar.data.cache import Arrays, cached_arrays, report_issues
from fedhar.data.gravity import GRAVITY_CUTOFF_HZ, GRAVITY_ORDER, split_gravity
from fedhar.data.labels import select_classes
from fedhar.data.paths import missing_error
from fedhar.data.preprocess import resample
from fedhar.data.reading import list_folder, read_data_file
from fedhar.data.types import HarDataset, LoadReport, Segment
from fedhar.progress import progress

FS = 50.0
STANDARD_GRAVITY = 9.80665
ACTIVITIES: dict[str, str] = {
    "1": "walking", "2": "walking_upstairs", "3": "walking_downstairs", "4": "sitting",
    "5": "standing", "6": "laying", "7": "stand_to_sit", "8": "sit_to_stand",
    "9": "sit_to_lie", "10": "lie_to_sit", "11": "stand_to_lie", "12": "lie_to_stand",
}  # fmt: skip
BASIC = ["1", "2", "3", "4", "5", "6"]
SENSORS: dict[str, list[str]] = {
    "acc": ["acc_x", "acc_y", "acc_z"],
    "body_acc": ["body_acc_x", "body_acc_y", "body_acc_z"],
    "gyro": ["gyro_x", "gyro_y", "gyro_z"],
}
"""Sensor → its three channel names (acc: total acceleration, gravity included)."""
CHANNEL_SETS: dict[str, list[str]] = {
    "acc": ["acc"],
    "acc+gyro": ["acc", "gyro"],
    "body_acc": ["body_acc"],
    "body_acc+gyro": ["body_acc", "gyro"],
    "acc+body_acc": ["acc", "body_acc"],
    "uci_har": ["acc", "body_acc", "gyro"],
}
"""Channel set name → its sensors in column order (3, 6 or 9 channels)."""
ACC_UNITS = ("g", "m/s2")
_PARSER = "hapt-v1"
_FILE_RE = re.compile(r"^(acc|gyro)_exp(\d+)_user(\d+)\.txt(\.gz)?$")


def find_raw_dir(data_dir: Path) -> Path:
    """The ``RawData`` folder: under ``data_dir/uci_har``, ``data_dir/HAPT Data Set`` or
    ``data_dir``.

    Raises:
        DatasetMissingError: no folder with ``labels.txt`` and acc files.
    """
    tried = []
    for root in (data_dir / "uci_har", data_dir / "HAPT Data Set", data_dir):
        raw = root / "RawData"
        tried.append(raw)
        if (raw / "labels.txt").is_file() and any(raw.glob("acc_exp*_user*.txt*")):
            return raw
    raise missing_error(
        "hapt",
        tried,
        "RawData/labels.txt and RawData/acc_expXX_userYY.txt[.gz] + gyro_expXX_userYY.txt[.gz] "
        "(61 experiments, 30 users)",
        "download 'Smartphone-Based Recognition of Human Activities and Postural Transitions' "
        "(HAPT v2.1) from the UCI Machine Learning Repository and unpack RawData to "
        "<data dir>/uci_har/RawData",
    )


def parse_signal_file(path: Path, *, use_cache: bool = True) -> Arrays:
    """``values [n, 3]`` float32 rows of one acc or gyro file (row i = file line i + 1; a
    malformed line becomes a NaN row so row indices stay aligned with ``labels.txt``) and
    ``issue_line`` / ``issue_reason`` for those lines."""

    def parse() -> Arrays:
        data = read_data_file(path, "HAPT raw signal rows 'x y z' (text)")
        lines = data.rstrip().split(b"\n")
        tokens = data.split()
        if len(tokens) == 3 * len(lines):
            try:
                values = np.array(tokens).astype(np.float64).reshape(-1, 3)
                if np.all(np.isfinite(values)):
                    return {
                        "values": values.astype(np.float32),
                        "issue_line": np.empty(0, np.int64),
                        "issue_reason": np.empty(0, dtype="U1"),
                    }
            except ValueError:
                pass
        return _slow_parse(lines)

    return cached_arrays(path, _PARSER, parse, use_cache=use_cache)


def _slow_parse(lines: list[bytes]) -> Arrays:
    values = np.full((len(lines), 3), np.nan, dtype=np.float32)
    issue_line: list[int] = []
    issue_reason: list[str] = []
    for number, raw in enumerate(lines, start=1):
        fields = raw.split()
        reason = ""
        if len(fields) != 3:
            reason = f"expected 3 space-separated values (x y z), found {len(fields)}"
        else:
            try:
                row = [float(f) for f in fields]
                if not all(np.isfinite(row)):
                    reason = "a value is not finite"
                else:
                    values[number - 1] = row
            except ValueError:
                reason = f"values {raw.decode(errors='replace')!r} are not all numbers"
        if reason:
            issue_line.append(number)
            issue_reason.append(reason)
    return {
        "values": values,
        "issue_line": np.array(issue_line, dtype=np.int64),
        "issue_reason": np.array(issue_reason, dtype=str),
    }


def _experiment_files(raw: Path) -> dict[int, dict[str, Path]]:
    """Experiment number → {"acc": path, "gyro": path} for the files found in ``raw``."""
    found: dict[int, dict[str, Path]] = {}
    for path in list_folder(raw, "HAPT raw signal files"):
        match = _FILE_RE.match(path.name)
        if match:
            found.setdefault(int(match.group(2)), {}).setdefault(match.group(1), path)
    return found


def _read_labels(path: Path, report: LoadReport) -> list[tuple[int, int, str, int, int, int]]:
    """Label rows ``(exp, user, activity id, start, end, line)``; bad rows are skipped and
    reported."""
    rows = []
    text = read_data_file(path, "HAPT label rows 'exp user activity start end' (text)")
    for number, line in enumerate(text.decode("latin-1").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5 or not all(f.isdigit() for f in fields):
            report.skip(str(path), number, "expected 5 integers: exp user activity start end")
            continue
        exp, user, activity, start, end = (int(f) for f in fields)
        if str(activity) not in ACTIVITIES:
            report.skip(str(path), number, f"field 'activity' {activity} is not 1-12")
            continue
        if not 1 <= start <= end:
            report.skip(
                str(path), number, f"fields 'start' {start} / 'end' {end}: need 1 <= start <= end"
            )
            continue
        rows.append((exp, user, str(activity), start, end, number))
    return rows


def load_hapt(
    data_dir: Path,
    *,
    classes: list[str] | None = None,
    channels: str = "acc",
    target_fs: float | None = None,
    include_transitions: bool = False,
    acc_units: str = "g",
    users: list[str] | None = None,
    use_cache: bool = True,
) -> HarDataset:
    """Loads UCI HAPT raw signals cut by ``labels.txt``.

    Args:
        data_dir: the data directory (holding ``uci_har/RawData``).
        classes: class entries (ids ``"1"``–``"12"`` or names such as ``"walking"``, or
            ``"name=4+5"`` to merge); default the six basic activities, or all twelve when
            ``include_transitions``.
        channels: a :data:`CHANNEL_SETS` name: ``"acc"`` or ``"body_acc"`` (3 channels),
            ``"acc+gyro"``, ``"body_acc+gyro"`` or ``"acc+body_acc"`` (6), ``"uci_har"`` (9:
            total acc x y z, body acc x y z, gyro x y z).
        target_fs: output rate in Hz; default 50 Hz (no resampling).
        include_transitions: default classes include the six postural transitions.
        acc_units: ``"g"`` (as stored) or ``"m/s2"``; gyro is always rad/s.
        users: user ids to load (default all).
        use_cache: read and write the parsed-array cache.

    Returns:
        A :class:`HarDataset`, one segment per label row (split where a malformed row
        interrupts it), ordered by user, experiment and time.
    """
    if channels not in CHANNEL_SETS:
        raise ValueError(f"hapt: channels must be one of {list(CHANNEL_SETS)}, got {channels!r}")
    if acc_units not in ACC_UNITS:
        raise ValueError(f"hapt: acc_units must be one of {ACC_UNITS}, got {acc_units!r}")
    default = list(ACTIVITIES) if include_transitions else BASIC
    names, mapping = select_classes("hapt", ACTIVITIES, classes, default)
    raw = find_raw_dir(data_dir)
    report = LoadReport()
    labels_path = raw / "labels.txt"
    report.files.append(str(labels_path))
    rows = _read_labels(labels_path, report)
    files = _experiment_files(raw)
    wanted = None if users is None else {int(u) for u in users}
    sensors = CHANNEL_SETS[channels]
    kinds = ["acc", "gyro"] if "gyro" in sensors else ["acc"]
    scale = STANDARD_GRAVITY if acc_units == "m/s2" else 1.0
    by_exp: dict[int, list[tuple[int, int, str, int, int, int]]] = {}
    for row in rows:
        if wanted is None or row[1] in wanted:
            by_exp.setdefault(row[0], []).append(row)
    out_fs = float(target_fs) if target_fs is not None else FS
    segments: list[Segment] = []
    kept = excluded_class = 0
    total_rows = 0
    for exp in progress(sorted(by_exp), desc="hapt", total=len(by_exp)):
        signal, source = _experiment_signal(exp, files.get(exp, {}), kinds, raw, report, use_cache)
        if signal is None:
            for row in by_exp[exp]:
                report.skip(
                    str(labels_path), row[5], f"experiment {exp} has no {'/'.join(kinds)} file"
                )
            continue
        signal[:, :3] *= scale
        signal = _channel_view(signal, sensors)
        total_rows += signal.shape[0]
        for _, user, activity, start, end, number in by_exp[exp]:
            if end > signal.shape[0]:
                report.skip(
                    str(labels_path), number,
                    f"field 'end' {end} is past the last row ({signal.shape[0]}) of {source}",
                )  # fmt: skip
                continue
            label = mapping.get(activity)
            if label is None:
                excluded_class += end - start + 1
                continue
            piece = signal[start - 1 : end]
            valid = np.all(np.isfinite(piece), axis=1)
            for a, b in _true_runs(valid):
                seg = Segment(
                    user=str(user),
                    label=label,
                    signal=piece[a:b].astype(np.float32),
                    fs=FS,
                    t=np.arange(b - a, dtype=np.float64) / FS,
                    source=f"{source}:{start + a}-{start + b - 1}",
                )
                segments.append(seg if out_fs == FS else resample(seg, out_fs))
                kept += b - a
    segments.sort(key=lambda s: int(s.user))
    report.records_ok = kept
    report.notes.append(
        f"{len({s.user for s in segments})} users; {kept} labelled rows kept, {excluded_class} "
        f"rows of unselected classes and {total_rows - kept - excluded_class} unlabelled or "
        f"malformed rows excluded; {len(rows)} label rows"
    )
    report.notes.append(
        f"channels {channels} ({'+'.join(sensors)}): acc in {acc_units}"
        + (", gyro in rad/s" if "gyro" in sensors else "")
        + (
            f", body acc = total minus a zero-phase order-{GRAVITY_ORDER} Butterworth "
            f"low-pass at {GRAVITY_CUTOFF_HZ:g} Hz"
            if "body_acc" in sensors
            else ""
        )
        + f"; recorded at {FS:g} Hz, output rate {out_fs:g} Hz"
    )  # fmt: skip
    names_out = [name for sensor in sensors for name in SENSORS[sensor]]
    return HarDataset("hapt", names, names_out, out_fs, segments, report)


def _channel_view(signal: np.ndarray, sensors: list[str]) -> np.ndarray:
    """The ``[T, 3 * len(sensors)]`` columns of ``sensors`` from one experiment's
    ``[T, 3 or 6]`` (acc, then gyro) signal; body acc is split off the whole experiment."""
    columns = {"acc": signal[:, :3], "gyro": signal[:, 3:6]}
    if "body_acc" in sensors:
        columns["body_acc"] = split_gravity(signal[:, :3], FS)[1]
    return np.concatenate([columns[sensor] for sensor in sensors], axis=1)


def _true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges where ``mask`` is True."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _experiment_signal(
    exp: int,
    paths: dict[str, Path],
    kinds: list[str],
    raw: Path,
    report: LoadReport,
    use_cache: bool,
) -> tuple[np.ndarray | None, str]:
    """The ``[T, 3 or 6]`` signal of one experiment (acc then gyro), cut to the shorter file
    when acc and gyro row counts differ (reported)."""
    if any(kind not in paths for kind in kinds):
        return None, str(raw)
    parts = []
    for kind in kinds:
        report.files.append(str(paths[kind]))
        arrays = parse_signal_file(paths[kind], use_cache=use_cache)
        report_issues(report, str(paths[kind]), arrays)
        parts.append(arrays["values"])
    rows = min(p.shape[0] for p in parts)
    if any(p.shape[0] != rows for p in parts):
        report.notes.append(
            f"experiment {exp}: acc and gyro row counts differ "
            f"({', '.join(str(p.shape[0]) for p in parts)}); cut to {rows}"
        )
    return np.concatenate([p[:rows] for p in parts], axis=1), str(paths["acc"])
