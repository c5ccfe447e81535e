"""The adaptive-inference study of ``fedhar adaptive``, step by step.

scenario → windows → split (held-out users for personalization, each split in time into TR_i
and TS_i; the other users' windows split in time into train / validation / test) → static
grid (Fig. 4a; every model trained with the same budget and cached by content) → M_l by
eq. (5) → one jointly trained two-width network per candidate width of M_s → the width with
the better eq. (3) trade-off on validation → modes table on the test windows → the cascade
baseline (the same policy over two separate static models) → memory (Table 3) → the test set
with one class replicated (Fig. 12) → per-user personalization and recomputed modes.
:func:`run_study` runs them for one seed: :func:`train_grid` up to the grid, then the choice
of the pair, then :func:`finish_study`; :mod:`fedhar.studies.adaptive_across` makes the choice
once from several seeds' grids.

Every front is priced on the scenario's profile from counted float32 operations and, with the
emulator installed, on ``executed_profile`` from executed float32 and int8 windows
(:class:`Pricing`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fedhar.adaptive.executed import Executed, available, execute_window
from fedhar.adaptive.export import export_f32
from fedhar.adaptive.fronts import max_gap_to_static_front
from fedhar.adaptive.memory import adaptive_bytes, bn_overhead_fraction, static_bytes
from fedhar.adaptive.modes import (
    ExpectedCost,
    Mode,
    Outputs,
    collect_outputs,
    expected_cost,
    hypervolume,
    replicate_indices,
    sweep,
    thresholds,
)
from fedhar.adaptive.policy import AdaptiveClassifier
from fedhar.adaptive.quant import quantize, quantize_weights
from fedhar.adaptive.slim import SlimNet, TrainOptions, train
from fedhar.data.preprocess import Normalizer, make_windows
from fedhar.data.registry import load_dataset
from fedhar.data.splits import split_by_users, split_chronological, validation_users
from fedhar.data.types import HarDataset, WindowSet
from fedhar.mcu import McuProfile, load_profile
from fedhar.metrics import score
from fedhar.models.spec import ModelSpec
from fedhar.ondevice.slim_format import SlimF32, SlimS8
from fedhar.ondevice.slim_infer import SlimNetC
from fedhar.results.journal import Journal, identity_sha256, scenario_identity
from fedhar.schema.adaptive import AdaptiveConfig
from fedhar.schema.scenario import DataConfig, Scenario
from fedhar.studies.adaptive_cache import trained_net
from fedhar.studies.adaptive_search import (
    Candidate,
    channel_triples,
    choose_large,
    evaluate_static,
    front,
    grid_specs,
    large_candidates,
    small_fits,
)
from fedhar.studies.adaptive_search import gains as front_gains

Log = Callable[[str], None]
GRID_FILE = "grid.jsonl"
"""The journal of trained grid models (one :meth:`Candidate.to_row` per line)."""


@dataclass
class Split:
    """Normalized windows of the study, each ``(x [N, C, T], y [N])``.

    With the ``chronological`` split, the global users' windows are split in time per (user,
    activity): the first ``train_fraction`` trains, the rest is halved in time into validation
    and test (test windows come from users seen in training). With ``users``, whole users
    train, validate and test. ``users`` maps each held-out user, never seen in global
    training, to its ``(TR_i, TS_i)`` for personalization.
    """

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    users: dict[str, tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]]
    n_classes: int
    normalizer: Normalizer


@dataclass
class UserModes:
    """One held-out user's modes on TS_i before and after personalizing ``net`` on TR_i."""

    user: str
    net: SlimNet
    n_train: int
    n_test: int
    before: list[Mode]
    after: list[Mode]


@dataclass(frozen=True)
class Pricing:
    """One way the fronts are priced: ``profile``, ``precision`` (float32 or int8) and
    ``source`` (``counted``: the C library's counted operations priced by the profile's
    costs; ``executed``: one window executed on the emulated Cortex-M4F)."""

    profile: str
    precision: str
    source: str

    @property
    def name(self) -> str:
        """E.g. ``stm32l496zg_fedhar/int8/executed``."""
        return f"{self.profile}/{self.precision}/{self.source}"


@dataclass
class Cascade:
    """The baseline: the score-margin policy over two separate static models.

    Attributes:
        small_index: the grid model that runs first; M_l (``StudyResult.large_index``) second.
        hypervolume: validation hypervolume of each static model tried first (index → value).
        modes, costs: the test modes table and eq. (3) costs on the study's profile.
        bytes: deployed int8 bytes of both models.
        outputs, outputs_int8: what both models say on the test windows.
        executed: eq. (3) costs executed on the emulator, by precision (empty without it).
        firsts: the float32 test modes, counted on the study's profile, of the cascade with
            each grid model cheaper than M_l run first (index → modes, the chosen one
            included): every two-model system the grid offers, to read the chosen cascade
            and the variable-width network against.
    """

    small_index: int
    hypervolume: dict[int, float]
    modes: list[Mode]
    costs: ExpectedCost
    bytes: int
    outputs: Outputs
    outputs_int8: Outputs
    executed: dict[str, ExpectedCost] = field(default_factory=dict)
    firsts: dict[int, list[Mode]] = field(default_factory=dict)


@dataclass
class Replicated:
    """The test set with ``factor`` copies of every window of the replicated class: its share
    of windows, the adaptive and cascade modes, and every grid model's test F1 (float32, int8)."""

    factor: int
    share: float
    modes: list[Mode]
    cascade_modes: list[Mode] | None
    static_f1: list[tuple[float, float]]


@dataclass
class StudyResult:
    """Everything ``fedhar adaptive`` reports. ``hypervolume`` and ``validation_gap`` map
    each converted ``(M_l label, small width)`` to its validation modes' hypervolume and
    largest F1 gap below the grid's validation static front; ``large_choice`` is the rule
    that chose M_l (``gain``, ``hypervolume`` or ``gap_then_hypervolume``), applied to the
    validation results of the seeds ``chosen_over_seeds``."""

    candidates: list[Candidate]
    large_index: int
    gains: dict[int, float]
    small_width: float
    hypervolume: dict[tuple[str, float], float]
    validation_gap: dict[tuple[str, float], float]
    large_choice: str
    costs: ExpectedCost
    modes: list[Mode]
    net: SlimNet
    classifier: AdaptiveClassifier
    adaptive_bytes: int
    static_bytes_large: int
    bn_overhead_fraction: float
    static_in_range: list[int]
    static_set: list[int]
    static_set_bytes: int
    normalizer: Normalizer
    pricings: list[Pricing] = field(default_factory=list)
    executed: dict[str, ExpectedCost] = field(default_factory=dict)
    cascade: Cascade | None = None
    replicated: list[Replicated] = field(default_factory=list)
    replicated_class: str | None = None
    small_val_f1: float = float("nan")
    small_test_f1: float = float("nan")
    personalized: list[UserModes] = field(default_factory=list)
    chosen_over_seeds: list[int] = field(default_factory=list)


def load_windows(scenario: Scenario, data_dir: str | None) -> tuple[HarDataset, WindowSet]:
    """Loads the scenario's dataset through :func:`fedhar.data.registry.load_dataset` and cuts
    its windows (``data.window`` samples every ``data.stride``)."""
    return load_data_windows(scenario.data, scenario.seed, data_dir)


def load_data_windows(
    d: DataConfig, seed: int, data_dir: str | None
) -> tuple[HarDataset, WindowSet]:
    """The dataset of a ``data:`` section and its windows; ``data_dir`` overrides the
    section's directory."""
    flag = data_dir or d.data_dir
    ds = load_dataset(
        d.dataset,
        None if flag is None else Path(flag),
        classes=d.classes,
        channels=d.channels,
        target_fs=d.target_fs,
        device=d.recording_device,
        seed=seed,
        **d.options,
    )
    return ds, make_windows(ds, d.window, d.stride)


def split_users(ds: HarDataset, ws: WindowSet, scenario: Scenario, cfg: AdaptiveConfig) -> Split:
    """Train / validation / test windows as ``cfg.split`` says, and the held-out users (chosen
    by seed) for personalization (see :class:`Split`)."""
    fraction = scenario.data.train_fraction
    if cfg.split == "users":
        train_ws, val_ws, test_ws = split_by_users(
            ws, cfg.test_users, cfg.val_fraction, scenario.seed, "adaptive.test_users"
        )
        held_out = validation_users(cfg.test_users, cfg.holdout_users_fraction, scenario.seed)
    else:
        held_out = validation_users(ds.users, cfg.holdout_users_fraction, scenario.seed)
        train_ws, later = split_chronological(ws.subset(~np.isin(ws.users, held_out)), fraction)
        val_ws, test_ws = split_chronological(later, 0.5)
    is_held = np.isin(ws.users, held_out)
    norm = Normalizer().fit(train_ws.x)

    def xy(part: WindowSet) -> tuple[np.ndarray, np.ndarray]:
        return norm.transform(part.x), part.y

    tr_all, ts_all = split_chronological(ws.subset(is_held), fraction)
    per_user = {
        u: (xy(tr_all.subset(tr_all.users == u)), xy(ts_all.subset(ts_all.users == u)))
        for u in held_out
    }
    return Split(xy(train_ws), xy(val_ws), xy(test_ws), per_user, len(ds.classes), norm)


def build_classifier(net: SlimNet, small_width: float) -> AdaptiveClassifier:
    """Float32 C views of M_s (``small_width``) and M_l (1.0), sharing ``net``'s weights."""
    return AdaptiveClassifier(
        SlimNetC(export_f32(net, small_width)), SlimNetC(export_f32(net, 1.0))
    )


def int8_outputs(net: SlimNet, small_width: float, calib_x: np.ndarray, x: np.ndarray) -> Outputs:
    """M_s/M_l/policy outputs of the int8 kernels (weights quantized once, shared)."""
    shared = quantize_weights(net)
    small = SlimNetC(quantize(net, small_width, calib_x, shared))
    large = SlimNetC(quantize(net, 1.0, calib_x, shared))
    return collect_outputs(small, large, x)


def modes_of(
    net: SlimNet,
    small_width: float,
    xy: tuple[np.ndarray, np.ndarray],
    profile: McuProfile,
    cfg: AdaptiveConfig,
    n_classes: int,
    calib_x: np.ndarray,
) -> tuple[list[Mode], ExpectedCost, AdaptiveClassifier]:
    """Modes table of ``net`` at ``(small_width, 1.0)`` on windows ``xy``."""
    clf = build_classifier(net, small_width)
    costs = expected_cost(clf.small, clf.large, profile)
    x, y = xy
    out = collect_outputs(clf.small, clf.large, x)
    out_q = int8_outputs(net, small_width, calib_x, x)
    ths = thresholds(cfg.thresholds, cfg.th_min)
    return sweep(y, out, costs, ths, n_classes, out_q), costs, clf


def train_options(cfg: AdaptiveConfig) -> TrainOptions:
    """The training options of the scenario's ``adaptive:`` section."""
    return TrainOptions(cfg.distill, cfg.sandwich, cfg.schedule, cfg.patience, cfg.weight_decay)


def hypervolumes(tables: dict[object, list[Mode]]) -> dict[object, float]:
    """Hypervolume in F1 × cycles of every modes table, with one reference point for all."""
    ref_score = min(m.f1 for t in tables.values() for m in t)
    ref_cost = max(m.cycles_avg for t in tables.values() for m in t)
    return {
        k: float(
            hypervolume(
                np.array([m.f1 for m in t]),
                np.array([m.cycles_avg for m in t]),
                ref_score,
                ref_cost,
            )
        )
        for k, t in tables.items()
    }


def prefer_pair(
    volumes: dict[tuple[int, float], float], gaps: dict[tuple[int, float], float], rule: str
) -> tuple[int, float]:
    """The pair that ``rule`` (``large_choice``) prefers: the largest hypervolume of
    ``volumes`` or, for ``gap_then_hypervolume``, the largest among the pairs whose ``gaps``
    are not positive (NaN: no mode to compare, so no gap), else the smallest gap."""
    pool = list(volumes)
    if rule == "gap_then_hypervolume":
        pool = [k for k in volumes if not gaps[k] > 0] or [min(volumes, key=lambda k: gaps[k])]
    return max(pool, key=lambda k: volumes[k])


def executed_costs(
    small: tuple[SlimF32, SlimS8], large: tuple[SlimF32, SlimS8], profile: McuProfile
) -> dict[str, ExpectedCost]:
    """Eq. (3) costs of a pair of models executed on the emulator, by precision."""
    out = {}
    for k, precision in enumerate(("float32", "int8")):
        s: Executed = execute_window(small[k], profile)
        lg: Executed = execute_window(large[k], profile)
        out[precision] = ExpectedCost(s.net, s.policy, lg.net)
    return out


def deployed(net: SlimNet, width: float, calib_x: np.ndarray) -> tuple[SlimF32, SlimS8]:
    """The float32 and int8 deployable views of ``net`` at ``width``."""
    return export_f32(net, width), quantize(net, width, calib_x, quantize_weights(net))


def cascade_of(
    small: SlimNet,
    large: SlimNet,
    xy: tuple[np.ndarray, np.ndarray],
    profile: McuProfile,
    cfg: AdaptiveConfig,
    n_classes: int,
    calib_x: np.ndarray,
) -> tuple[list[Mode], ExpectedCost, Outputs, Outputs]:
    """Modes of the score-margin policy over two separate static models on windows ``xy``."""
    f32 = SlimNetC(export_f32(small, 1.0)), SlimNetC(export_f32(large, 1.0))
    s8 = [SlimNetC(quantize(n, 1.0, calib_x, quantize_weights(n))) for n in (small, large)]
    costs = expected_cost(*f32, profile)
    out = collect_outputs(*f32, xy[0])
    out_q = collect_outputs(*s8, xy[0])
    ths = thresholds(cfg.thresholds, cfg.th_min)
    return sweep(xy[1], out, costs, ths, n_classes, out_q), costs, out, out_q


def cascade_firsts(
    cands: list[Candidate],
    nets: list[SlimNet],
    large: int,
    xy: tuple[np.ndarray, np.ndarray],
    profile: McuProfile,
    cfg: AdaptiveConfig,
    n_classes: int,
    known: dict[int, list[Mode]],
) -> dict[int, list[Mode]]:
    """Float32 modes on windows ``xy``, counted on ``profile``, of the cascade with every grid
    model cheaper than M_l run first (index → modes); the ``known`` tables are kept as they
    are, not redone."""
    big = SlimNetC(export_f32(nets[large], 1.0))
    ths = thresholds(cfg.thresholds, cfg.th_min)
    out = dict(known)
    for i, cand in enumerate(cands):
        if i == large or i in out or cand.cycles >= cands[large].cycles:
            continue
        small = SlimNetC(export_f32(nets[i], 1.0))
        costs = expected_cost(small, big, profile)
        out[i] = sweep(xy[1], collect_outputs(small, big, xy[0]), costs, ths, n_classes)
    return out


def choose_cascade(
    cands: list[Candidate],
    nets: list[SlimNet],
    large: int,
    split: Split,
    profile: McuProfile,
    cfg: AdaptiveConfig,
    calib_x: np.ndarray,
    executed_profile: McuProfile | None,
) -> Cascade:
    """The cascade baseline: of the validation-front models cheaper than M_l, the one whose
    cascade with M_l has the largest validation hypervolume runs first."""
    on_front = front(cands, "val")
    firsts = [
        int(i)
        for i in np.flatnonzero(on_front)
        if i != large and cands[i].cycles < cands[large].cycles
    ]
    if not firsts:
        firsts = [min((i for i in range(len(cands)) if i != large), key=lambda i: cands[i].cycles)]
    n_classes = split.n_classes
    tables: dict[object, list[Mode]] = {
        i: cascade_of(nets[i], nets[large], split.val, profile, cfg, n_classes, calib_x)[0]
        for i in firsts
    }
    volumes = {int(i): v for i, v in hypervolumes(tables).items()}  # type: ignore[call-overload]
    first = max(volumes, key=lambda i: volumes[i])
    modes, costs, out, out_q = cascade_of(
        nets[first], nets[large], split.test, profile, cfg, n_classes, calib_x
    )
    executed = {}
    if executed_profile is not None:
        executed = executed_costs(
            deployed(nets[first], 1.0, calib_x),
            deployed(nets[large], 1.0, calib_x),
            executed_profile,
        )
    firsts = cascade_firsts(cands, nets, large, split.test, profile, cfg, n_classes, {first: modes})
    return Cascade(
        first,
        volumes,
        modes,
        costs,
        cands[first].bytes + cands[large].bytes,
        out,
        out_q,
        executed,
        firsts,
    )


def replicate_test(
    factor: int,
    cls: int,
    y: np.ndarray,
    outputs: tuple[Outputs, Outputs],
    costs: ExpectedCost,
    cascade: Cascade | None,
    static_preds: list[tuple[np.ndarray, np.ndarray]],
    cfg: AdaptiveConfig,
    n_classes: int,
) -> Replicated:
    """Modes and static scores on the test windows with class ``cls`` replicated ``factor``×."""
    idx = replicate_indices(y, cls, factor)
    yr = y[idx]
    ths = thresholds(cfg.thresholds, cfg.th_min)

    def pick(o: Outputs) -> Outputs:
        return Outputs(o.pred_small[idx], o.pred_large[idx], o.margin[idx])

    modes = sweep(yr, pick(outputs[0]), costs, ths, n_classes, pick(outputs[1]))
    cascade_modes = None
    if cascade is not None:
        cascade_modes = sweep(
            yr, pick(cascade.outputs), cascade.costs, ths, n_classes, pick(cascade.outputs_int8)
        )
    static = [
        (score(yr, p[idx], n_classes).macro_f1, score(yr, q[idx], n_classes).macro_f1)
        for p, q in static_preds
    ]
    return Replicated(factor, float((yr == cls).mean()), modes, cascade_modes, static)


def static_in_range(cands: list[Candidate], modes: list[Mode]) -> list[int]:
    """Static test-front models whose F1 lies in the F1 range of the adaptive Pareto modes (the
    paper's Table 3 count)."""
    pareto = [m.f1 for m in modes if m.pareto]
    lo, hi = min(pareto), max(pareto)
    on_front = front(cands, "test")
    return [int(i) for i in np.flatnonzero(on_front) if lo <= cands[i].f1_test <= hi]


def covering_static_set(cands: list[Candidate], modes: list[Mode]) -> list[int]:
    """The independent static models a naive system stores to offer the same F1 range: the
    front models inside the range and, when none of them reaches the top of the range, the
    cheapest front model that does (without it the static system misses the best modes)."""
    chosen = static_in_range(cands, modes)
    hi = max(m.f1 for m in modes if m.pareto)
    if not any(cands[i].f1_test >= hi for i in chosen):
        on_front = front(cands, "test")
        above = [int(i) for i in np.flatnonzero(on_front) if cands[i].f1_test >= hi]
        if above:
            chosen.append(min(above, key=lambda i: cands[i].cycles))
    return chosen


def static_memory_ratio(
    cands: list[Candidate], static_set: list[int], adaptive_bytes: int
) -> float | None:
    """The bytes of ``static_set`` over the variable-width network's ``adaptive_bytes``; None
    when the set is empty: no static model of the grid scores as high as the lowest adaptive
    Pareto mode, so no set of static models offers the adaptive range (a ratio of 0 would
    read as the static system being free)."""
    if not static_set:
        return None
    return sum(cands[i].bytes for i in static_set) / adaptive_bytes


def personalize(
    net: SlimNet, tr: tuple[np.ndarray, np.ndarray], cfg: AdaptiveConfig, seed: int
) -> SlimNet:
    """A copy of ``net`` fine-tuned on one user's TR_i, all widths jointly (Adam)."""
    mine = copy.deepcopy(net)
    train(
        mine,
        *tr,
        epochs=cfg.personalize_epochs,
        batch_size=cfg.batch_size,
        lr=cfg.personalize_lr,
        seed=seed,
    )
    return mine


def grid_identity(scenario: Scenario, cfg: AdaptiveConfig) -> dict[str, object]:
    """What a resumed ``grid.jsonl`` must have been written for: the scenario (name, sha256,
    seed) and the sha256 of its ``adaptive:`` section."""
    return {
        **scenario_identity(scenario),
        "adaptive_sha256": identity_sha256(cfg.model_dump(mode="json")),
    }


def grid_channels(cfg: AdaptiveConfig) -> list[list[int]]:
    """The grid's channel triples: from ``grid_channel_values`` when set, else
    ``grid_channels``."""
    if cfg.grid_channel_values is not None:
        return channel_triples(cfg.grid_channel_values)
    return cfg.grid_channels


def class_index(ds: HarDataset, name: str) -> int:
    """Index of class ``name`` among the dataset's classes.

    Raises:
        ValueError: naming the key, the class and the classes on offer.
    """
    if name not in ds.classes:
        raise ValueError(
            f"adaptive.replicate.activity: expected one of the classes {ds.classes}, got {name!r}"
        )
    return ds.classes.index(name)


@dataclass
class Grid:
    """One seed's trained and scored static grid, and what the later steps of its study need.

    Attributes:
        scenario: the scenario, at this study's seed.
        split: its windows; ``calib`` ``[cfg.calib_windows, C, T]``: the int8 calibration
            windows, drawn from ``split.train`` by seed.
        specs, candidates, nets, keys: each grid model's spec, scores, trained network and
            cache key, in grid order.
        static_preds: each grid model's float32 and int8 class predictions ``[N_test]``.
        profile: prices the counted operations; ``executed_profile`` the executed windows
            (None: no emulator, or none asked for).
        budget: the training arguments every network of the study shares.
        replicated_class: the class index of ``adaptive.replicate``, else None.
    """

    scenario: Scenario
    split: Split
    calib: np.ndarray
    specs: list[ModelSpec]
    candidates: list[Candidate]
    nets: list[SlimNet]
    keys: list[str]
    static_preds: list[tuple[np.ndarray, np.ndarray]]
    profile: McuProfile
    executed_profile: McuProfile | None
    budget: dict[str, object]
    replicated_class: int | None


def train_grid(
    scenario: Scenario,
    cfg: AdaptiveConfig,
    data_dir: str | None,
    log: Log,
    open_journal: Callable[[], Journal] | None = None,
) -> Grid:
    """The study's first steps: windows, split and the static grid, every model trained (or
    read from the cache), scored and priced. Each scored grid model is appended to the
    journal that ``open_journal`` opens (on ``grid.jsonl`` with :func:`grid_identity`) once
    the scenario's data-dependent keys are checked. PyTorch runs on one thread, which keeps
    results reproducible and is faster on a shared CPU."""
    torch.set_num_threads(1)
    profile = load_profile(cfg.profile)
    executed_profile = None
    if cfg.executed_profile is not None and available():
        executed_profile = load_profile(cfg.executed_profile)
    elif cfg.executed_profile is not None:
        log("emulator not installed: executed pricing skipped")
    ds, ws = load_windows(scenario, data_dir)
    replicated_class = None
    if cfg.replicate is not None:
        replicated_class = class_index(ds, cfg.replicate.activity)
    split = split_users(ds, ws, scenario, cfg)
    log(
        f"windows: train {len(split.train[1])}, val {len(split.val[1])}, test {len(split.test[1])}"
        f" ({len(split.users)} held-out users for personalization)"
    )
    _, c, t = ws.x.shape
    data = {"train": split.train, "val": split.val, "test": split.test}
    rng = np.random.default_rng(scenario.seed)
    calib = split.train[0][rng.permutation(len(split.train[0]))[: cfg.calib_windows]]
    options = train_options(cfg)
    budget = {"batch_size": cfg.batch_size, "lr": cfg.lr, "seed": scenario.seed, "options": options}
    pools = cfg.grid_pools if cfg.grid_pools is not None else [cfg.pool]
    specs = grid_specs(c, t, split.n_classes, grid_channels(cfg), cfg.grid_kernels, pools)
    log(f"grid: {len(specs)} models, at most {cfg.search_epochs} epochs each ({cfg.schedule})")
    cands, nets, keys, static_preds = [], [], [], []
    journal = open_journal() if open_journal is not None else None
    journaled = {Candidate.from_row(row).label for row in (journal.rows if journal else [])}
    for spec in specs:
        net, key, hit = trained_net(spec, (1.0,), split.train, epochs=cfg.search_epochs, **budget)
        cand = evaluate_static(net, data, profile, calib, executed_profile)
        if journal is not None and cand.label not in journaled:
            cand = Candidate.from_row(journal.append(cand.to_row()))
        cands.append(cand)
        nets.append(net)
        keys.append(key)
        x_test = split.test[0]
        static_preds.append(
            (
                SlimNetC(export_f32(net, 1.0)).forward(x_test)[0].argmax(axis=1),
                SlimNetC(deployed(net, 1.0, calib)[1]).forward(x_test)[0].argmax(axis=1),
            )
        )
        log(
            f"grid {cand.label}{' (cached)' if hit else ''}: val F1 {cand.f1_val:.3f}, test F1 "
            f"{cand.f1_test:.3f} (int8 {cand.f1_test_int8:.3f}), {cand.cycles:.3g} cycles, "
            f"{cand.bytes} B"
        )
    return Grid(
        scenario, split, calib, specs, cands, nets, keys, static_preds, profile,
        executed_profile, budget, replicated_class,
    )  # fmt: skip


def convert(
    grid: Grid, cfg: AdaptiveConfig, larges: list[int], log: Log
) -> dict[tuple[int, float], SlimNet]:
    """The two-width network of every grid model of ``larges`` at every ``small_widths`` width
    that fits (``(grid index, width)`` → network trained at that width and 1.0; cached)."""
    cands = grid.candidates
    var_nets = {}
    for i in larges:
        init = (grid.keys[i], grid.nets[i]) if cfg.init == "large" else None
        for w in cfg.small_widths:
            if not small_fits(cands[i].channels, w, cfg.min_small_channels):
                continue
            widths = sorted({w, 1.0, *cfg.extra_widths})
            var_nets[(i, w)], _, hit = trained_net(
                grid.specs[i], widths, grid.split.train, epochs=cfg.epochs, init=init,
                **grid.budget,
            )  # fmt: skip
            log(f"{cands[i].label} variable-width net at {widths}{' (cached)' if hit else ''}")
    return var_nets


def pair_scores(
    grid: Grid, cfg: AdaptiveConfig, var_nets: dict[tuple[int, float], SlimNet]
) -> tuple[dict[tuple[int, float], float], dict[tuple[int, float], float]]:
    """Of every two-width network of ``var_nets`` (``(grid index of M_l, small width)`` →
    network of that M_l trained at that width and 1.0), on the grid's validation windows: the
    hypervolume of its modes in F1 × cycles (eq. (3) costs on the grid's profile, one
    reference point for all pairs) and its largest F1 gap below the grid's validation static
    front (NaN: no mode is as dear as the cheapest static model)."""
    cands, (x, y) = grid.candidates, grid.split.val
    static_val = np.array([c.f1_val for c in cands]), np.array([c.cycles for c in cands])
    ths = thresholds(cfg.thresholds, cfg.th_min)
    tables: dict[object, list[Mode]] = {}
    for (i, w), net in var_nets.items():
        clf = build_classifier(net, w)
        costs = expected_cost(clf.small, clf.large, grid.profile)
        out = collect_outputs(clf.small, clf.large, x)
        tables[(i, w)] = sweep(y, out, costs, ths, grid.split.n_classes)
    volumes: dict[tuple[int, float], float] = hypervolumes(tables)  # type: ignore[assignment]
    gaps = {
        k: max_gap_to_static_front(
            np.array([m.f1 for m in t]), np.array([m.cycles_avg for m in t]), *static_val
        )
        for k, t in tables.items()
    }
    return volumes, gaps  # type: ignore[return-value]


def large_pool(cands: list[Candidate], cfg: AdaptiveConfig) -> tuple[list[int], dict[int, float]]:
    """The grid models (indices) that ``cfg`` converts into two-width networks, and the eq.
    (5) gains of the validation front: the largest-gain one for ``large_choice: gain``, else
    every ``large_pool`` model within ``score_drop`` (each able to host M_s).

    Raises:
        ValueError: when no model in range can host M_s.
    """
    eligible = [
        any(small_fits(k.channels, w, cfg.min_small_channels) for w in cfg.small_widths)
        for k in cands
    ]
    if cfg.large_choice == "gain":
        large, gains = choose_large(cands, cfg.score_drop, eligible)
        return [large], gains
    larges = large_candidates(cands, cfg.score_drop, eligible, cfg.large_pool)
    return larges, front_gains(cands, front(cands, "val"))


def run_study(
    scenario: Scenario,
    cfg: AdaptiveConfig,
    data_dir: str | None,
    log: Log,
    open_journal: Callable[[], Journal] | None = None,
) -> StudyResult:
    """Runs the whole study of one seed; ``log`` receives one line per step: the grid
    (:func:`train_grid`, journaled through ``open_journal``), M_l and the width of M_s as
    ``cfg.large_choice`` says, then :func:`finish_study`. Trained networks are cached by
    content (:mod:`fedhar.studies.adaptive_cache`), so a re-run trains nothing it trained
    before."""
    grid = train_grid(scenario, cfg, data_dir, log, open_journal)
    larges, gains = large_pool(grid.candidates, cfg)
    log(f"M_l candidates: {', '.join(grid.candidates[i].label for i in larges)}")
    var_nets = convert(grid, cfg, larges, log)
    volumes, val_gaps = pair_scores(grid, cfg, var_nets)
    pair = prefer_pair(volumes, val_gaps, cfg.large_choice)
    return finish_study(
        grid, cfg, var_nets[pair], pair, (volumes, val_gaps), gains, [scenario.seed], log
    )


def finish_study(
    grid: Grid,
    cfg: AdaptiveConfig,
    net: SlimNet,
    chosen: tuple[int, float],
    scores: tuple[dict[tuple[int, float], float], dict[tuple[int, float], float]],
    gains: dict[int, float],
    seeds: list[int],
    log: Log,
) -> StudyResult:
    """The study's last steps, with M_l and the width of M_s ``chosen`` (``(grid index,
    width)``; ``net`` its two-width network) by the validation of ``seeds``: the test modes,
    memory, the cascade, the replicated test sets and personalization. ``scores``: the
    validation hypervolume and gap of every pair considered (:func:`pair_scores`); ``gains``:
    the eq. (5) gains."""
    volumes, val_gaps = scores
    cands, split, calib, profile = grid.candidates, grid.split, grid.calib, grid.profile
    executed_profile, scenario, n_classes = grid.executed_profile, grid.scenario, split.n_classes
    data = {"train": split.train, "val": split.val, "test": split.test}
    large, small_width = chosen
    log(
        f"M_l = {cands[large].label}, M_s width {small_width} (validation hypervolume / gap: "
        + ", ".join(
            f"{cands[i].label} @{w}: {v:.4g} / {val_gaps[(i, w)]:.3f}"
            for (i, w), v in volumes.items()
        )
        + ")"
    )
    modes, costs, clf = modes_of(net, small_width, split.test, profile, cfg, n_classes, calib)
    static_set = covering_static_set(cands, modes)
    pair = (small_width, 1.0)
    pricings = [Pricing(profile.name, "float32", "counted")]
    result = StudyResult(
        candidates=cands,
        large_index=large,
        gains=gains,
        small_width=small_width,
        hypervolume={(cands[i].label, w): v for (i, w), v in volumes.items()},
        validation_gap={(cands[i].label, w): g for (i, w), g in val_gaps.items()},
        large_choice=cfg.large_choice,
        costs=costs,
        modes=modes,
        net=net,
        classifier=clf,
        adaptive_bytes=adaptive_bytes(net, pair),
        static_bytes_large=static_bytes(net),
        bn_overhead_fraction=bn_overhead_fraction(net, pair),
        static_in_range=static_in_range(cands, modes),
        static_set=static_set,
        static_set_bytes=sum(cands[i].bytes for i in static_set),
        normalizer=split.normalizer,
        pricings=pricings,
        replicated_class=None if cfg.replicate is None else cfg.replicate.activity,
        chosen_over_seeds=seeds,
    )
    for part in ("val", "test"):
        x, y = data[part]
        f1 = score(y, clf.small.forward(x)[0].argmax(axis=1), n_classes).macro_f1
        setattr(result, f"small_{part}_f1", f1)
    if executed_profile is not None:
        result.executed = executed_costs(
            deployed(net, small_width, calib), deployed(net, 1.0, calib), executed_profile
        )
        pricings += [Pricing(executed_profile.name, q, "executed") for q in ("float32", "int8")]
    log(
        f"modes: {sum(m.pareto for m in modes)} Pareto of {len(modes)}; M_s F1 val "
        f"{result.small_val_f1:.3f}, test {result.small_test_f1:.3f}"
    )
    if cfg.cascade:
        result.cascade = choose_cascade(
            cands, grid.nets, large, split, profile, cfg, calib, executed_profile
        )
        log(
            f"cascade: {cands[result.cascade.small_index].label} then {cands[large].label}, "
            f"{result.cascade.bytes} B"
        )
    if grid.replicated_class is not None and cfg.replicate is not None:
        x_test, y_test = split.test
        outputs = (
            collect_outputs(clf.small, clf.large, x_test),
            int8_outputs(net, small_width, calib, x_test),
        )
        for factor in cfg.replicate.factors:
            result.replicated.append(
                replicate_test(
                    factor,
                    grid.replicated_class,
                    y_test,
                    outputs,
                    costs,
                    result.cascade,
                    grid.static_preds,
                    cfg,
                    n_classes,
                )
            )
    for k, user in enumerate(sorted(split.users)[: cfg.personalize_users]):
        tr, ts = split.users[user]
        before, _, _ = modes_of(net, small_width, ts, profile, cfg, n_classes, calib)
        mine = personalize(net, tr, cfg, scenario.seed + k)
        after, _, _ = modes_of(mine, small_width, ts, profile, cfg, n_classes, calib)
        result.personalized.append(UserModes(user, mine, len(tr[1]), len(ts[1]), before, after))
        log(f"user {user}: F1 at Th=1 {before[-1].f1:.3f} -> {after[-1].f1:.3f}")
    return result
