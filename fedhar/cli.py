"""The ``fedhar`` command line. Each sub-command lives in its own module of
:mod:`fedhar.commands`, which exposes ``register(subparsers)``; the parser it adds sets
``func(args) -> int`` as its default.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fedhar import __version__

COMMANDS = ("data", "run", "estimate", "adaptive", "study", "export", "compare", "scenario")


def build_parser(only: tuple[str, ...] | None = None) -> argparse.ArgumentParser:
    """The top-level parser with every sub-command registered, or just those in ``only``.

    Command modules import heavy libraries (torch, flwr); registering only the command that
    runs keeps ``fedhar data info`` or ``fedhar --version`` from paying for all of them.
    """
    parser = argparse.ArgumentParser(
        prog="fedhar",
        description="Federated on-device personalization simulator for HAR on microcontrollers.",
    )
    parser.add_argument("--version", action="version", version=f"fedhar {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS if only is None else only:
        importlib.import_module(f"fedhar.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fedhar`` console script; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        parser = build_parser((argv[0],))
    elif argv == ["--version"]:
        parser = build_parser(())
    else:
        parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
