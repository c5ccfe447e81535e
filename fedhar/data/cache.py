"""On-disk cache of parsed arrays, so a second load of a large text file costs a few ms.

Entries live in ``<user cache>/parsed/`` as ``.npz`` files keyed by the source file's
resolved path, size and modification time and by a parser version, so editing or replacing
the source, or changing a parser, invalidates them. Writes are atomic (temporary file then
rename), so concurrent loaders never read a half-written entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fedhar.data.paths import user_cache_dir
from fedhar.data.types import LoadReport
from fedhar.files import atomic_open

Arrays = dict[str, np.ndarray]


def cache_path(source: Path, kind: str) -> Path:
    """Where the parsed arrays of ``source`` for parser ``kind`` are cached."""
    stat = source.stat()
    key = f"{kind}|{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return user_cache_dir() / "parsed" / f"{kind}-{source.name}-{digest}.npz"


def cached_arrays(
    source: Path, kind: str, parse: Callable[[], Arrays], *, use_cache: bool
) -> Arrays:
    """The arrays ``parse()`` returns for ``source``: read from the cache when a valid entry
    exists, else parsed and (when ``use_cache``) stored. ``kind`` names the parser and its
    version, e.g. ``"wisdm2019-v1"``; arrays must not be object arrays."""
    if not use_cache:
        return parse()
    path = cache_path(source, kind)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {name: npz[name] for name in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            path.unlink(missing_ok=True)
    arrays = parse()
    # A read-only or full cache only costs speed: the parsed arrays are still returned.
    with contextlib.suppress(OSError), atomic_open(path) as fh:
        np.savez(fh, **arrays)
    return arrays


def report_issues(report: LoadReport, file: str, arrays: Arrays) -> None:
    """Adds the skipped records a parser stored as ``issue_line`` (1-based line numbers) and
    ``issue_reason`` arrays to ``report``, naming ``file``."""
    lines = arrays["issue_line"].tolist()
    reasons = arrays["issue_reason"].tolist()
    for line, reason in zip(lines, reasons, strict=True):
        report.skip(file, int(line), str(reason))
