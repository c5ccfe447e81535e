"""The Flower app that the engines run: this repository, a Flower app project.

The repository's ``pyproject.toml`` carries ``[tool.flwr.app]``: its components
(``server.server_app:app``, ``clients.client_app:app``), its default run config and what
``flwr run`` packs into the app bundle (the two apps and the scenarios). So ``flwr run .``
runs it as any Flower app, and SuperNodes load the apps from the bundle they receive.

The installed distribution is the library, ``fedhar``, alone: ``server`` and ``clients`` are
the app's own modules, never installed as top-level packages. The in-process and Ray engines
import them from the app directory, as Flower does: :func:`app_dir` finds it (the checkout
``fedhar`` runs from, or ``$FEDHAR_APP_DIR``) and :func:`load_component` puts it first on
``sys.path`` and on ``PYTHONPATH`` (for Ray's worker processes).
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import fedhar

APP_DIR_ENV = "FEDHAR_APP_DIR"


class EngineError(RuntimeError):
    """An engine could not start or did not finish the run."""


@dataclass(frozen=True)
class AppProject:
    """A Flower app project: its directory and its ``[tool.flwr.app]`` table.

    Attributes:
        directory: the directory holding ``pyproject.toml``.
        publisher: ``[tool.flwr.app] publisher``.
        serverapp: reference of the ServerApp, ``module:attribute``.
        clientapp: reference of the ClientApp, ``module:attribute``.
        config: the default run config.
    """

    directory: Path
    publisher: str
    serverapp: str
    clientapp: str
    config: dict[str, object]


def app_dir() -> Path:
    """The app directory: ``$FEDHAR_APP_DIR``, else the checkout this ``fedhar`` runs from."""
    configured = os.environ.get(APP_DIR_ENV, "")
    return Path(configured).resolve() if configured else Path(fedhar.__file__).resolve().parents[1]


def load_project(directory: Path | None = None) -> AppProject:
    """Reads the ``[tool.flwr.app]`` table of ``directory`` (default: :func:`app_dir`).

    Raises:
        EngineError: no ``pyproject.toml`` with a ``[tool.flwr.app]`` table there.
    """
    directory = app_dir() if directory is None else directory
    path = directory / "pyproject.toml"
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))["tool"]["flwr"]["app"]
        components = table["components"]
        return AppProject(
            directory=directory,
            publisher=str(table["publisher"]),
            serverapp=str(components["serverapp"]),
            clientapp=str(components["clientapp"]),
            config=dict(table.get("config", {})),
        )
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise EngineError(
            f"{path}: expected a Flower app project with [tool.flwr.app] publisher and "
            f"components ({type(exc).__name__}: {exc}); run from a fedhar checkout or set "
            f"{APP_DIR_ENV}"
        ) from None


def load_component(reference: str, directory: Path) -> ModuleType:
    """The module of a component ``module:attribute``, imported from the app ``directory``
    (first on ``sys.path``, and on ``PYTHONPATH`` for the worker processes an engine starts).
    """
    root = str(directory)
    if root not in sys.path:
        sys.path.insert(0, root)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])
    return importlib.import_module(reference.split(":", 1)[0])
