"""``fedhar compare RUN_DIR... --out DIR [--force]``: macro-F1 and device cost per mode across
runs.

Reads each run's ``report.json`` and writes into DIR ``compare.csv`` and ``compare.md`` (one
row per run and mode: users, mean and minimum macro-F1, and the mean peak memory, cycles,
seconds and joules of the mode's job where the run reports them), ``compare_users.csv`` and
``compare_users.md`` (each user's macro-F1 for No-Pers., TL and Full in each run, their mean,
and each run's pretraining: centralized, or federated with its rounds and bytes) and the figures
``compare_f1`` and ``compare_cost`` as PNG (150 dpi) and SVG. A non-empty DIR is refused
unless ``--force``, which replaces only these files. Bad arguments exit with code 2 and one
line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROG = "fedhar compare"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``compare`` sub-command to the fedhar CLI."""
    parser = subparsers.add_parser(
        "compare",
        help="compare runs: a table and figures of F1 and device cost per mode",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="output directories of fedhar run"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="where the comparison goes")
    parser.add_argument(
        "--force", action="store_true", help="write into a non-empty DIR (replacing only the "
        "comparison's own files)"
    )  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Runs the sub-command; returns the exit code (2 on bad input)."""
    from fedhar.studies.compare import (
        CompareError,
        compare_rows,
        read_users,
        run_labels,
        write_tables,
        write_user_tables,
    )

    out = Path(args.out)
    try:
        if out.exists() and not out.is_dir():
            raise CompareError(f"--out {out}: a file is there, expected a directory")
        if out.is_dir() and any(out.iterdir()) and not args.force:
            raise CompareError(f"--out {out}: not empty (add --force to write into it)")
        dirs = [Path(d) for d in args.run_dirs]
        rows = compare_rows(dirs)
        users = [read_users(d, label) for d, label in zip(dirs, run_labels(dirs), strict=True)]
    except CompareError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    from fedhar.studies.compare_figures import plot_costs, plot_f1

    out.mkdir(parents=True, exist_ok=True)
    written = write_tables(rows, out) + write_user_tables(users, out)
    written += plot_f1(rows, out) + plot_costs(rows, out)
    print(f"wrote {', '.join(p.name for p in written)} to {out}")
    print((out / "compare.md").read_text(encoding="utf-8"), end="")
    print((out / "compare_users.md").read_text(encoding="utf-8"), end="")
    return 0
