"""The scenarios shipped with fedhar: ``scenarios/`` of the repository, installed with the
package as ``fedhar/scenarios/*.yaml`` (in the source tree ``fedhar/scenarios`` links to it).

A command given a bare name such as ``quickstart`` runs the shipped ``quickstart.yaml`` when
no file of that name is in the working directory.
"""

from __future__ import annotations

from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "scenarios"
"""The folder of the shipped scenario files."""


def shipped_scenarios() -> dict[str, Path]:
    """Each shipped scenario's name (its file stem) and file, sorted by name."""
    return {p.stem: p for p in sorted(SHIPPED_DIR.glob("*.yaml"))}


def resolve_scenario(given: str) -> str:
    """The file a command reads for the argument ``given``: ``given`` itself when it names an
    existing file or a path, else the shipped scenario of that name (with or without
    ``.yaml``); an unknown bare name comes back unchanged, for the loader to report."""
    if Path(given).exists() or Path(given).name != given:
        return given
    stem = given.removesuffix(".yaml").removesuffix(".yml")
    shipped = shipped_scenarios()
    return str(shipped[stem]) if stem in shipped else given
