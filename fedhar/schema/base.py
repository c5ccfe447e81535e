"""One way to read and validate every file users write: scenarios, study scenarios, adaptive
scenarios and MCU profiles.

Each file is a :class:`Strict` pydantic model (unknown keys are errors; the result is frozen).
:func:`load_yaml_model` reads the YAML and validates it; every problem of the file is reported at
once in one :class:`SchemaError`, one line per problem, each naming the file, the key path, what
was expected and what was found::

    scenarios/x.yaml: pretrain.lr: expected a finite number > 0, got 'fast'
    scenarios/x.yaml: data.windw: unknown key, expected one of: dataset, data_dir, ...
    scenarios/x.yaml: name: missing required key, expected a non-empty string

:func:`expected` puts a field's accepted values into the same words for the generated reference
(``docs/scenario.md``).
"""

from __future__ import annotations

import enum
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

import annotated_types
import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from fedhar.errors import InputError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base of every file and section: unknown keys are errors, every number is finite (NaN
    and infinities are errors), and the result is frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SchemaError(InputError):
    """An invalid file: ``lines`` holds one line per problem,
    ``FILE: key.path: expected <what>, got <what was found>``; the message joins them."""


class KeyProblem(ValueError):
    """Raised by a check that spans several keys, to name the key at fault: ``key`` is a dotted
    path below the model whose validator raises it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def read_yaml(path: str | Path) -> Any:
    """The parsed content of a YAML file.

    Raises:
        SchemaError: one line for a missing or unreadable file, or invalid YAML (with its line
            and column).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemaError([f"{path}: file not found"]) from None
    except UnicodeDecodeError as exc:
        raise SchemaError([f"{path}: cannot read: not UTF-8 text (byte {exc.start})"]) from None
    except OSError as exc:
        raise SchemaError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SchemaError([f"{path}: {where}invalid YAML: {problem}"]) from None


def load_yaml_model(path: str | Path, model: type[M], context: dict[str, Any] | None = None) -> M:
    """Reads the YAML file ``path`` and validates it as ``model`` (``context`` goes to its
    validators).

    Raises:
        SchemaError: every problem of the file, one line each.
    """
    return validate_model(read_yaml(path), model, str(path), context)


def validate_model(
    raw: Any, model: type[M], source: str, context: dict[str, Any] | None = None
) -> M:
    """Validates already-parsed data as ``model``; ``source`` names it in the error lines.

    Raises:
        SchemaError: every problem, one line each.
    """
    if not isinstance(raw, dict):
        raise SchemaError(
            [f"{source}: expected a mapping of keys at the top level, got {found(raw)}"]
        )
    try:
        return model.model_validate(raw, context=context)
    except ValidationError as exc:
        raise SchemaError(error_lines(source, model, exc)) from None


def error_lines(source: str, model: type[BaseModel], exc: ValidationError) -> list[str]:
    """One line per pydantic error of validating ``model``: ``SOURCE: key.path: ...``."""
    return [f"{source}: {_describe(model, error)}" for error in exc.errors()]


@dataclass(frozen=True)
class _Spot:
    """Where an error's location leads in the schema."""

    keys: tuple[str, ...]  # the key path in the file (union tags left out)
    owner: type[BaseModel] | None  # the model holding the last key
    annotation: Any  # the type at the last key (None: not in the schema)
    info: FieldInfo | None  # the field at the last key, when it is a model's field


def _describe(model: type[BaseModel], error: Any) -> str:
    kind = error["type"]
    spot = _walk(model, tuple(error["loc"]))
    path = ".".join(spot.keys)
    at = f"{path}: " if path else ""
    if kind == "extra_forbidden":
        key = spot.keys[-1]
        field = _field_named(spot.owner, key) if spot.owner else None
        if field is not None and field != key:
            return f"{at}old name of '{field}', which is also given: keep one"
        allowed = ", ".join(spot.owner.model_fields) if spot.owner else ""
        return f"{at}unknown key, expected one of: {allowed}"
    if kind == "missing":
        return f"{at}missing required key, expected {expected(spot.annotation, spot.info)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = str(error["ctx"]["discriminator"]).strip("'")
        tags = ", ".join(repr(t) for t in _tags(spot.annotation))
        if kind == "union_tag_not_found" and isinstance(error["input"], dict):
            return f"{path}.{tag}: missing required key, expected one of {tags}"
        if kind == "union_tag_not_found":
            return (
                f"{at}expected {expected(spot.annotation, spot.info)}, got {found(error['input'])}"
            )
        return f"{path}.{tag}: expected one of {tags}, got {error['ctx']['tag']!r}"
    if kind == "value_error":
        cause = error["ctx"]["error"]
        if isinstance(cause, KeyProblem):
            path = ".".join((*spot.keys, cause.key))
            at = f"{path}: "
        return f"{at}{cause}"
    if spot.annotation is None:
        return f"{at}{error['msg']}, got {found(error['input'])}"
    return f"{at}expected {expected(spot.annotation, spot.info)}, got {found(error['input'])}"


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> _Spot:
    """Follows an error location through the schema. A discriminated union's tag and the
    ``[key]`` marker of a mapping's bad key, which pydantic puts in the location, are not keys
    of the file and are left out."""
    keys: list[str] = []
    owner: type[BaseModel] | None = model
    annotation: Any = model
    info: FieldInfo | None = None
    for i, part in enumerate(loc):
        annotation = bare_type(annotation)
        member = _tagged_member(annotation, part)
        if member is not None:
            annotation = member
            continue
        if part == "[key]":
            continue
        keys.append(str(part))
        info = None
        origin = typing.get_origin(annotation)
        if _is_model(annotation):
            owner = annotation
            name = _field_named(annotation, str(part))
            info = annotation.model_fields[name] if name else None
            annotation = info.annotation if info else None
        elif origin is list or _variadic(annotation):
            annotation = typing.get_args(annotation)[0]
        elif origin is tuple:
            args = typing.get_args(annotation)
            annotation = args[part] if isinstance(part, int) and part < len(args) else None
        elif origin is dict:
            bad_key = loc[i + 1 : i + 2] == ("[key]",)
            annotation = typing.get_args(annotation)[0 if bad_key else 1]
        else:
            annotation = None
    return _Spot(tuple(keys), owner, annotation, info)


def _field_named(model: type[BaseModel] | None, key: str) -> str | None:
    """The field of ``model`` whose name or alias is ``key``."""
    for name, info in (model.model_fields if model else {}).items():
        if key == name or key in aliases(info):
            return name
    return None


def aliases(info: FieldInfo) -> list[str]:
    """The old names a field also accepts (its ``validation_alias`` choices but its own)."""
    choices = info.validation_alias
    if isinstance(choices, AliasChoices):
        return [c for c in choices.choices if isinstance(c, str)][1:]
    return [choices] if isinstance(choices, str) else []


def bare_type(annotation: Any) -> Any:
    """``annotation`` without ``Annotated`` and without ``| None``."""
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if _is_union(annotation):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return bare_type(args[0])
    return annotation


def _variadic(annotation: Any) -> bool:
    """Whether ``annotation`` is ``tuple[X, ...]``."""
    args = typing.get_args(annotation)
    return typing.get_origin(annotation) is tuple and len(args) == 2 and args[1] is Ellipsis


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (Union, types.UnionType)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _members(annotation: Any) -> list[type[BaseModel]]:
    """The models of a union of models (a discriminated union), else nothing."""
    annotation = bare_type(annotation)
    if not _is_union(annotation):
        return []
    members = [a for a in typing.get_args(annotation) if a is not type(None)]
    return members if all(_is_model(m) for m in members) else []


def _tag_of(member: type[BaseModel]) -> str | None:
    """The ``name`` a member of a discriminated union is chosen by."""
    info = member.model_fields.get("name")
    if info is None or typing.get_origin(info.annotation) is not Literal:
        return None
    return typing.get_args(info.annotation)[0]


def _tags(annotation: Any) -> list[str]:
    return [t for t in (_tag_of(m) for m in _members(annotation)) if t is not None]


def _tagged_member(annotation: Any, part: Any) -> type[BaseModel] | None:
    for member in _members(annotation):
        if _tag_of(member) == part:
            return member
    return None


def found(value: Any) -> str:
    """Plain words for a value read from a file: ``'fast'``, ``500``, ``a mapping``."""
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    return repr(value)


def expected(annotation: Any, info: FieldInfo | None = None) -> str:
    """Plain words for what a field accepts, e.g. ``a number > 0`` or ``one of 'sgd', 'adam'``."""
    optional = _is_union(annotation) and type(None) in typing.get_args(annotation)
    text = _accepts(bare_type(annotation), info)
    return f"{text}, or null" if optional else text


def _accepts(base: Any, info: FieldInfo | None) -> str:
    origin, args = typing.get_origin(base), typing.get_args(base)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in base)
    if origin is list or _variadic(base):
        items = "a non-empty list" if _min_length(info) else "a list"
        return f"{items} whose items are each {expected(args[0])}"
    if origin is tuple:
        return "a list [" + ", ".join(expected(a) for a in args) + "]"
    if origin is dict:
        key, value = args
        if value in (Any, object):
            return "a mapping of options"
        keys = (
            ", ".join(repr(k) for k in typing.get_args(key))
            if typing.get_origin(key) is Literal
            else ""
        )
        items = "a non-empty mapping" if _min_length(info) else "a mapping"
        return f"{items} from {keys or 'names'} to {expected(value)}"
    if _members(base):
        tags = ", ".join(repr(t) for t in _tags(base))
        return f"a mapping {{name, params}} whose name is one of {tags}"
    if base is bool:
        return "true or false"
    if base is int:
        return "an integer" + _bounds(info)
    if base is float:
        return "a finite number" + _bounds(info)
    if base is str:
        return "a non-empty string" if _min_length(info) else "a string"
    if _is_model(base):
        return "a mapping with keys " + ", ".join(base.model_fields)
    if base in (Any, object):
        return "any value"
    return str(base)


def _bounds(info: FieldInfo | None) -> str:
    if info is None:
        return ""
    lower = upper = ""
    for m in info.metadata:
        if isinstance(m, annotated_types.Gt):
            lower = f"> {m.gt}"
        elif isinstance(m, annotated_types.Ge):
            lower = f">= {m.ge}"
        elif isinstance(m, annotated_types.Lt):
            upper = f"< {m.lt}"
        elif isinstance(m, annotated_types.Le):
            upper = f"<= {m.le}"
    if lower and upper:
        return f" {lower} and {upper}"
    return f" {lower or upper}" if lower or upper else ""


def _min_length(info: FieldInfo | None) -> int:
    if info is None:
        return 0
    return max((m.min_length for m in info.metadata if hasattr(m, "min_length")), default=0)
