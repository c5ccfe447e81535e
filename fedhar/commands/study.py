"""``fedhar study SCENARIO --out DIR [--resume] [--adaptive-dir DIR] [--data-dir DIR]
[--jobs N]``: run a battery-policy study, or a fleet study when the scenario has a ``fleet:``
section."""

from __future__ import annotations

import argparse

from fedhar.commands import add_data_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``study`` sub-command."""
    parser = subparsers.add_parser(
        "study",
        help="run a battery-policy study (policies x capacity x charging habit), or a fleet "
        "study (a scenario with a fleet: section)",
        description="Simulates every configuration of the study grid and writes study.json, "
        "study.csv, plots and report.html into DIR. A fleet scenario simulates one device per "
        "real user whose personalization jobs really train and whose F1 is measured.",
    )
    parser.add_argument(
        "scenario",
        metavar="SCENARIO",
        help="study scenario YAML, e.g. scenarios/battery_policies.yaml, or a shipped "
        "scenario's name (fedhar scenario list)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted study in DIR (it must be of the same scenario)",
    )
    add_data_dir(
        parser,
        "a fleet study's data.data_dir or a replay study's replay.data_dir, then "
        "$FEDHAR_DATA_DIR, then the user cache",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="worker processes of a fleet study (default: every core)",
    )
    parser.add_argument(
        "--adaptive-dir",
        metavar="DIR",
        help="output directory of `fedhar adaptive` whose models replay real windows "
        "(overrides the scenario's replay.adaptive_dir)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Runs the study; exit code 2 for an invalid scenario, an occupied DIR (without
    ``--resume``) or a DIR of another study."""
    from fedhar.commands import print_error
    from fedhar.progress import say
    from fedhar.results.journal import JournalError
    from fedhar.schema.base import SchemaError, read_yaml
    from fedhar.schema.kinds import kind_of
    from fedhar.schema.shipped import resolve_scenario
    from fedhar.studies.battery import run_study, winner_lines

    if args.jobs is not None and args.jobs < 1:
        print_error(ValueError(f"--jobs: expected an integer >= 1, got {args.jobs}"))
        return 2
    scenario = resolve_scenario(args.scenario)
    try:
        if kind_of(read_yaml(scenario)) == "fleet":
            from fedhar.studies.fleet import run_fleet

            result = run_fleet(
                scenario,
                args.out,
                resume=args.resume,
                log=say,
                data_dir=args.data_dir,
                jobs=args.jobs,
            )
        else:
            result = run_study(
                scenario,
                args.out,
                resume=args.resume,
                log=say,
                adaptive_dir=args.adaptive_dir,
                data_dir=args.data_dir,
            )
    except (SchemaError, JournalError) as exc:
        print_error(exc)
        return 2
    for line in winner_lines(result["summary"]):
        print(line)
    print(f"wrote {args.out}/study.json, study.csv, report.html")
    return 0
