"""Class selection and mapping, shared by every loader.

A dataset has raw labels (WISDM 2019 codes ``"A"``, HAPT ids ``"1"``, WISDM v1.1 names
``"Walking"``) and a canonical lower-case name for each. A request is a list of entries; each
entry is a canonical name or raw label (case-insensitive), or ``"new_name=a+b"`` to merge
several raw labels or names into one class. The output classes are the entries in order.
"""

from __future__ import annotations

from fedhar.errors import ScenarioValueError


def select_classes(
    dataset: str,
    vocabulary: dict[str, str],
    requested: list[str] | None,
    default: list[str],
) -> tuple[list[str], dict[str, int]]:
    """Output class names and the map raw label → output class index.

    Args:
        dataset: dataset name, for messages.
        vocabulary: raw label → canonical name, in the dataset's own order.
        requested: class entries as described in the module docstring, or ``None`` for
            ``default``.
        default: the default entries.

    Raises:
        ValueError: naming the entry that matches no label, or a label claimed twice.
    """
    entries = list(default if requested is None else requested)
    if not entries:
        raise ScenarioValueError("data.classes", f"{dataset}: classes must not be empty")
    lookup: dict[str, str] = {}
    for raw, name in vocabulary.items():
        lookup[raw.lower()] = raw
        lookup[name.lower()] = raw
    names: list[str] = []
    mapping: dict[str, int] = {}
    for entry in entries:
        name, _, members = str(entry).partition("=")
        if not name.strip():
            raise ScenarioValueError(
                "data.classes", f"{dataset}: class entry {entry!r} has no name before '='"
            )
        parts = members.split("+") if members else [name]
        for part in parts:
            raw = lookup.get(part.strip().lower())
            if raw is None:
                allowed = ", ".join(f"{r} ({n})" for r, n in vocabulary.items())
                raise ScenarioValueError(
                    "data.classes",
                    f"{dataset}: class {part.strip()!r} in {entry!r} is not a known label; "
                    f"expected one of: {allowed}",
                )
            if raw in mapping:
                raise ScenarioValueError(
                    "data.classes", f"{dataset}: label {raw!r} is selected twice (in {entry!r})"
                )
            mapping[raw] = len(names)
        names.append(name.strip().lower() if members else vocabulary[lookup[name.lower()]])
    return names, mapping
