"""Where datasets and caches live, and the one official download (WISDM v1.1).

The data directory is chosen in this order: the ``--data-dir`` flag, the ``FEDHAR_DATA_DIR``
environment variable, then ``<user cache>/data``. The user cache is ``FEDHAR_CACHE_DIR`` if
set, else ``$XDG_CACHE_HOME/fedhar``, else ``~/.cache/fedhar``.

Inside a data directory every dataset has its own folder, laid out as in ``../shared/data``:
``wisdm_v1.1/``, ``wisdm_2019/`` and ``uci_har/``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from fedhar.errors import InputError

WISDM_V11_URL = "https://www.cis.fordham.edu/wisdm/includes/datasets/latest/WISDM_ar_latest.tar.gz"
WISDM_V11_ARCHIVE = "WISDM_ar_latest.tar.gz"
WISDM_V11_MEMBER = "WISDM_ar_v1.1/WISDM_ar_v1.1_raw.txt"
# sha256 of the uncompressed WISDM_ar_v1.1_raw.txt as published by a third-party parser (see
# ../shared/data/README.md, section 3). The archive itself has no published hash, so the
# download is verified on the raw member it contains.
WISDM_V11_RAW_SHA256 = "9aba4b1eaece56ab6d9187b16fc010c176e464750a4ec44c9d833514ecc1fa2e"


class DatasetMissingError(InputError):
    """A dataset's files are not in the data directory, or could not be downloaded.

    The message names the directory searched, the files expected there and how to get them.
    """


class ChecksumError(Exception):
    """A file's sha256 differs from the expected one."""


def user_cache_dir() -> Path:
    """The fedhar user cache: ``FEDHAR_CACHE_DIR``, else ``$XDG_CACHE_HOME/fedhar``,
    else ``~/.cache/fedhar``. Not created here."""
    explicit = os.environ.get("FEDHAR_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "fedhar"


def resolve_data_dir(flag: str | Path | None) -> Path:
    """The data directory: ``flag`` if given, else ``FEDHAR_DATA_DIR``, else
    ``<user cache>/data``. The directory need not exist; loaders raise
    :class:`DatasetMissingError` when the files they need are not there."""
    if flag is not None and str(flag) != "":
        return Path(flag).expanduser()
    env = os.environ.get("FEDHAR_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return user_cache_dir() / "data"


def missing_error(
    dataset: str, searched: list[Path], expected: str, how: str
) -> DatasetMissingError:
    """A :class:`DatasetMissingError` with a one-line message that names the dataset, the
    directories searched, the files expected and how to obtain them."""
    where = ", ".join(str(p) for p in searched)
    return DatasetMissingError(
        f"dataset {dataset!r} not found: searched {where}; expected {expected}; {how}"
    )


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks of ``chunk_bytes``."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Raises :class:`ChecksumError` naming the file and both hashes unless the file's
    sha256 equals ``expected`` (hex, case-insensitive)."""
    actual = sha256_file(path)
    if actual != expected.lower():
        raise ChecksumError(f"{path}: sha256 is {actual}, expected {expected.lower()}")


def download(url: str, dest: Path, *, timeout_s: float = 30.0) -> Path:
    """Downloads ``url`` to ``dest`` through a ``.part`` file, so an interrupted download never
    leaves a truncated ``dest``. Raises :class:`DatasetMissingError` saying the machine looks
    offline when the host cannot be reached."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(part, "wb") as out:
            shutil.copyfileobj(response, out)
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise DatasetMissingError(
            f"could not download {url} to {dest} (offline or host unreachable: {reason}); "
            f"download it on a connected machine and copy it to {dest}"
        ) from exc
    os.replace(part, dest)
    return dest


def sha256_tar_member(archive: Path, member: str) -> str:
    """Hex sha256 of one member of a ``.tar.gz`` archive, without extracting it to disk."""
    with tarfile.open(archive, "r:gz") as tar:
        try:
            handle = tar.extractfile(member)
        except KeyError as exc:
            raise ChecksumError(f"{archive}: has no member {member}") from exc
        if handle is None:
            raise ChecksumError(f"{archive}: member {member} is not a regular file")
        digest = hashlib.sha256()
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def fetch_wisdm_v11(
    data_dir: Path,
    *,
    url: str = WISDM_V11_URL,
    raw_sha256: str = WISDM_V11_RAW_SHA256,
    timeout_s: float = 30.0,
) -> Path:
    """Downloads the official WISDM v1.1 archive into ``data_dir/wisdm_v1.1/`` unless it is
    already there, checks the sha256 of its raw member and returns the archive path.

    A download whose raw member has the wrong hash is deleted and :class:`ChecksumError` is
    raised. Offline, raises :class:`DatasetMissingError` saying so.
    """
    archive = data_dir / "wisdm_v1.1" / WISDM_V11_ARCHIVE
    fresh = not archive.is_file()
    if fresh:
        download(url, archive, timeout_s=timeout_s)
    actual = sha256_tar_member(archive, WISDM_V11_MEMBER)
    if actual != raw_sha256.lower():
        if fresh:
            archive.unlink()
        raise ChecksumError(
            f"{archive}: member {WISDM_V11_MEMBER} has sha256 {actual}, expected "
            f"{raw_sha256.lower()}" + (" (download deleted)" if fresh else "")
        )
    return archive
