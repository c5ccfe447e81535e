"""The NAS-with-pruning study of ``fedhar compress`` (``compress.prune``, zhou2024 §IV-§V).

For each base model (``prune.bases``; a base is a :class:`Family`, dispatched on its name):

1. **base**: the unpruned model (for ``cnn``: the supernet's widest path, kernel 7 wherever the
   layer allows it, every filter and sensor channel; for ``dcl`` and ``tinyhar``: the baseline
   itself, :func:`~fedhar.models.baselines.baseline_stage`), trained plainly for
   ``warmup_epochs + search_epochs + finetune_epochs`` epochs, the weight-training budget of a
   pruned model;
2. **warm-up** (shared by the sweep): the supernet's weights alone on random paths, gates and
   architecture frozen, no hardware terms; then every gate score is set to ``gate_init``;
3. **search** per ``[beta1, beta2]`` of ``prune.betas``, from the warmed supernet
   (:func:`fedhar.compress.search.search`, eq. 10, the temperature continuing the warm-up's);
4. **fine-tune**: the chosen architecture re-instantiated as a plain model with the supernet's
   kept weights, trained ``finetune_epochs`` (the epoch of best validation macro-F1 is kept),
   scored on the test users, counted (params, MACs) and sized: the C library's models on
   ``prune.profile`` (:func:`fedhar.ondevice.estimate.estimate_row`: the Full and TL training
   arenas, and the float32 inference working set), DCL and TinyHAR (PyTorch only) by eq. 12's
   float32 inference activations (:func:`~fedhar.compress.nas_baselines.inference_peak_bytes`);
5. **selection** (:func:`select`) and, with ``prune.qat``, int8 QAT of the selected model, run
   by fedhar's C integer kernels (model bytes + scratch buffer: its inference memory);
6. **channel scaling** (``prune.channel_sets``, zhou2024 §II Fig. 2): for the first base, params
   and MACs of the base and of a search at the selected betas on each channel set.

Each base runs with its own settings: the ``prune:`` section with its ``per_base`` overrides.
Every step's result is a journal row (``prune.jsonl``) keyed by the sha256 of what determines
it, its weights in ``states/<key>.npz`` written before the row; a resumed study reuses them and
gives the same rows. Deterministic by ``scenario.seed``.
"""

from __future__ import annotations

import copy
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from fedhar.compress import qat
from fedhar.compress.equalize import equalize
from fedhar.compress.gates import DCSGate, temperature
from fedhar.compress.nas import PathSearch, SuperNet
from fedhar.compress.nas_baselines import BaselineSuperNet, inference_peak_bytes, search_supernet
from fedhar.compress.search import SearchOptions, search
from fedhar.compress.training import Schedule, SoftTargets, train
from fedhar.data.hapt import CHANNEL_SETS as HAPT_CHANNEL_SETS
from fedhar.mcu import load_profile
from fedhar.metrics import score
from fedhar.models.baselines import (
    ConvLayer,
    SensorSubset,
    baseline_stage,
    build_staged,
    count_macs,
    count_params,
)
from fedhar.models.spec import ModelSpec
from fedhar.models.torch_model import build_torch
from fedhar.ondevice.estimate import estimate_row
from fedhar.ondevice.estimator import estimate_inference
from fedhar.results.journal import Journal, identity_sha256
from fedhar.schema.compress import PRUNE_BASES, CompressConfig, PruneConfig
from fedhar.schema.scenario import Scenario
from fedhar.studies.adaptive import load_windows
from fedhar.studies.compress import Data, Scorer, float_inference_bytes, split_data
from fedhar.studies.compress import study_identity as compress_identity

PRUNE_FILE = "prune.jsonl"
"""The journal of finished steps (searches, trained models)."""
STATES_DIR = "states"
FORMAT_VERSION = 1
"""Bump when a step's procedure changes its results (it enters every key)."""
NOT_IN_KEYS = {
    "bases",
    "betas",
    "channel_sets",
    "f1_tolerance",
    "qat",
    "qat_epochs",
    "qat_lr",
    "qat_equalize",
    "per_base",
    "distill",
    "distill_temperature",
}
"""``prune:`` settings left out of the steps' common key: the sweep and the selection (each
step names its own beta or source model), the QAT settings (in the QAT step's own key) and
the distillation (in a searched model's key when on, so that the base, the warm-up and
earlier studies' steps keep theirs). A base's settings with its ``per_base`` overrides applied
make the rest (the profile too: rows hold its prices)."""
BASE_IGNORES = frozenset(
    {"gate_init", "search_batch_size", "lr", "lr_gates", "lr_sensor_gates", "lr_alpha", "tau_decay"}
)
"""Search settings the unpruned base does not read: its key leaves them out, so that tuning
the search does not retrain it (it trains for the sum of the three epoch settings, its key's
``epochs``)."""
WARMUP_IGNORES = frozenset(
    {"lr_gates", "lr_sensor_gates", "lr_alpha", "search_epochs", "memory_budget_bytes",
     "memory_mode", "profile", "finetune_epochs", "finetune_lr", "finetune_batch_size"}
)  # fmt: skip
"""Settings the warm-up does not read (its architecture and gates are frozen and its hardware
terms weighted 0, and it ends before the search and the fine-tuning): its key leaves them out,
so that a sweep tuned on them reuses it."""


# ---------------------------------------------------------------------------------------------
# Base families


@dataclass
class Found:
    """A plain model of a base family and what it reads and costs.

    Attributes:
        module: the plain PyTorch model; it reads ``x[:, sensors]`` ``[N, len(sensors), T]``.
        sensors: indices of the sensor channels it reads.
        arch: plain JSON the family rebuilds ``module`` from (:meth:`Family.rebuild`).
        spec: the C library's spec of the model, None when the device cannot express it.
        kept_filters: filters of every convolution, in order.
        macs: forward MACs per window; params: trainable parameters.
        peak_memory: the family's peak-memory figures in bytes (:attr:`Family.budget_entry`
            is the one the budget is checked on).
        history: the search's per-epoch trace (empty for a base).
    """

    module: nn.Module
    sensors: list[int]
    arch: dict[str, Any]
    spec: ModelSpec | None
    kept_filters: list[int]
    macs: int
    params: int
    peak_memory: dict[str, int]
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)


class Family(Protocol):
    """A base model that the study searches: its unpruned model, the warm-up shared by a sweep,
    one search, and the rebuild of a found model from its ``arch``. ``budget_entry`` names the
    :attr:`Found.peak_memory` figure that the memory budget is checked on."""

    budget_entry: str

    def base(self, channels: int, length: int, n_classes: int, seed: int) -> Found:
        """The unpruned model, untrained (initial weights by ``seed``)."""
        ...

    def warmup(self, data: Data, seed: int) -> dict[str, np.ndarray]:
        """The warmed search state (arrays), shared by every search of a sweep."""
        ...

    def search(
        self, data: Data, warm: Mapping[str, np.ndarray], beta: tuple[float, float], seed: int
    ) -> Found:
        """One search from the warmed state at ``beta = (beta1, beta2)``."""
        ...

    def rebuild(self, arch: Mapping[str, Any], channels: int, length: int, n_classes: int) -> Found:
        """The found model of ``arch`` (weights to be loaded)."""
        ...


def _params(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def search_options(cfg: PruneConfig, **changes: Any) -> SearchOptions:
    """The search settings of ``cfg`` (a base's own), with ``changes``."""
    return dataclasses.replace(
        SearchOptions(
            batch_size=cfg.search_batch_size,
            lr=cfg.lr,
            lr_alpha=cfg.lr_alpha,
            lr_gates=cfg.lr_gates,
            lr_sensor_gates=cfg.lr_sensor_gates,
            budget_bytes=cfg.memory_budget_bytes,
            memory_mode=cfg.memory_mode,
            tau_decay=cfg.tau_decay,
        ),
        **changes,
    )


def he_init(net: nn.Module, seed: int) -> None:
    """He-normal conv and dense weights (fan-in, ReLU gain) and zero biases, drawn by ``seed``.

    PyTorch's default (uniform, gain 1/sqrt(3)) shrinks the signal about 2.4x per ReLU layer;
    over the 10 stacked layers of a 128-sample supernet the loss of a weights-only search on
    HAPT stayed at 1.784-1.789 nats (ln 6 = 1.792) for 4 epochs, and fell to 1.66 with He's
    (measured, 24 filters, lr 2e-3, batch 256; ``scenarios/hapt_nas.yaml`` lists the probe)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv1d | nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=gen)
                if m.bias is not None:
                    m.bias.zero_()


class SupernetFamily(ABC):
    """What the families share: the warm-up and the search on a supernet of theirs
    (``_supernet``), each search run and turned into a :class:`Found` by ``_searched``."""

    cfg: PruneConfig

    @abstractmethod
    def _supernet(self, channels: int, length: int, n_classes: int, seed: int) -> PathSearch:
        """A fresh supernet for ``[N, channels, length]`` windows, weights seeded by ``seed``."""

    @abstractmethod
    def _searched(self, net: Any, data: Data, options: SearchOptions) -> Found:
        """Runs the bi-level search on ``net`` with ``options``; the chosen model."""

    def warmup(self, data: Data, seed: int) -> dict[str, np.ndarray]:
        """The supernet's weights alone on random paths for ``warmup_epochs`` (gates and
        architecture frozen, no hardware terms), then every gate score at ``gate_init``."""
        x, _ = data.train
        net = self._supernet(x.shape[1], x.shape[2], data.n_classes, seed)
        if self.cfg.warmup_epochs:
            frozen = search_options(
                self.cfg,
                epochs=self.cfg.warmup_epochs,
                lr_alpha=0.0,
                lr_gates=0.0,
                lr_sensor_gates=0.0,
                seed=seed,
            )
            self._searched(net, data, frozen)
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, DCSGate):
                    m.v.fill_(self.cfg.gate_init)
        arrays = _state_arrays(net)
        arrays["__generator__"] = net.generator.get_state().numpy().copy()
        return arrays

    def search(
        self, data: Data, warm: Mapping[str, np.ndarray], beta: tuple[float, float], seed: int
    ) -> Found:
        """One search from the warmed state, the temperature continuing the warm-up's."""
        x, _ = data.train
        net = self._supernet(x.shape[1], x.shape[2], data.n_classes, seed)
        net.load_state_dict({k: torch.from_numpy(v) for k, v in warm.items() if k[:2] != "__"})
        net.generator.set_state(torch.from_numpy(np.asarray(warm["__generator__"])))
        options = search_options(
            self.cfg,
            epochs=self.cfg.search_epochs,
            beta1=beta[0],
            beta2=beta[1],
            tau0=temperature(self.cfg.warmup_epochs, decay=self.cfg.tau_decay),
            seed=seed + 1,
        )
        return self._searched(net, data, options)


class CnnFamily(SupernetFamily):
    """The gated, operator-searchable CNN of the C library's layer family
    (:class:`~fedhar.compress.nas.SuperNet`)."""

    def __init__(self, prune: PruneConfig) -> None:
        self.cfg = prune
        self.budget_entry = f"{prune.memory_mode}_training_arena"

    def _supernet(self, channels: int, length: int, n_classes: int, seed: int) -> SuperNet:
        cfg = self.cfg
        net = SuperNet(channels, length, n_classes, cfg.filters, cfg.hidden, cfg.n_stride2, seed)
        he_init(net, seed)
        return net

    def _found(self, net: SuperNet, history: list[dict[str, float]]) -> Found:
        spec, state, sensors = net.to_spec()
        kernels = list(net.architecture().kernels)
        arch = {"kernels": kernels, "sensors": sensors, "spec": spec.to_dict()}
        found = self._of_spec(spec, arch, history)
        found.module.load_state_dict(state, strict=False)
        return found

    def _of_spec(
        self, spec: ModelSpec, arch: dict[str, Any], history: list[dict[str, float]]
    ) -> Found:
        module = build_torch(spec)
        return Found(
            module,
            list(arch["sensors"]),
            arch,
            spec,
            [layer.out_channels for layer in spec.layers if layer.kind == "conv1d"],
            estimate_inference(spec).macs,
            _params(module),
            device_costs(spec, self.cfg),
            history,
        )

    def base(self, channels: int, length: int, n_classes: int, seed: int) -> Found:
        net = self._supernet(channels, length, n_classes, seed)
        with torch.no_grad():
            for layer in net.layers:
                layer.log_alpha.fill_(-1.0)
                layer.log_alpha[layer.kernels.index(max(layer.kernels))] = 0.0
        net.fix_argmax()
        return self._found(net, [])

    def _searched(self, net: SuperNet, data: Data, options: SearchOptions) -> Found:
        result = search(net, *data.train, *data.val, options)
        return self._found(net, result.history)

    def rebuild(self, arch: Mapping[str, Any], channels: int, length: int, n_classes: int) -> Found:
        return self._of_spec(ModelSpec.from_dict(arch["spec"]), dict(arch), [])


class BaselineFamily(SupernetFamily):
    """DCL or TinyHAR (:mod:`fedhar.models.baselines`) with zhou2024's searchable first stage
    (:class:`~fedhar.compress.nas_baselines.BaselineSuperNet`). PyTorch only: its memory is
    eq. 12's inference activation peak (float32), the figure the paper checks its budget on."""

    budget_entry = "inference_activations"

    def __init__(self, name: str, prune: PruneConfig) -> None:
        self.name, self.cfg = name, prune

    def _supernet(self, channels: int, length: int, n_classes: int, seed: int) -> BaselineSuperNet:
        return BaselineSuperNet(
            self.name, channels, length, n_classes, self.cfg.filters, n_stride2=self.cfg.n_stride2,
            seed=seed,
        )  # fmt: skip

    def _of_stage(
        self, sensors: list[int], stage: list[ConvLayer], length: int, n_classes: int,
        history: list[dict[str, float]],
    ) -> Found:  # fmt: skip
        c, f = len(sensors), self.cfg.filters
        module = build_staged(self.name, c, length, n_classes, stage, f)
        arch = {
            "sensors": sensors,
            "kernels": [layer.kernel for layer in stage],
            "stage": [dataclasses.asdict(layer) for layer in stage],
        }
        peak = inference_peak_bytes(self.name, c, length, n_classes, stage, f)
        return Found(
            module,
            sensors,
            arch,
            None,
            [layer.filters for layer in stage],
            count_macs(module, c, length),
            count_params(module),
            {self.budget_entry: peak},
            history,
        )

    def base(self, channels: int, length: int, n_classes: int, seed: int) -> Found:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            stage = baseline_stage(self.name, self.cfg.filters)
            return self._of_stage(list(range(channels)), stage, length, n_classes, [])

    def _searched(self, net: BaselineSuperNet, data: Data, options: SearchOptions) -> Found:
        found = search_supernet(net, *data.train, *data.val, options)
        plain = found.module
        assert isinstance(plain, SensorSubset)
        length = data.train[0].shape[2]
        out = self._of_stage(found.sensors, net.stage(), length, data.n_classes, found.history)
        out.module.load_state_dict(plain.model.state_dict())
        return out

    def rebuild(self, arch: Mapping[str, Any], channels: int, length: int, n_classes: int) -> Found:
        stage = [ConvLayer(**layer) for layer in arch["stage"]]
        return self._of_stage(list(arch["sensors"]), stage, length, n_classes, [])


FAMILIES: dict[str, Callable[[PruneConfig], Family]] = {
    "cnn": CnnFamily,
    "dcl": lambda prune: BaselineFamily("dcl", prune),
    "tinyhar": lambda prune: BaselineFamily("tinyhar", prune),
}
"""Base name → its family (the names :data:`fedhar.schema.compress.PRUNE_BASES` accepts)."""
assert tuple(FAMILIES) == PRUNE_BASES


# ---------------------------------------------------------------------------------------------
# Training and scoring


def macro_f1(module: nn.Module, x: np.ndarray, y: np.ndarray, n_classes: int) -> float:
    """Macro-F1 of ``module`` on windows ``x [N, C, T]`` (already sliced to its sensors)."""
    module.eval()
    with torch.no_grad():
        pred = np.concatenate(
            [
                module(torch.from_numpy(np.ascontiguousarray(x[i : i + 1024]))).argmax(1).numpy()
                for i in range(0, len(x), 1024)
            ]
        )
    return float(score(y, pred, n_classes).macro_f1)


def fine_tune(
    module: nn.Module,
    data: Data,
    sensors: list[int],
    epochs: int,
    lr: float,
    batch: int,
    seed: int,
    soft: SoftTargets | None = None,
) -> tuple[float, int]:
    """Trains ``module`` on the training windows (class-weighted Adam, deterministic by
    ``seed``, distilling from ``soft`` when given) and leaves it at the epoch of best
    validation macro-F1; returns that F1 and epoch (1-based)."""
    x, y = data.train
    xv, yv = data.val[0][:, sensors], data.val[1]
    best: dict[str, Any] = {"f1": -1.0, "epoch": 0, "state": None}

    def after(epoch: int) -> None:
        f1 = macro_f1(module, xv, yv, data.n_classes)
        if f1 > best["f1"]:
            best.update(f1=f1, epoch=epoch, state=copy.deepcopy(module.state_dict()))

    schedule = Schedule(epochs, lr, batch, seed)
    train(
        module,
        x[:, sensors],
        y,
        data.n_classes,
        schedule,
        [{"params": module.parameters()}],
        after_epoch=after,
        soft=soft,
    )
    module.load_state_dict(best["state"])
    return float(best["f1"]), int(best["epoch"])


def device_costs(spec: ModelSpec, prune: PruneConfig) -> dict[str, int]:
    """Peak memory of a device-expressible model on ``prune.profile``: the estimator's Full and
    TL training arenas (``fedhar estimate``, plain SGD, batch 32, TL over the last dense
    layers, at most 2) and the float32 inference working set (weights + the largest layer
    input/output pair), bytes."""
    profile = load_profile(prune.profile)
    dense = sum(layer.kind == "dense" for layer in spec.layers)
    out = {
        f"{mode}_training_arena": int(
            estimate_row(profile, spec=spec, mode=mode, tl_layers=min(2, dense)).arena_bytes
        )
        for mode in ("full", "tl")
    }
    out["inference_float32"] = float_inference_bytes(spec)
    return out


# ---------------------------------------------------------------------------------------------
# Rows and selection


def beta_label(beta: tuple[float, float] | None) -> str:
    """``base`` or ``b1=<beta1> b2=<beta2>``."""
    return "base" if beta is None else f"b1={beta[0]:g} b2={beta[1]:g}"


def fits(row: Mapping[str, Any], prune: PruneConfig) -> bool:
    """Whether a model row's peak memory (its ``budget_entry`` figure) is within the budget."""
    return row["peak_memory_bytes"][row["budget_entry"]] <= prune.memory_budget_bytes


def select(base: Mapping[str, Any], swept: list[Mapping[str, Any]], prune: PruneConfig) -> int:
    """Index into ``swept`` of the selected pruned model: the smallest-MAC model within the
    memory budget whose validation F1 is at least ``base["f1_val"] - prune.f1_tolerance``;
    else the best validation F1 within the budget; else the smallest peak memory. Ties go to
    the earlier model of the sweep.

    Raises:
        ValueError: an empty sweep.
    """
    if not swept:
        raise ValueError("select needs at least one swept model")
    inside = [i for i, r in enumerate(swept) if fits(r, prune)]
    near = [i for i in inside if swept[i]["f1_val"] >= base["f1_val"] - prune.f1_tolerance]
    if near:
        return min(near, key=lambda i: (swept[i]["macs"], i))
    if inside:
        return min(inside, key=lambda i: (-swept[i]["f1_val"], i))

    def peak(i: int) -> int:
        return swept[i]["peak_memory_bytes"][swept[i]["budget_entry"]]

    return min(range(len(swept)), key=lambda i: (peak(i), i))


# ---------------------------------------------------------------------------------------------
# The study


def study_identity(scenario: Scenario, cfg: CompressConfig) -> dict[str, Any]:
    """What a prune journal belongs to: the scenario and its compress section (as the
    quantization study's identity, under its own study name and format)."""
    return {**compress_identity(scenario, cfg), "study": "compress-prune", "format": FORMAT_VERSION}


@dataclass
class PruneResult:
    """Every row of the study, by kind, and what the summary names.

    Attributes:
        models: base → ``{"base": row, "swept": [row, ...], "selected": index, "qat": row}``.
        channels: per channel set, ``{"channels", "base": {params, macs}, "searched": {...}}``.
        windows: train / val / test window counts; channel_names: of the scenario's data.
    """

    models: dict[str, dict[str, Any]]
    channels: list[dict[str, Any]]
    windows: dict[str, int]
    channel_names: list[str]


class _Steps:
    """The journal of finished steps and the weights beside it."""

    def __init__(self, journal: Journal, out: Path, log: Callable[[str], None]) -> None:
        self.journal, self.states, self.log = journal, out / STATES_DIR, log
        self.done = {row["key"]: row for row in journal.rows}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.done.get(key)

    def arrays(self, key: str) -> dict[str, np.ndarray]:
        with np.load(self.states / f"{key}.npz") as z:
            return {k: z[k] for k in z.files}

    def put(self, row: dict[str, Any], arrays: Mapping[str, np.ndarray] | None) -> dict[str, Any]:
        if arrays is not None:
            self.states.mkdir(parents=True, exist_ok=True)
            tmp = self.states / f"{row['key']}.tmp.npz"
            np.savez(tmp, **arrays)
            tmp.replace(self.states / f"{row['key']}.npz")
        kept = self.journal.append(row)
        self.done[row["key"]] = kept
        return kept


def _state_arrays(module: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def _load(module: nn.Module, arrays: Mapping[str, np.ndarray]) -> None:
    module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()})


def _step_key(common: Mapping[str, Any], **parts: Any) -> str:
    return identity_sha256({**common, **parts})


def _base_key(common: Mapping[str, Any], name: str, prune: PruneConfig) -> str:
    """The key of base ``name``'s unpruned trained model (settings ``prune``): ``common``
    without what it ignores, the three epoch settings replaced by their sum."""
    epochs = {"warmup_epochs", "search_epochs", "finetune_epochs"}
    own = {k: v for k, v in common["prune"].items() if k not in BASE_IGNORES | epochs}
    own["epochs"] = prune.base_epochs
    return _step_key({**common, "prune": own}, kind="base", base=name)


def _warmup_key(common: Mapping[str, Any], name: str) -> str:
    """The key of base ``name``'s warm-up: ``common`` without what it ignores."""
    own = {k: v for k, v in common["prune"].items() if k not in WARMUP_IGNORES}
    return _step_key({**common, "prune": own}, kind="warmup", base=name)


def _model_key(
    common: Mapping[str, Any], name: str, beta: tuple[float, float], prune: PruneConfig
) -> str:
    """The key of base ``name``'s searched and fine-tuned model at ``beta``; its distillation
    enters only when on, so undistilled steps keep the keys they had before it existed."""
    distill = {"distill": [prune.distill, prune.distill_temperature]} if prune.distill else {}
    return _step_key(common, kind="model", base=name, beta=list(beta), **distill)


def run_study(
    scenario: Scenario,
    cfg: CompressConfig,
    data_dir: str | None,
    out: Path,
    open_journal: Callable[[], Journal],
    log: Callable[[str], None],
) -> PruneResult:
    """Runs (or resumes) the NAS study of ``cfg.prune``; returns its rows. The journal is
    opened (``open_journal``) once the data are loaded and split, so that bad data leave a
    prior output untouched."""
    prune = cfg.prune
    assert prune is not None
    torch.set_num_threads(1)
    seed = scenario.seed
    ds, ws = load_windows(scenario, data_dir)
    data = split_data(ws, list(ds.classes), scenario, cfg)
    steps = _Steps(open_journal(), out, log)
    log(
        f"{len(data.train[0])} train, {len(data.val[0])} val, {len(data.test[0])} test windows "
        f"of {ws.x.shape[1]} channels; {len(steps.done)} steps already done"
    )
    shared = {
        "format": FORMAT_VERSION,
        "data": scenario.data.model_dump(mode="json"),
        "seed": seed,
        "split": [cfg.split, cfg.test_users, cfg.val_fraction, cfg.test_fraction],
    }
    models: dict[str, dict[str, Any]] = {}
    for name in prune.bases:
        own = prune.for_base(name)
        common = {**shared, "prune": own.model_dump(mode="json", exclude=NOT_IN_KEYS)}
        family = FAMILIES[name](own)
        entry = _run_base(name, family, data, own, seed, common, steps, list(ds.channels))
        if prune.qat:
            entry["qat"] = _qat(name, family, data, entry, own, seed, common, steps)
        models[name] = entry
    channels = []
    if prune.channel_sets:
        first = prune.bases[0]
        own = prune.for_base(first)
        common = {**shared, "prune": own.model_dump(mode="json", exclude=NOT_IN_KEYS)}
        chosen = models[first]["swept"][models[first]["selected"]]["beta"]
        for channel_set in prune.channel_sets:
            channels.append(
                _channel_scaling(
                    first,
                    channel_set,
                    tuple(chosen),
                    scenario,
                    cfg,
                    own,
                    data_dir,
                    seed,
                    common,
                    steps,
                )
            )
        for name in prune.bases[1:]:
            family = FAMILIES[name](prune.for_base(name))
            for channel_set in prune.channel_sets:
                channels.append(_unpruned_counts(name, family, channel_set, scenario, data))
    windows = {k: len(getattr(data, k)[0]) for k in ("train", "val", "test")}
    return PruneResult(models, channels, windows, list(ds.channels))


def _model_row(
    key: str,
    base: str,
    beta: tuple[float, float] | None,
    found: Found,
    budget_entry: str,
    data: Data,
    prune: PruneConfig,
    channel_names: list[str],
    f1_val: float,
    epoch: int,
) -> dict[str, Any]:
    x_test = data.test[0][:, found.sensors]
    row = {
        "key": key,
        "kind": "model",
        "base": base,
        "label": beta_label(beta),
        "beta": None if beta is None else list(beta),
        "arch": found.arch,
        "kept_channels": [channel_names[i] for i in found.sensors],
        "kept_filters": found.kept_filters,
        "params": found.params,
        "macs": found.macs,
        "f1_val": f1_val,
        "f1": macro_f1(found.module, x_test, data.test[1], data.n_classes),
        "best_epoch": epoch,
        "peak_memory_bytes": found.peak_memory,
        "budget_entry": budget_entry,
        "device_trainable": found.spec is not None,
        "search_history": found.history,
    }
    row["fits_budget"] = fits(row, prune)
    return row


def _trained(
    key: str,
    base: str,
    beta: tuple[float, float] | None,
    found: Found,
    budget_entry: str,
    epochs: int,
    data: Data,
    prune: PruneConfig,
    seed: int,
    steps: _Steps,
    channel_names: list[str],
    soft: SoftTargets | None = None,
) -> dict[str, Any]:
    f1_val, epoch = fine_tune(
        found.module,
        data,
        found.sensors,
        epochs,
        prune.finetune_lr,
        prune.finetune_batch_size,
        seed,
        soft,
    )
    row = _model_row(
        key, base, beta, found, budget_entry, data, prune, channel_names, f1_val, epoch
    )
    row["distilled"] = None if soft is None else [soft.weight, soft.temperature]
    kept = steps.put(row, _state_arrays(found.module))
    steps.log(
        f"{base:<8} {row['label']:<16} F1 {row['f1']:.4f} (val {f1_val:.4f}), "
        f"{row['params']} params, {row['macs']} MACs, channels {row['kept_channels']}"
    )
    return kept


def teacher_targets(
    family: Family,
    base: Mapping[str, Any],
    state: Mapping[str, np.ndarray],
    data: Data,
    prune: PruneConfig,
) -> SoftTargets:
    """The trained unpruned ``base`` (its row and weights) as the distillation teacher: its
    logits ``[N, K]`` on the training windows."""
    c, t = data.train[0].shape[1:]
    found = family.rebuild(base["arch"], c, t, data.n_classes)
    model = found.module
    _load(model, state)
    model.eval()
    x = data.train[0][:, found.sensors]
    with torch.no_grad():
        logits = np.concatenate(
            [model(torch.from_numpy(np.ascontiguousarray(x[i : i + 512]))).numpy()
             for i in range(0, len(x), 512)]
        )  # fmt: skip
    return SoftTargets(logits, prune.distill, prune.distill_temperature)


def _run_base(
    name: str,
    family: Family,
    data: Data,
    prune: PruneConfig,
    seed: int,
    common: Mapping[str, Any],
    steps: _Steps,
    channel_names: list[str],
) -> dict[str, Any]:
    c, t = data.train[0].shape[1:]
    base_key = _base_key(common, name, prune)
    base = steps.get(base_key)
    if base is None:
        found = family.base(c, t, data.n_classes, seed)
        base = _trained(
            base_key, name, None, found, family.budget_entry, prune.base_epochs, data, prune, seed,
            steps, channel_names,
        )  # fmt: skip
    warm_key = _warmup_key(common, name)
    swept = []
    warm: dict[str, np.ndarray] | None = None
    soft: SoftTargets | None = None
    for beta in prune.betas:
        key = _model_key(common, name, beta, prune)
        row = steps.get(key)
        if row is None:
            if prune.distill and soft is None:
                soft = teacher_targets(family, base, steps.arrays(base_key), data, prune)
            if warm is None:
                if steps.get(warm_key) is None:
                    steps.put(
                        {"key": warm_key, "kind": "warmup", "base": name}, family.warmup(data, seed)
                    )
                warm = steps.arrays(warm_key)
            found = family.search(data, warm, beta, seed)
            row = _trained(
                key,
                name,
                beta,
                found,
                family.budget_entry,
                prune.finetune_epochs,
                data,
                prune,
                seed,
                steps,
                channel_names,
                soft,
            )
        swept.append(row)
    return {"base": base, "swept": swept, "selected": select(base, swept, prune)}


def _qat(
    name: str,
    family: Family,
    data: Data,
    entry: Mapping[str, Any],
    prune: PruneConfig,
    seed: int,
    common: Mapping[str, Any],
    steps: _Steps,
) -> dict[str, Any] | None:
    """Int8 QAT (8-bit weights and activations, PACT) of the selected model, scored by the C
    integer kernels; None for a model the device cannot express."""
    chosen = entry["swept"][entry["selected"]]
    key = _step_key(
        common, kind="qat", base=name, of=chosen["key"], epochs=prune.qat_epochs,
        lr=prune.qat_lr, equalize=prune.qat_equalize,
    )  # fmt: skip
    done = steps.get(key)
    if done is not None:
        return done
    c, t = data.train[0].shape[1:]
    found = family.rebuild(chosen["arch"], c, t, data.n_classes)
    if found.spec is None:
        return None
    arrays = steps.arrays(chosen["key"])
    sensors = found.sensors
    view = dataclasses.replace(
        data,
        train=(np.ascontiguousarray(data.train[0][:, sensors]), data.train[1]),
        val=(np.ascontiguousarray(data.val[0][:, sensors]), data.val[1]),
        test=(np.ascontiguousarray(data.test[0][:, sensors]), data.test[1]),
    )
    spec = found.spec
    bits = {layer.name: (8, 8) for layer in spec.layers if layer.kind in ("conv1d", "dense")}
    calib = view.calib(512, seed)
    if prune.qat_equalize:
        arrays = equalize(spec, arrays, calib)
    net = qat.qat_finetune(
        spec,
        arrays,
        bits,
        *view.train,
        epochs=prune.qat_epochs,
        lr=prune.qat_lr,
        batch_size=prune.finetune_batch_size,
        seed=seed,
        calib_x=calib,
        x_val=view.val[0],
        y_val=view.val[1],
    )
    scored = Scorer(view, [load_profile(prune.profile)]).qnet(
        chosen["label"], "pact8", qat.to_qnet(net)
    )
    row = {
        "key": key,
        "kind": "qat",
        "base": name,
        "of": chosen["label"],
        "equalized": prune.qat_equalize,
        "f1": scored.f1_test,
        "f1_val": scored.f1_val,
        "model_bytes": scored.memory_bytes,
        "scratch_bytes": scored.scratch_bytes,
        "inference_bytes": scored.memory_bytes + scored.scratch_bytes,
    }
    steps.log(
        f"{name:<8} int8 QAT of {chosen['label']}: F1 {row['f1']:.4f}, "
        f"{row['inference_bytes']} B (model + scratch)"
    )
    return steps.put(row, None)


def _unpruned_counts(
    name: str, family: Family, channel_set: str, scenario: Scenario, data: Data
) -> dict[str, Any]:
    """A channel-scaling row of base ``name`` before any search: the params and MACs of its
    unpruned model on the ``channel_set`` view (counted, not trained; ``after`` None)."""
    n = 3 * len(HAPT_CHANNEL_SETS[channel_set])
    base = family.base(n, data.train[0].shape[2], data.n_classes, scenario.seed)
    return {
        "base": name,
        "channels": channel_set,
        "n_channels": n,
        "beta": None,
        "before": {"params": base.params, "macs": base.macs},
        "after": None,
    }


def _channel_scaling(
    name: str,
    channel_set: str,
    beta: tuple[float, float],
    scenario: Scenario,
    cfg: CompressConfig,
    prune: PruneConfig,
    data_dir: str | None,
    seed: int,
    common: Mapping[str, Any],
    steps: _Steps,
) -> dict[str, Any]:
    """Params and MACs of base ``name`` (its settings ``prune``) before and after a search at
    ``beta`` on the windows of ``channel_set`` (the search's model is counted, not
    fine-tuned)."""
    key = _step_key(common, kind="channels", base=name, channels=channel_set, beta=list(beta))
    done = steps.get(key)
    if done is not None:
        return done
    if channel_set == scenario.data.channels:
        # the main sweep already searched these windows at ``beta``
        row = steps.get(_model_key(common, name, beta, prune))
        base_row = steps.get(_base_key(common, name, prune))
        assert row is not None and base_row is not None
        n = len(base_row["kept_channels"])
        before = {"params": base_row["params"], "macs": base_row["macs"]}
        after = {
            "params": row["params"],
            "macs": row["macs"],
            "kept_channels": row["kept_channels"],
        }
    else:
        other = scenario.model_copy(
            update={"data": scenario.data.model_copy(update={"channels": channel_set})}
        )
        ds, ws = load_windows(other, data_dir)
        data = split_data(ws, list(ds.classes), other, cfg)
        family = FAMILIES[name](prune)
        c, t = ws.x.shape[1:]
        n = int(c)
        base = family.base(c, t, data.n_classes, seed)
        found = family.search(data, family.warmup(data, seed), beta, seed)
        before = {"params": base.params, "macs": base.macs}
        after = {
            "params": found.params,
            "macs": found.macs,
            "kept_channels": [ds.channels[i] for i in found.sensors],
        }
    row = {
        "key": key,
        "kind": "channels",
        "base": name,
        "channels": channel_set,
        "n_channels": n,
        "beta": list(beta),
        "before": before,
        "after": after,
    }
    steps.log(f"{name:<8} {channel_set:<10} {n} channels: {before['macs']} -> {after['macs']} MACs")
    return steps.put(row, None)
