"""Worker processes that leave Ctrl-C to their parent.

A terminal's Ctrl-C reaches the whole process group. The parent turns it into one line and
exit 130 (:func:`fedhar.cli.main`) and stops its workers; a worker that also raised
``KeyboardInterrupt`` (even while still importing) would print its traceback over that line.

* :func:`spawn_context` starts workers through a launcher script that ignores SIGINT and then
  ``exec``s this Python: an ignored signal stays ignored across ``exec``, and Python then
  installs no SIGINT handler of its own, so the worker ignores Ctrl-C from its first
  instruction, while the parent's own handler never changes (a Ctrl-C that arrives while a
  worker starts is the parent's, as at any other time).
* :func:`ignore_sigint` is the initializer of a pool of forked workers (which start as a copy of
  the parent, imports done, so only the instant before the initializer runs is exposed).
"""

from __future__ import annotations

import atexit
import functools
import multiprocessing
import os
import shlex
import shutil
import signal
import sys
import tempfile
from multiprocessing.context import SpawnContext
from pathlib import Path


@functools.cache
def _launcher() -> Path:
    """An executable ``sh`` script, private to this process and removed at its exit, that
    ignores SIGINT and ``exec``s ``sys.executable`` with its arguments."""
    directory = Path(tempfile.mkdtemp(prefix="fedhar-workers-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = directory / "python"
    path.write_text(f"#!/bin/sh\ntrap '' INT\nexec {shlex.quote(sys.executable)} \"$@\"\n")
    os.chmod(path, 0o700)
    return path


def spawn_context() -> SpawnContext:
    """The ``spawn`` multiprocessing context, its workers started with SIGINT ignored (see the
    module docstring). It sets the executable of every ``spawn`` start in this process."""
    context = multiprocessing.get_context("spawn")
    context.set_executable(str(_launcher()))
    return context


def ignore_sigint() -> None:
    """Ignores SIGINT in this process: the initializer of a pool of forked workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
