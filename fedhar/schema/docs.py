"""The reference of every file users write, generated from the schema: ``docs/scenario.md``.

``python -m fedhar.schema.docs > docs/scenario.md`` writes it; a test checks that it is current.
"""

from __future__ import annotations

import inspect
import typing

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from fedhar.schema.adaptive import AdaptiveScenario
from fedhar.schema.base import aliases, bare_type, expected
from fedhar.schema.compress import CompressScenario
from fedhar.schema.fleet import FleetScenario
from fedhar.schema.mcu import ProfileFile, Sourced
from fedhar.schema.policies import POLICY_KINDS
from fedhar.schema.scenario import Scenario
from fedhar.schema.study import StudyScenario

INTRO = """\
# Scenario files

The YAML files users write, key by key: run scenarios (`fedhar run SCENARIO --out DIR`),
adaptive scenarios (`fedhar adaptive`), study scenarios (`fedhar study`), the policies their
battery sections name, and MCU profiles (`fedhar/mcu/profiles/`, `fedhar estimate --mcu FILE`).

Unknown keys are errors. An invalid file reports every problem at once, one line each naming
the file, the key path, what was expected and what was found, and the command exits with
code 2:

```
bad.yaml: data.windw: unknown key, expected one of: dataset, data_dir, classes, ...
bad.yaml: name: missing required key, expected a non-empty string
bad.yaml: pretrain.lr: expected a finite number > 0, got 'fast'
```

This page is generated from `fedhar/schema/` by `python -m fedhar.schema.docs >
docs/scenario.md`; a test checks that it is current."""

KINDS = {
    "charging": "Charging habits",
    "personalization": "Personalization policies",
    "threshold": "Threshold policies",
}

Documented = dict[type[BaseModel], str]
"""Each section model documented so far, with where: ``"`battery.cell` of a run scenario"``."""


def schema_markdown() -> str:
    """The reference of every file users write, as Markdown (the text of ``docs/scenario.md``)."""
    documented: Documented = {}
    lines = [INTRO, "", "## Old key names", ""]
    lines += [
        "Renamed keys are still read under their old names; a file gives one name or the other.",
        "",
        "| file | key | old name |",
        "|---|---|---|",
    ]
    for kind, model in (("run, adaptive", Scenario), ("study", StudyScenario)):
        lines += [f"| {kind} | `{key}` | `{old}` |" for key, old in _renamed(model)]
    lines += ["", "## Run scenarios (`fedhar run`)", ""]
    lines += _file(Scenario, "a run scenario", documented)
    lines += ["", "## Adaptive scenarios (`fedhar adaptive`)", ""]
    lines.append("A run scenario with one more section, `adaptive` (`fedhar run` rejects it).")
    adaptive = AdaptiveScenario.model_fields["adaptive"]
    lines += _section("adaptive", adaptive, "an adaptive scenario", documented)
    lines += ["", "## Compression scenarios (`fedhar compress`)", ""]
    lines.append("A run scenario with one more section, `compress` (`fedhar run` rejects it).")
    compress = CompressScenario.model_fields["compress"]
    lines += _section("compress", compress, "a compression scenario", documented)
    lines += ["", "## Study scenarios (`fedhar study`)", ""]
    lines += _file(StudyScenario, "a study scenario", documented)
    lines += ["", "## Fleet scenarios (`fedhar study`, with a `fleet` section)", ""]
    lines.append(
        "One simulated wearable per real user: its training windows arrive along the daily "
        "schedule, its personalization jobs train through the C library and its F1 is measured."
    )
    lines += _file(FleetScenario, "a fleet scenario", documented)
    lines += ["", "## Policies", ""]
    lines += [
        "A run scenario's `battery.charging`, `battery.personalization` and "
        "`battery.threshold`, and every entry of a study's grid, is a policy by name with its "
        "parameters: `{name: NAME, params: {...}}`. `params` may be left out when every "
        "parameter has a default.",
    ]
    for kind, registry in POLICY_KINDS.items():
        lines += ["", f"### {KINDS[kind]} (`{kind}`)"]
        for name, params in registry.items():
            lines += ["", f"#### `{name}`", "", inspect.cleandoc(params.__doc__ or "")]
            if params.model_fields:
                lines += ["", *_table(params, list(params.model_fields.items()))]
    lines += ["", "## MCU profiles (`fedhar/mcu/profiles/*.yaml`)", ""]
    lines += _file(ProfileFile, "an MCU profile", documented)
    lines += ["", "### Sourced numbers", "", inspect.cleandoc(Sourced.__doc__ or "")]
    lines += ["", *_table(Sourced, list(Sourced.model_fields.items()))]
    return "\n".join(lines) + "\n"


def _file(model: type[BaseModel], where: str, documented: Documented) -> list[str]:
    """The top-level keys of a file (``where`` names its kind), then each of its sections."""
    top = [(n, f) for n, f in model.model_fields.items() if _section_of(f) is None]
    lines = [inspect.cleandoc(model.__doc__ or ""), "", *_table(model, top)]
    return lines + _sections(model, "", where, documented)


def _sections(model: type[BaseModel], prefix: str, where: str, documented: Documented) -> list[str]:
    """A heading and a table for every section below ``model``."""
    lines: list[str] = []
    for name, info in model.model_fields.items():
        if _section_of(info) is not None:
            path = f"{prefix}{name}" + ("[]" if _is_list(info) else "")
            lines += _section(path, info, where, documented)
    return lines


def _section(path: str, info: FieldInfo, where: str, documented: Documented) -> list[str]:
    """The heading and table of the section at ``path``, then its own sections; a model
    already documented elsewhere refers to it."""
    section = _section_of(info)
    assert section is not None
    lines = ["", f"### `{path}`", ""]
    if section in documented:
        return [*lines, f"The keys of {documented[section]}, above."]
    documented[section] = f"`{path}` of {where}"
    lines += [inspect.cleandoc(section.__doc__ or ""), ""]
    lines += _table(section, list(section.model_fields.items()))
    return lines + _sections(section, f"{path}.", where, documented)


def _section_of(info: FieldInfo) -> type[BaseModel] | None:
    """The model a field holds (directly or as a list of them), unless it is a sourced number."""
    base = bare_type(info.annotation)
    if typing.get_origin(base) is list:
        base = typing.get_args(base)[0]
    if isinstance(base, type) and issubclass(base, BaseModel) and not issubclass(base, Sourced):
        return base
    return None


def _is_list(info: FieldInfo) -> bool:
    return typing.get_origin(bare_type(info.annotation)) is list


def _renamed(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """(key path, old name) of every key below ``model`` that is still read under an old name."""
    pairs: list[tuple[str, str]] = []
    for name, info in model.model_fields.items():
        pairs += [(f"{prefix}{name}", old) for old in aliases(info)]
        section = _section_of(info)
        if section is not None:
            pairs += _renamed(section, f"{prefix}{name}.")
    return pairs


def _table(owner: type[BaseModel], fields: list[tuple[str, FieldInfo]]) -> list[str]:
    rows = ["| key | accepts | default | meaning |", "|---|---|---|---|"]
    for name, f in fields:
        if f.is_required():
            default = "required"
        else:
            value = to_jsonable_python(f.get_default(call_default_factory=True))
            dumped = yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip()
            default = f"`{dumped.removesuffix('...').strip()}`"
        accepts = _accepts(f).replace("|", "\\|")
        meaning = f.description or ""
        old = aliases(f)
        if old:
            meaning += " Old name: " + ", ".join(f"`{a}`" for a in old) + "."
        rows.append(f"| `{name}` | {accepts} | {default} | {meaning.strip()} |")
    return rows


def _accepts(info: FieldInfo) -> str:
    """What a field accepts; a sourced number says what its ``value`` accepts."""
    base = bare_type(info.annotation)
    if isinstance(base, type) and issubclass(base, Sourced):
        value = base.model_fields["value"]
        text = f"`{{value, basis, source}}`, value {expected(value.annotation, value)}"
        optional = base is not info.annotation
        return f"{text}, or null" if optional else text
    return expected(info.annotation, info)


if __name__ == "__main__":
    print(schema_markdown(), end="")
