"""``fedhar data info``: what a dataset holds, per user and class, and its load report."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from fedhar.commands import add_data_dir, usage
from fedhar.data import DATASETS
from fedhar.data.hapt import CHANNEL_SETS

if TYPE_CHECKING:
    from fedhar.data.types import HarDataset, WindowSet

_SHOWN_ISSUES = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``data`` (with its ``info`` sub-command) to the fedhar CLI."""
    data = subparsers.add_parser(
        "data",
        help="inspect HAR datasets",
        description="Inspect HAR datasets. 'fedhar data info --dataset NAME' prints users, "
        "classes, samples and windows per user and class, and the load report.",
    )
    actions = data.add_subparsers(dest="data_command", metavar="ACTION")
    info = actions.add_parser(
        "info",
        help="users, classes, samples and windows per user and class, and the load report",
        description="Loads a dataset and prints its users, classes, samples and windows per "
        "user and class, and its load report (skipped records with file and line, notes).",
    )
    info.add_argument("--dataset", required=True, choices=DATASETS, help="dataset name")
    add_data_dir(info, "$FEDHAR_DATA_DIR, else the user cache ~/.cache/fedhar/data")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    info.add_argument("--window", type=int, default=100, help="window length in samples (20-200)")
    info.add_argument("--stride", type=int, default=50, help="window stride in samples")
    info.add_argument(
        "--target-fs",
        type=float,
        default=None,
        help="resample to this rate in Hz (default: nominal)",
    )
    info.add_argument(
        "--classes",
        default=None,
        help="comma-separated class entries, e.g. 'A,B,C' or 'walking,stairs=C' (default: the "
        "dataset's default subset)",
    )
    info.add_argument(
        "--device", default="phone", choices=("phone", "watch"), help="wisdm2019 device"
    )
    info.add_argument(
        "--channels", default="acc", choices=tuple(CHANNEL_SETS), help="hapt channels"
    )
    info.add_argument("--seed", type=int, default=0, help="synthetic generator seed")
    info.add_argument(
        "--download",
        action="store_true",
        help="wisdm only: download and verify the official archive if it is missing",
    )
    info.set_defaults(func=run_info)
    data.set_defaults(func=lambda args: usage(data))


def run_info(args: argparse.Namespace) -> int:
    """Runs ``fedhar data info``; returns 0, or 2 with a one-line message on stderr when the
    dataset is missing or an option is invalid."""
    # Imported here so that `fedhar data --help` does not pay for the loaders and numpy.
    from fedhar.data.paths import ChecksumError, DatasetMissingError
    from fedhar.data.preprocess import make_windows
    from fedhar.data.registry import load_dataset

    opts: dict[str, Any] = {"download": True} if args.download and args.dataset == "wisdm" else {}
    if args.download and args.dataset != "wisdm":
        return _fail(f"--download applies to --dataset wisdm only, not {args.dataset}")
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    try:
        ds = load_dataset(
            args.dataset,
            args.data_dir,
            classes=classes,
            channels=args.channels,
            target_fs=args.target_fs,
            device=args.device,
            seed=args.seed,
            **opts,
        )
        ws = make_windows(ds, args.window, args.stride)
    except (DatasetMissingError, ChecksumError, ValueError) as exc:
        return _fail(str(exc))
    summary = summarize(ds, ws, args.window, args.stride)
    if args.json:
        print(json.dumps(summary, indent=None, sort_keys=False))
    else:
        print(_text(summary))
    return 0


def _fail(message: str) -> int:
    print(f"fedhar data info: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def summarize(ds: HarDataset, ws: WindowSet, length: int, stride: int) -> dict[str, Any]:
    """Plain-data summary of a dataset and its windows (what ``--json`` prints)."""
    import numpy as np

    users = ds.users
    samples = {u: {c: 0 for c in ds.classes} for u in users}
    for seg in ds.segments:
        samples[seg.user][ds.classes[seg.label]] += int(seg.signal.shape[0])
    windows = {u: {c: 0 for c in ds.classes} for u in users}
    keys, counts = np.unique(np.stack([ws.users, ws.y.astype(str)]), axis=1, return_counts=True)
    for (user, label), count in zip(keys.T.tolist(), counts.tolist(), strict=True):
        windows[user][ds.classes[int(label)]] = int(count)
    return {
        "dataset": ds.name,
        "fs": ds.fs,
        "channels": ds.channels,
        "users": users,
        "classes": ds.classes,
        "window": {"length": length, "stride": stride, "seconds": length / ds.fs},
        "samples_total": sum(sum(v.values()) for v in samples.values()),
        "windows_total": len(ws),
        "samples_per_user": {u: sum(v.values()) for u, v in samples.items()},
        "windows_per_user": {u: sum(v.values()) for u, v in windows.items()},
        "samples_per_user_class": samples,
        "windows_per_user_class": windows,
        "report": asdict(ds.report),
    }


def _text(summary: dict[str, Any]) -> str:
    classes = summary["classes"]
    win = summary["window"]
    lines = [
        f"dataset {summary['dataset']}: {len(summary['users'])} users, {len(classes)} classes, "
        f"{summary['fs']:g} Hz, channels {', '.join(summary['channels'])}",
        f"classes: {', '.join(classes)}",
        f"windows: {win['length']} samples ({win['seconds']:g} s), stride {win['stride']}; "
        f"{summary['windows_total']} windows from {summary['samples_total']} samples",
        "",
        "windows per user and class (samples in parentheses):",
    ]
    width = max(8, *(len(c) for c in classes))
    lines.append(
        "user".ljust(8) + "".join(c.rjust(width + 10) for c in classes) + "total".rjust(16)
    )
    for user in summary["users"]:
        per_class = zip(
            summary["windows_per_user_class"][user].values(),
            summary["samples_per_user_class"][user].values(),
            strict=True,
        )
        cells = "".join(f"{w} ({n})".rjust(width + 10) for w, n in per_class)
        total = f"{summary['windows_per_user'][user]} ({summary['samples_per_user'][user]})"
        lines.append(user.ljust(8) + cells + total.rjust(16))
    report = summary["report"]
    lines += [
        "",
        f"load report: {len(report['files'])} files, {report['records_ok']} records kept, "
        f"{report['records_skipped']} skipped",
    ]
    for issue in report["issues"][:_SHOWN_ISSUES]:
        lines.append(f"  skipped {issue['file']}:{issue['line']}: {issue['reason']}")
    if len(report["issues"]) > _SHOWN_ISSUES:
        lines.append(f"  ... {len(report['issues']) - _SHOWN_ISSUES} more (see --json)")
    lines += [f"  note: {note}" for note in report["notes"]]
    return "\n".join(lines)
