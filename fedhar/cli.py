"""The ``fedhar`` command line. Each sub-command lives in its own module of
:mod:`fedhar.commands`, which exposes ``register(subparsers)``; the parser it adds sets
``func(args) -> int`` as its default.

:func:`main` is also the one place where a failure becomes an exit code: input fedhar cannot
use (:class:`fedhar.errors.InputError`, from any layer) prints its lines on stderr and exits 2;
Ctrl-C prints one line and exits 130; a reader that closes the pipe (``fedhar ... | head``)
ends the command quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from fedhar import __version__
from fedhar.errors import InputError

COMMANDS = (
    "data",
    "run",
    "estimate",
    "adaptive",
    "compress",
    "study",
    "export",
    "compare",
    "scenario",
)


class _Parser(argparse.ArgumentParser):
    """A parser whose usage errors are input errors: one line naming the argument, exit 2
    (argparse would print the usage first)."""

    def error(self, message: str) -> NoReturn:
        raise InputError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser(only: tuple[str, ...] | None = None) -> argparse.ArgumentParser:
    """The top-level parser with every sub-command registered, or just those in ``only``.

    Command modules import heavy libraries (torch, flwr); registering only the command that
    runs keeps ``fedhar data info`` or ``fedhar --version`` from paying for all of them.
    """
    parser = _Parser(
        prog="fedhar",
        description="Federated on-device personalization simulator for HAR on microcontrollers.",
    )
    parser.add_argument("--version", action="version", version=f"fedhar {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS if only is None else only:
        importlib.import_module(f"fedhar.commands.{name}").register(sub)
    return parser


EXIT_INPUT = 2
"""Exit code of input fedhar cannot use (as argparse uses for bad arguments)."""
EXIT_INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT), as shells report it."""
EXIT_PIPE = 141
"""Exit code when the reader of stdout has gone (128 + SIGPIPE), as shells report it."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fedhar`` console script; returns the process exit code."""
    try:
        code = _dispatch(argv)
        sys.stdout.flush()  # a closed pipe fails here, not at exit
        return code
    except InputError as exc:
        for line in exc.lines or [str(exc)]:
            print(f"error: {line}", file=sys.stderr)
        return EXIT_INPUT
    except SystemExit as exc:  # --help, --version, and commands' own usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        print("fedhar: interrupted; results written so far are kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whatever is still buffered for the closed pipe must not fail again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE


def _dispatch(argv: list[str] | None) -> int:
    """Parses ``argv`` and runs the chosen sub-command; returns its exit code."""
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
