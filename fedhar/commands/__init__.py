"""Sub-commands of the fedhar CLI, one module each."""

from __future__ import annotations

import sys


def print_error(exc: Exception, prefix: str = "error: ") -> None:
    """Prints ``exc`` to stderr, one ``prefix``-ed line per line of its message: an invalid
    file (:class:`fedhar.schema.base.SchemaError`) gives one line per problem."""
    for line in str(exc).splitlines() or [""]:
        print(f"{prefix}{line}", file=sys.stderr)
