"""The scenario file: a validated YAML description of one fedhar run.

:func:`load_scenario` reads and validates a YAML file into a :class:`Scenario`. Every problem
raises :class:`ScenarioError` whose message is one line naming the file, the key path and what
was expected, e.g. ``scenarios/x.yaml: pretrain.lr: expected a number > 0, got 'fast'``.
:func:`schema_markdown` renders the reference of every field (``docs/scenario.md``).
"""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import annotated_types
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo

from fedhar.wearable.charging import make_charging
from fedhar.wearable.policies import make_personalization_policy, make_threshold_policy
from fedhar.wearable.scenario import DeviceSection, PolicySection


class ScenarioError(ValueError):
    """An invalid scenario file; the message is one line: ``FILE: KEY.PATH: what is expected``."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    """Which recordings to load and how to cut them into windows."""

    dataset: Literal["wisdm", "wisdm2019", "hapt", "synthetic"] = Field(
        description="Dataset loader: WISDM v1.1 raw, WISDM 2019 raw, UCI HAPT raw, or the "
        "deterministic synthetic generator."
    )
    data_dir: str | None = Field(
        None,
        description="Data directory; `--data-dir` overrides it. Unset: `$FEDHAR_DATA_DIR`, "
        "then the user cache directory.",
    )
    classes: list[str] | None = Field(
        None,
        description="Class subset, by the loader's class names or codes (WISDM 2019: "
        "activity codes such as `A`). Unset: the loader's default subset.",
    )
    channels: str = Field(
        "acc", description="Sensor channels: `acc` (tri-axial accelerometer) or `acc+gyro`."
    )
    device: Literal["phone", "watch"] = Field(
        "phone", description="Recording device (WISDM 2019 only)."
    )
    target_fs: float | None = Field(
        None,
        gt=0,
        description="Resample every recording to this rate, in Hz. Unset: the dataset's "
        "native rate (recordings off the nominal rate are still resampled to it).",
    )
    window: int = Field(
        100, ge=20, le=200, description="Window length T, in samples (the paper uses 20-100)."
    )
    stride: int = Field(50, ge=1, description="Step between window starts, in samples.")
    train_fraction: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Share of each user's recording of each activity, in time order, that "
        "forms the local train set TR_i; the rest forms the test set TS_i.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra loader options passed as keywords, e.g. `n_users` for `synthetic`.",
    )


class SplitConfig(_Section):
    """How users are grouped into folds for pretraining the general model."""

    method: Literal["loso", "kfold"] = Field(
        "loso",
        description="`loso`: each user's general model is pretrained on all other users. "
        "`kfold`: users are split into `k` folds; a fold's users share a model pretrained on "
        "the other folds.",
    )
    k: int = Field(5, ge=2, description="Number of user folds for `kfold`.")


class ModelConfig(_Section):
    """The 1D-CNN architecture."""

    name: Literal["cnn3", "daghero"] = Field(
        "cnn3",
        description="`cnn3`: the CNN of Craighero et al. 2023 (Conv32-Conv64-Dense50). "
        "`daghero`: the Conv+BatchNorm+ReLU+MaxPool template of Daghero et al. 2022.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword options of the model builder (`cnn3`: `pool`; `daghero`: "
        "`channels`, `kernels`, `pool`, `hidden`).",
    )


class PretrainConfig(_Section):
    """Pretraining of the general model on a fold's pretraining users (cached)."""

    optimizer: Literal["sgd", "adam"] = Field("adam", description="Optimizer.")
    lr: float = Field(0.002, gt=0, description="Learning rate (initial, under a schedule).")
    schedule: Literal["constant", "cosine"] = Field(
        "constant",
        description="Learning-rate schedule: constant, or a half cosine from `lr` down to 0 "
        "over `epochs`.",
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum (`sgd` only).")
    weight_decay: float = Field(0.0, ge=0, description="L2 weight decay.")
    batch_size: int = Field(64, ge=1, description="Windows per batch.")
    epochs: int = Field(30, ge=1, description="Maximum number of epochs.")
    patience: int = Field(
        6, ge=1, description="Stop after this many epochs without a better validation macro-F1."
    )
    val_fraction: float = Field(
        0.15,
        ge=0,
        lt=1,
        description="Share of the pretraining users held out (by user, never by window) to "
        "choose the best epoch. 0 disables early stopping: the last epoch is kept.",
    )
    augment_rotation_deg: float = Field(
        0.0,
        ge=0,
        le=180,
        description="Largest angle, in degrees, of a random 3-D rotation of each training "
        "window's accelerometer axes (a device worn slightly differently). 0: off.",
    )
    augment_spin_deg: float = Field(
        0.0,
        ge=0,
        le=180,
        description="Largest angle, in degrees, of a random turn of each training window about "
        "the device's long (y) axis, as a phone turns in a trouser pocket; postures stay "
        "distinguishable (gravity along y or across it). 0: off.",
    )
    augment_flips: bool = Field(
        False,
        description="Also turn training windows by a random half-turn about a device axis "
        "(a phone upside down, or facing in or out, in the pocket).",
    )


class PersonalizationConfig(_Section):
    """On-device personalization of the general model on each user's TR_i."""

    modes: list[Literal["none", "tl", "full", "no_pretrain"]] = Field(
        default_factory=lambda: ["none"],
        min_length=1,
        description="Modes to run and report: `none` (the general model, No Pers.), `tl` "
        "(retrain the last dense layers), `full` (retrain all layers), `no_pretrain` (random "
        "initialisation, same budget).",
    )
    epochs: int = Field(20, ge=1, description="Personalization epochs.")
    lr: float = Field(0.01, gt=0, description="SGD learning rate.")
    batch_size: int = Field(32, ge=1, description="Windows per batch.")
    momentum: float = Field(0.0, ge=0, lt=1, description="SGD momentum.")
    warmup_epochs: int = Field(
        2, ge=0, description="Epochs that first retrain the last dense layer only (tl, full)."
    )
    tl_layers: int = Field(2, ge=1, description="Trainable dense layers, from the end, in `tl`.")


class FederationConfig(_Section):
    """How the Flower server and the simulated MCU clients run."""

    engine: Literal["inprocess", "ray", "deployment"] = Field(
        "inprocess",
        description="Flower engine: in-process (default), Ray simulation, or "
        "SuperLink/SuperNode deployment.",
    )
    rounds: int = Field(1, ge=1, description="Federated rounds.")
    aggregation: Literal["none", "fedavg", "fedavg_features"] = Field(
        "none",
        description="Aggregation of personalized updates between rounds: none, FedAvg of all "
        "layers, or FedAvg of the shared feature layers only.",
    )
    payload: Literal["int8", "float32"] = Field(
        "int8", description="Encoding of the model sent to the clients."
    )
    users: list[str] | None = Field(
        None, description="Only these user ids take part. Unset: every user."
    )


class McuConfig(_Section):
    """The simulated device."""

    profile: str = Field("stm32l496zg", description="MCU profile name (`fedhar/mcu/profiles`).")


class BatteryDeviceConfig(DeviceSection):
    """A battery-powered wearable under every client (unset: no battery). A federation round
    is a simulated period of `round_s` s that each client's device lives through: sensing,
    adaptive inference, the personalization job its policy picks (priced by the C library's
    measured cost of that job on the client's MCU profile, warm-up epochs included), radio
    and sleep. Each client reports its state of charge and energy by load; the other keys are
    those of the battery study's `device:` section (see `scenarios/battery_policies.yaml`)."""

    capacity_mah: float = Field(gt=0, description="Battery capacity, in mAh.")
    round_s: float = Field(
        86400.0, gt=0, description="Simulated time of one federation round, in s (a day)."
    )
    charging: PolicySection = Field(
        default_factory=lambda: PolicySection(name="never"),
        description="Charging habit by name (`never`, `nightly`, `random`) and `params`.",
    )
    personalization: PolicySection = Field(
        default_factory=lambda: PolicySection(name="always_full"),
        description="Personalization policy by name (`always_full`, `always_tl`, `never`, "
        "`charging_full_else_tl`, `energy_budget`) and `params`.",
    )
    threshold: PolicySection = Field(
        default_factory=lambda: PolicySection(name="static", params={"th": 1.0}),
        description="Adaptive-inference threshold policy by name (`static`, `linear`, "
        "`stepwise`) and `params`.",
    )
    skip_below_soc: float | None = Field(
        None,
        ge=0,
        le=1,
        description="The server skips a client for a round (status `skipped`) when the state "
        "of charge it reported at the end of the previous round is below this fraction. "
        "Unset: no client is skipped.",
    )

    @field_validator("charging", "personalization", "threshold")
    @classmethod
    def _known_policy(cls, value: PolicySection, info: ValidationInfo) -> PolicySection:
        """Builds the named policy once, so an unknown name or parameter fails at load."""
        make = {
            "charging": lambda p: make_charging(p.name, **p.params),
            "personalization": lambda p: make_personalization_policy(p.name, p.params),
            "threshold": lambda p: make_threshold_policy(p.name, p.params),
        }[str(info.field_name)]
        try:
            make(value)
        except (KeyError, TypeError, ValueError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise ValueError(str(message)) from None
        return value

    def anchored(self, base_dir: Path) -> BatteryDeviceConfig:
        """This section with its relative file paths (``parts``, ``modes.csv``) made absolute
        against ``base_dir``, the directory of the scenario file they are relative to."""

        def absolute(path: str | None) -> str | None:
            if path is None or Path(path).is_absolute():
                return path
            return str((base_dir / path).resolve())

        modes = self.modes.model_copy(update={"csv": absolute(self.modes.csv)})
        return self.model_copy(update={"parts": absolute(self.parts), "modes": modes})


class SweepConfig(_Section):
    """A sweep: the scenario runs once per value, and the runs are compared (Table II)."""

    window: list[int] = Field(
        min_length=1,
        description="Window lengths T to run, in samples (each 20-200); the stride scales with "
        "T so the overlap of `data` is kept. Each run goes to `OUT/T<length>/`.",
    )


class Scenario(_Section):
    """One fedhar run: data, folds, model, pretraining, personalization, federation, device."""

    name: str = Field(min_length=1, description="Scenario name, shown in reports.")
    seed: int = Field(0, ge=0, description="Seed of every random choice in the run.")
    data: DataConfig = Field(description="Dataset and windows.")
    split: SplitConfig = Field(default_factory=SplitConfig, description="User folds.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Model.")
    pretrain: PretrainConfig = Field(
        default_factory=PretrainConfig, description="Pretraining of the general model."
    )
    personalization: PersonalizationConfig = Field(
        default_factory=PersonalizationConfig, description="Personalization on the device."
    )
    federation: FederationConfig = Field(
        default_factory=FederationConfig, description="Federation."
    )
    mcu: McuConfig = Field(default_factory=McuConfig, description="Device profile.")
    device: BatteryDeviceConfig | None = Field(
        None, description="Battery-powered device simulation (unset: no battery)."
    )
    sweep: SweepConfig | None = Field(
        None, description="Run the scenario once per value and compare (unset: one run)."
    )


def load_scenario(path: str | Path) -> Scenario:
    """Reads and validates a scenario YAML file.

    Raises:
        ScenarioError: one line naming the file, the key path and what was expected.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"{path}: {where}invalid YAML: {problem}") from None
    return parse_scenario(raw, source=str(path))


def parse_scenario(raw: Any, source: str = "<scenario>") -> Scenario:
    """Validates already-parsed YAML data; ``source`` names it in error messages."""
    if not isinstance(raw, dict):
        raise ScenarioError(
            f"{source}: expected a mapping of keys at the top level, got {_kind(raw)}"
        )
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {_describe(exc.errors()[0])}") from None


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    return repr(value)


def _describe(error: Any) -> str:
    """One phrase for a pydantic error: ``key.path: expected ..., got ...``."""
    loc = tuple(error["loc"])
    key_path = ".".join(str(p) for p in loc)
    owner, annotation, info = _resolve(loc)
    if error["type"] == "extra_forbidden":
        parent = ".".join(str(p) for p in loc[:-1])
        allowed = ", ".join(owner.model_fields) if owner is not None else ""
        prefix = f"{parent}: " if parent else ""
        return f"{prefix}unknown key '{loc[-1]}' (allowed: {allowed})"
    if error["type"] == "value_error":
        return f"{key_path}: {str(error['msg']).removeprefix('Value error, ')}"
    if error["type"] == "missing":
        return f"{key_path}: missing required key, expected {_expected(annotation, info)}"
    return f"{key_path}: expected {_expected(annotation, info)}, got {_kind(error['input'])}"


def _resolve(loc: tuple[Any, ...]) -> tuple[Any, Any, FieldInfo | None]:
    """Walks the schema along ``loc``: (model owning the last key, its type, its field)."""
    owner: Any = Scenario
    annotation: Any = Scenario
    info: FieldInfo | None = None
    for part in loc:
        annotation = _strip_optional(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            owner = annotation
            info = annotation.model_fields.get(str(part))
            if info is None:
                return owner, None, None
            annotation = info.annotation
        elif typing.get_origin(annotation) is list and isinstance(part, int):
            annotation = typing.get_args(annotation)[0]
            info = None
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
            info = None
    return owner, annotation, info


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _expected(annotation: Any, info: FieldInfo | None) -> str:
    """Plain words for what a field accepts, e.g. ``a number > 0`` or ``one of 'sgd', 'adam'``."""
    optional = typing.get_origin(annotation) in (Union, types.UnionType) and type(
        None
    ) in typing.get_args(annotation)
    base = _strip_optional(annotation)
    origin = typing.get_origin(base)
    if origin is Literal:
        text = "one of " + ", ".join(repr(a) for a in typing.get_args(base))
    elif origin is list:
        inner = _expected(typing.get_args(base)[0], None)
        text = f"a list whose items are each {inner}"
    elif origin is dict:
        text = "a mapping of options"
    elif base is bool:
        text = "true or false"
    elif base is int:
        text = "an integer" + _bounds(info)
    elif base is float:
        text = "a number" + _bounds(info)
    elif base is str:
        text = "a non-empty string" if _min_length(info) else "a string"
    elif isinstance(base, type) and issubclass(base, BaseModel):
        text = "a mapping with keys " + ", ".join(base.model_fields)
    else:
        text = str(base)
    return f"{text}, or null" if optional else text


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


def schema_markdown() -> str:
    """The reference of every scenario field, as Markdown (the text of ``docs/scenario.md``)."""
    lines = [
        "# Scenario files",
        "",
        "A scenario is a YAML file that `fedhar run SCENARIO --out DIR` reads. Unknown keys are "
        "errors. This page is generated from `fedhar/schema/scenario.py` by "
        "`python -m fedhar.schema.scenario > docs/scenario.md`; a test checks that it is current.",
        "",
    ]
    top = [(name, f) for name, f in Scenario.model_fields.items()]
    lines += _table(Scenario, [(n, f) for n, f in top if not _is_section(f)])
    for name, f in top:
        if not _is_section(f):
            continue
        section = _strip_optional(f.annotation)
        lines += ["", f"## `{name}`", "", inspect.cleandoc(section.__doc__ or ""), ""]
        lines += _table(section, list(section.model_fields.items()))
    return "\n".join(lines) + "\n"


def _is_section(info: FieldInfo) -> bool:
    base = _strip_optional(info.annotation)
    return isinstance(base, type) and issubclass(base, BaseModel)


def _table(owner: type[BaseModel], fields: list[tuple[str, FieldInfo]]) -> list[str]:
    rows = ["| key | accepts | default | meaning |", "|---|---|---|---|"]
    for name, f in fields:
        if f.is_required():
            default = "required"
        else:
            value = f.get_default(call_default_factory=True)
            if isinstance(value, BaseModel):
                value = value.model_dump()
            dumped = yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip()
            default = f"`{dumped.removesuffix('...').strip()}`"
        accepts = _expected(f.annotation, f).replace("|", "\\|")
        rows.append(f"| `{name}` | {accepts} | {default} | {f.description or ''} |")
    return rows


if __name__ == "__main__":
    print(schema_markdown(), end="")
