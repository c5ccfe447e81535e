"""The ``fedhar`` command line. Each sub-command lives in its own module of
:mod:`fedhar.commands`, which exposes ``register(subparsers)``; the parser it adds sets
``func(args) -> int`` as its default.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fedhar import __version__

COMMANDS = ("data", "run", "estimate", "adaptive", "study")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="fedhar",
        description="Federated on-device personalization simulator for HAR on microcontrollers.",
    )
    parser.add_argument("--version", action="version", version=f"fedhar {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"fedhar.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"fedhar.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fedhar`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
