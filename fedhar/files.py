"""Atomic, group-readable writes: the one way fedhar writes an output or a cache file.

:func:`atomic_open` writes into a hidden temporary file beside the target, flushes and fsyncs
it, gives it the mode a plain ``open`` would (``0o666`` less the umask, so ``0644`` under the
usual ``022``) and renames it over the target. A reader never sees a half-written file, an
interrupted write leaves the previous file as it was, and a failed one leaves no temporary file.
Folders are made with :func:`make_dirs` (``0o777`` less the umask: ``0755``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_dirs(path: str | Path) -> Path:
    """Creates folder ``path`` and its parents (if missing) with the umask's mode; returns it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """A file handle whose content replaces ``path`` atomically when the block ends.

    Args:
        path: the target file (its folder is created).
        mode: ``"wb"`` or ``"w"`` (text; ``kwargs`` such as ``encoding`` and ``newline`` go
            to :func:`os.fdopen`).

    If the block raises, the target is left as it was and the temporary file is removed.
    """
    path = Path(path)
    make_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Replaces ``path`` atomically with ``data`` (``str`` is written as UTF-8, newlines as
    given)."""
    if isinstance(data, str):
        with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(data)
    else:
        with atomic_open(path, "wb") as fh:
            fh.write(data)
