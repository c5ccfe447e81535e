"""``fedhar scenario validate FILE``, ``fedhar scenario schema`` and ``fedhar scenario list``.

``validate`` checks a file as the command that reads it would (the kind follows from its
sections, see :mod:`fedhar.schema.kinds`, or ``--kind``) and prints ``ok: <name> (<kind>)``,
or one line per problem naming the file and the key, exit code 2. ``schema`` prints the JSON
Schema of a kind of file, generated from its pydantic model. ``list`` names the scenarios
shipped with fedhar, which every command also takes by bare name (``fedhar run quickstart``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fedhar.commands import print_error, usage

PROG = "fedhar scenario"
KIND_NAMES = ("run", "adaptive", "compress", "study", "fleet", "mcu")
"""The kinds of file (:data:`fedhar.schema.kinds.KINDS`), here so that ``--help`` needs no
pydantic."""


class ListScenarios(argparse.Action):
    """``--list-scenarios``: prints the shipped scenarios and exits 0 at once, as ``--version``
    does, so that a command's required arguments are not asked for."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        parser.exit(print_shipped())


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``scenario`` (with ``validate``, ``schema`` and ``list``) to the fedhar CLI."""
    parser = subparsers.add_parser(
        "scenario",
        help="validate a scenario file, print the JSON Schema of one, list the shipped ones",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="scenario_command", metavar="ACTION")
    validate = actions.add_parser(
        "validate",
        help="check a file as its command would: 'ok: NAME' or one line per problem, exit 2",
        description="Checks FILE as the command that reads it would, and prints 'ok: NAME "
        "(KIND)'; an invalid file gives one line per problem naming the file and the key, "
        "and exit code 2.",
    )
    validate.add_argument(
        "file", metavar="FILE", help="scenario YAML, or the name of a shipped scenario"
    )
    validate.add_argument(
        "--kind",
        choices=KIND_NAMES,
        help="what FILE is (default: from its sections: fleet, study or adaptive, else run; "
        "an MCU profile needs --kind mcu)",
    )
    validate.set_defaults(func=run_validate)
    schema = actions.add_parser(
        "schema",
        help="print the JSON Schema of a kind of file",
        description="Prints the JSON Schema of KIND's files, generated from the pydantic "
        "models of fedhar.schema; docs/scenario.md documents the same keys.",
    )
    schema.add_argument(
        "--kind", choices=KIND_NAMES, default="run", help="which file (default: run)"
    )
    schema.set_defaults(func=run_schema)
    listing = actions.add_parser(
        "list",
        help="the scenarios shipped with fedhar: name, kind and file",
        description="Prints each shipped scenario's name, kind and file; commands take the "
        "name in place of a path.",
    )
    listing.set_defaults(func=lambda args: print_shipped())
    parser.set_defaults(func=lambda args: usage(parser))


def print_shipped() -> int:
    """Prints one line per shipped scenario: name, kind and file; returns 0."""
    from fedhar.schema.base import SchemaError, read_yaml
    from fedhar.schema.kinds import kind_of
    from fedhar.schema.shipped import shipped_scenarios

    shipped = shipped_scenarios()
    width = max((len(name) for name in shipped), default=0)
    for name, path in shipped.items():
        try:
            kind = kind_of(read_yaml(path))
        except SchemaError:
            kind = "unreadable"
        print(f"{name:<{width}}  {kind:<8}  {path}")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """Validates ``args.file``; 0 with ``ok: NAME (KIND)`` on stdout, else 2 with the
    problems on stderr."""
    from fedhar.schema.base import SchemaError, read_yaml
    from fedhar.schema.kinds import kind_of
    from fedhar.schema.shipped import resolve_scenario

    path = resolve_scenario(args.file)
    try:
        kind = args.kind or kind_of(read_yaml(path))
        name = _load(kind, path)
    except (SchemaError, ValueError) as exc:
        print_error(exc, f"{PROG} validate: error: ")
        return 2
    print(f"ok: {name} ({kind})")
    return 0


def _load(kind: str, path: str) -> str:
    """Loads ``path`` with the loader of ``kind``'s command (which also checks the files
    it names); returns the scenario's name, or the file's stem where the kind has none."""
    if kind == "run":
        from fedhar.schema.scenario import load_scenario

        return load_scenario(path).name
    if kind == "adaptive":
        from fedhar.schema.adaptive import load_adaptive_scenario

        return load_adaptive_scenario(path)[0].name
    if kind == "compress":
        from fedhar.schema.compress import load_compress_scenario

        return load_compress_scenario(path)[0].name
    if kind == "study":
        from fedhar.studies.battery import load_study_scenario

        load_study_scenario(path)
        return Path(path).stem
    if kind == "fleet":
        from fedhar.studies.fleet import load_fleet_scenario

        return load_fleet_scenario(path).name
    from fedhar.mcu import load_profile

    return load_profile(path).name


def run_schema(args: argparse.Namespace) -> int:
    """Prints the JSON Schema of ``args.kind``'s files; returns 0."""
    from fedhar.schema.kinds import json_schema

    print(json.dumps(json_schema(args.kind), indent=1, sort_keys=True))
    return 0
