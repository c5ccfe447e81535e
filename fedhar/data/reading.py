"""Reading a dataset's files: the one place where a file that cannot be read or decoded becomes
a :class:`DataFileError` naming the file, what was expected there and what was found.

Every loader reads its text files through :func:`read_data_file` (plain, or gzip-compressed
when the name ends in ``.gz``) or :func:`read_tar_member` (a member of a ``.tar.gz`` archive),
and lists folders with :func:`list_folder`. A directory where a file should be, a truncated
or corrupt archive or gzip stream, a file of another type under a data file's name (an image, a
ZIP archive, binary data) and an unreadable file are each reported in one line.
"""

from __future__ import annotations

import gzip
import tarfile
import zlib
from pathlib import Path

from fedhar.errors import InputError

_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x89PNG", "a PNG image"),
    (b"%PDF", "a PDF document"),
    (b"\x93NUMPY", "a NumPy array file"),
    (b"BZh", "bzip2-compressed data"),
    (b"\xfd7zXZ", "xz-compressed data"),
)


class DataFileError(InputError):
    """A dataset file that cannot be read or decoded; the message is one line naming it."""


def what_is(data: bytes) -> str:
    """Plain words for what a file's bytes look like: ``"a PNG image"``, ``"binary data"``,
    ``"text"`` or ``"an empty file"``."""
    if not data:
        return "an empty file"
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    return "binary data" if b"\x00" in data[:65536] else "text"


def _text(path: Path, data: bytes, expected: str) -> bytes:
    found = what_is(data)
    if found not in ("text", "an empty file"):
        raise DataFileError(f"{path}: expected {expected}, found {found}")
    return data


def read_data_file(path: Path, expected: str) -> bytes:
    """The bytes of the text data file ``path``, decompressed when its name ends in ``.gz``.

    Args:
        path: the file.
        expected: what the file should hold, for the message, e.g. ``"WISDM 2019 raw
            records (text)"``.

    Raises:
        DataFileError: a directory, an unreadable file, a gzip stream that is corrupt or cut
            short, or content that is not text.
    """
    if path.is_dir():
        raise DataFileError(f"{path}: expected {expected}, found a directory")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read {expected}: {exc.strerror or exc}") from None
    if path.suffix != ".gz":
        return _text(path, raw, expected)
    if not raw:
        raise DataFileError(f"{path}: expected gzip-compressed {expected}, found an empty file")
    try:
        return _text(path, gzip.decompress(raw), expected)
    except gzip.BadGzipFile:
        found = what_is(raw)
        raise DataFileError(f"{path}: expected gzip-compressed {expected}, found {found}") from None
    except (EOFError, zlib.error) as exc:
        raise DataFileError(
            f"{path}: expected gzip-compressed {expected}, found a corrupt or truncated gzip "
            f"stream ({exc})"
        ) from None


def read_tar_member(path: Path, member: str, expected: str) -> bytes:
    """The bytes of ``member`` of the gzip-compressed tar archive ``path``.

    Raises:
        DataFileError: a directory or unreadable file, an archive that is corrupt or cut short,
            a missing member or one that is not a regular file, or a member that is not text.
    """
    if path.is_dir():
        raise DataFileError(
            f"{path}: expected a .tar.gz archive holding {member}, found a directory"
        )
    try:
        with tarfile.open(path, "r:gz") as tar:
            try:
                handle = tar.extractfile(member)
            except KeyError:
                raise DataFileError(
                    f"{path}: expected an archive member {member}, found none"
                ) from None
            if handle is None:
                raise DataFileError(
                    f"{path}: expected member {member} to be a regular file, found another kind"
                )
            data = handle.read()
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataFileError(
            f"{path}: expected a .tar.gz archive holding {member}, found a corrupt or truncated "
            f"archive ({exc})"
        ) from None
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read the archive: {exc.strerror or exc}") from None
    return _text(path, data, f"{expected} in member {member}")


def list_folder(path: Path, expected: str) -> list[Path]:
    """The entries of folder ``path``, sorted.

    Raises:
        DataFileError: ``path`` is a file, or cannot be listed.
    """
    if path.exists() and not path.is_dir():
        raise DataFileError(f"{path}: expected a folder of {expected}, found a file")
    try:
        return sorted(path.iterdir())
    except OSError as exc:
        raise DataFileError(f"{path}: cannot list {expected}: {exc.strerror or exc}") from None
