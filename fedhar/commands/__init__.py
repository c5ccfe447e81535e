"""Sub-commands of the fedhar CLI, one module each."""

from __future__ import annotations

import argparse
import sys

DATA_DIR_DEFAULT = "the scenario's data.data_dir, then $FEDHAR_DATA_DIR, then the user cache"
"""Where a command that reads a scenario's data looks when ``--data-dir`` is not given."""


def print_error(exc: Exception, prefix: str = "error: ") -> None:
    """Prints ``exc`` to stderr, one ``prefix``-ed line per line of its message: an invalid
    file (:class:`fedhar.schema.base.SchemaError`) gives one line per problem."""
    for line in str(exc).splitlines() or [""]:
        print(f"{prefix}{line}", file=sys.stderr)


def add_data_dir(parser: argparse.ArgumentParser, default: str = DATA_DIR_DEFAULT) -> None:
    """Adds ``--data-dir DIR`` (dest ``data_dir``, default None) to ``parser``; ``default``
    says in the help where the command looks without it. Every command that reads a dataset
    takes the option under this one name and metavar."""
    parser.add_argument(
        "--data-dir", metavar="DIR", default=None, help=f"dataset directory (default: {default})"
    )


def add_study_arguments(parser: argparse.ArgumentParser, section: str, journal: str) -> None:
    """The arguments of a study command that reads a scenario with a ``section`` and keeps a
    journal file ``journal`` in its output directory: ``SCENARIO``, ``--out DIR``,
    ``--data-dir`` and ``--resume``."""
    parser.add_argument(
        "scenario", metavar="SCENARIO", help=f"scenario YAML with a `{section}:` section"
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="output directory (created if missing)"
    )
    add_data_dir(parser)
    parser.add_argument(
        "--resume",
        action="store_true",
        help=f"continue an interrupted study in DIR: what DIR/{journal} holds is kept",
    )


def usage(parser: argparse.ArgumentParser) -> int:
    """Prints ``parser``'s help to stderr and returns exit code 2: a command group (``fedhar
    data``, ``fedhar scenario``) given no action."""
    parser.print_help(sys.stderr)
    return 2
