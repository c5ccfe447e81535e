"""``fedhar export RUN_DIR --user U --out DIR``: one user's personalized model as firmware.

The model is the int8 payload of the user's personalized weights (what ``RUN_DIR/report.json``
scored as ``f1_deployed`` in a run with ``federation.payload: int8``; a run with an integer
network payload is refused). With aggregation the run kept it
(``RUN_DIR/updates/round-<r>/<user>.npz``); otherwise the user's personalization is run again
from the scenario the run copied (``RUN_DIR/scenario.yaml``), which is deterministic by seed,
and its F1 must equal the report's, else nothing is written. DIR receives a C header with the
packed model, a ``main.c`` that classifies one of the user's test windows and runs one TL
step, the library's sources, linker scripts for QEMU mps2-an386 and the NUCLEO-L496ZG, and a
Makefile (:mod:`fedhar.studies.firmware`). An existing non-empty DIR is refused unless
``--force``, which replaces the files an export writes and keeps every other file. Bad
arguments exit with code 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fedhar.commands import add_data_dir

PROG = "fedhar export"


class ExportError(ValueError):
    """A user mistake: one line, exit code 2."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``export`` sub-command to the fedhar CLI."""
    parser = subparsers.add_parser(
        "export",
        help="write one user's personalized model as C firmware for a Cortex-M4",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a fedhar run output directory")
    parser.add_argument("--user", required=True, help="the user whose model to export")
    parser.add_argument("--out", required=True, metavar="DIR", help="firmware directory")
    parser.add_argument(
        "--mode", help="personalization mode: full or tl (default: full if the run has it)"
    )
    add_data_dir(
        parser, "the run's scenario data.data_dir, then $FEDHAR_DATA_DIR, then the user cache"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty DIR, replacing the files of an earlier export "
        "(other files are kept)",
    )
    parser.set_defaults(func=run)


def _report_row(run_dir: Path, user: str) -> dict[str, Any]:
    path = run_dir / "report.json"
    if not path.is_file():
        raise ExportError(f"{path}: no such file (RUN_DIR must be a fedhar run's output)")
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path}: not a readable report ({exc})") from None
    rows = {str(c.get("user")): c for c in report.get("clients", [])}
    if user not in rows:
        raise ExportError(f"--user {user!r}: not in {path}; it has {', '.join(sorted(rows))}")
    return rows[user]


def _mode(row: dict[str, Any], asked: str | None, user: str) -> str:
    trained = [m for m in ("full", "tl") if m in row.get("modes", {})]
    if row.get("status") != "ok" or not trained:
        raise ExportError(
            f"--user {user!r}: the run has no personalized model for it (status "
            f"{row.get('status')!r}, modes {sorted(row.get('modes', {}))})"
        )
    mode = (asked or trained[0]).lower()
    if mode not in trained:
        raise ExportError(f"--mode {mode!r}: expected one of {', '.join(trained)} for this run")
    return mode


def run(args: argparse.Namespace) -> int:
    """Runs the sub-command; returns the exit code (2 on bad input)."""
    from fedhar.engines.replay import ReplayError, personalized_model
    from fedhar.studies.firmware import write_firmware

    run_dir, out = Path(args.run_dir), Path(args.out)
    try:
        if not run_dir.is_dir():
            raise ExportError(f"RUN_DIR {run_dir}: not a directory")
        if out.exists() and not out.is_dir():
            raise ExportError(f"--out {out}: a file is there, expected a directory")
        if out.is_dir() and any(out.iterdir()) and not args.force:
            raise ExportError(f"--out {out}: not empty (add --force to replace it)")
        row = _report_row(run_dir, args.user)
        mode = _mode(row, args.mode, args.user)
        spec, state, scenario, norm = personalized_model(
            run_dir, args.user, mode, row, args.data_dir
        )
    except (ExportError, ReplayError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    p = scenario.personalization
    files = write_firmware(
        out, spec, state, norm.x_test[0], int(norm.y_test[0]), p.tl_layers, p.lr, args.user
    )
    print(f"wrote {len(files)} files to {out} (user {args.user}, {mode}); "
          f"build and run in QEMU: make -C {out} qemu run")  # fmt: skip
    return 0
