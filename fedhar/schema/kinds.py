"""The kinds of file users write, each with its pydantic model, and how to tell them apart.

A scenario's kind follows from its top-level sections: ``fleet`` makes a fleet study,
``study`` a battery-policy study, ``adaptive`` an adaptive scenario, ``compress`` a compression
study; any other is a run
scenario. MCU profiles are never guessed: they are named with ``--kind mcu``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from fedhar.schema.adaptive import AdaptiveScenario
from fedhar.schema.compress import CompressScenario
from fedhar.schema.fleet import FleetScenario
from fedhar.schema.mcu import ProfileFile
from fedhar.schema.scenario import Scenario
from fedhar.schema.study import StudyScenario

KINDS: dict[str, type[BaseModel]] = {
    "run": Scenario,
    "adaptive": AdaptiveScenario,
    "compress": CompressScenario,
    "study": StudyScenario,
    "fleet": FleetScenario,
    "mcu": ProfileFile,
}
"""Each kind of file (as ``--kind`` names it) and the model that validates it."""

COMMAND_OF_KIND = {
    "run": "fedhar run",
    "adaptive": "fedhar adaptive",
    "compress": "fedhar compress",
    "study": "fedhar study",
    "fleet": "fedhar study",
    "mcu": "fedhar estimate --mcu",
}
"""The command that reads each kind of file."""


def kind_of(raw: Any) -> str:
    """The kind of scenario of the parsed YAML ``raw`` (see the module docstring); ``"run"``
    for anything that is not a mapping, which the run scenario's validation then reports."""
    if isinstance(raw, dict):
        for section in ("fleet", "study", "adaptive", "compress"):
            if section in raw:
                return section
    return "run"


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of the files of ``kind`` as pydantic's ``model_json_schema`` writes it
    (every section under ``$defs``), marked as draft 2020-12; ``KeyError`` for an unknown
    kind. It is stricter than fedhar in one way: fedhar also takes a number written as text,
    as YAML 1.1 reads ``205.1e6``."""
    schema = KINDS[kind].model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
