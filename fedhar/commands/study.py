"""``fedhar study SCENARIO --out DIR [--resume] [--adaptive-dir DIR]``: run a
battery-policy study."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``study`` sub-command."""
    parser = subparsers.add_parser(
        "study",
        help="run a battery-policy study (policies x capacity x charging habit)",
        description="Simulates every configuration of the study grid and writes study.json, "
        "study.csv, plots and report.html into DIR.",
    )
    parser.add_argument(
        "scenario", help="study scenario YAML, e.g. scenarios/battery_policies.yaml"
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted study in DIR (it must be of the same scenario)",
    )
    parser.add_argument(
        "--adaptive-dir",
        help="output directory of `fedhar adaptive` whose models replay real windows "
        "(overrides the scenario's replay.adaptive_dir)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Runs the study; exit code 2 for an invalid scenario, an occupied DIR (without
    ``--resume``) or a DIR of another study."""
    from fedhar.commands import print_error
    from fedhar.results.journal import JournalError
    from fedhar.schema.base import SchemaError
    from fedhar.studies.battery import run_study, winner_lines

    try:
        result = run_study(
            args.scenario, args.out, resume=args.resume, adaptive_dir=args.adaptive_dir
        )
    except (SchemaError, JournalError) as exc:
        print_error(exc)
        return 2
    for line in winner_lines(result["summary"]):
        print(line)
    print(f"wrote {args.out}/study.json, study.csv, report.html")
    return 0
