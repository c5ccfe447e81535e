"""Worker processes that leave Ctrl-C to their parent.

A terminal's Ctrl-C reaches the whole process group. The parent turns it into one line and
exit 130 (:func:`fedhar.cli.main`) and stops its workers; a worker that also raised
``KeyboardInterrupt`` (even while still importing) would print its traceback over that line.
Workers are started inside :func:`spawning`: a process started while SIGINT is ignored
inherits that across ``exec``, and Python then installs no SIGINT handler of its own, so the
worker ignores Ctrl-C from its first instruction. The price: a Ctrl-C that arrives while the
parent is inside :func:`spawning` (the few milliseconds it takes to start a worker) is ignored
by the parent too, and a second one is needed; callers keep the block to the calls that really
start a process.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def spawning() -> Iterator[None]:
    """Ignores SIGINT in this process while the block starts worker processes, then restores
    the handler. Off the main thread (where handlers cannot change) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
