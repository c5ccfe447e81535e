"""Progress bars for long steps: shown on an interactive terminal, silent in CI and pipes.

Lines printed while a bar is drawn go through :func:`say`, which clears the bars, writes the
line and redraws them, so a log line never lands in the middle of a bar."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    """True when stderr is a terminal and the ``CI`` environment variable is not set."""
    return "CI" not in os.environ and sys.stderr.isatty()


def progress(iterable: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """Yields from ``iterable`` with a tqdm bar on stderr labelled ``desc``; the bar is
    disabled (items pass through unchanged) unless :func:`progress_enabled`."""
    yield from tqdm(iterable, desc=desc, total=total, disable=not progress_enabled(), leave=False)


def say(line: str) -> None:
    """Prints ``line`` to stdout above any progress bar on the terminal (``tqdm.write``) and
    flushes, so that it shows at once when stdout is a pipe or a file."""
    tqdm.write(line, file=sys.stdout)
    sys.stdout.flush()
