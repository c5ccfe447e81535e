"""The adaptive-inference study of ``fedhar adaptive``, step by step.

scenario → windows → split (held-out users for personalization, each split in time into TR_i
and TS_i; the other users' windows split in time into train / validation / test) → static
grid (Fig. 4a) → M_l by eq. (5) → one jointly trained two-width network per candidate width
of M_s → the width with the better eq. (3) trade-off on validation → modes table on the test
windows → memory (Table 3) → per-user personalization and recomputed modes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fedhar.adaptive.export import export_f32
from fedhar.adaptive.memory import adaptive_bytes, bn_overhead_fraction, static_bytes
from fedhar.adaptive.modes import (
    ExpectedCost,
    Mode,
    Outputs,
    collect_outputs,
    expected_cost,
    hypervolume,
    sweep,
    thresholds,
)
from fedhar.adaptive.policy import AdaptiveClassifier
from fedhar.adaptive.quant import quantize, quantize_weights
from fedhar.adaptive.slim import SlimNet, build_slim, train
from fedhar.data.preprocess import Normalizer, make_windows
from fedhar.data.registry import load_dataset
from fedhar.data.splits import split_chronological, validation_users
from fedhar.data.types import HarDataset, WindowSet
from fedhar.mcu import McuProfile, load_profile
from fedhar.ondevice.slim_infer import SlimNetC
from fedhar.results.journal import Journal, identity_sha256, scenario_identity
from fedhar.schema.adaptive import AdaptiveConfig
from fedhar.schema.scenario import DataConfig, Scenario
from fedhar.studies.adaptive_search import (
    Candidate,
    choose_large,
    conv_shape,
    evaluate_static,
    front,
    grid_specs,
    small_fits,
)

Log = Callable[[str], None]
GRID_FILE = "grid.jsonl"
"""The journal of trained grid models (one :meth:`Candidate.to_row` per line)."""


@dataclass
class Split:
    """Normalized windows of the study, each ``(x [N, C, T], y [N])``.

    The global users' windows are split in time per (user, activity): the first
    ``train_fraction`` trains, the rest is halved in time into validation and test (as in the
    paper, test windows come from users seen in training). ``users`` maps each held-out user,
    never seen in global training, to its ``(TR_i, TS_i)`` for personalization.
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


@dataclass
class StudyResult:
    """Everything ``fedhar adaptive`` reports."""

    candidates: list[Candidate]
    large_index: int
    gains: dict[int, float]
    small_width: float
    width_hypervolume: dict[float, float]
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
    personalized: list[UserModes] = field(default_factory=list)


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
    """Held-out users (chosen by seed) for personalization; the others' windows split in time
    into train / validation / test (see :class:`Split`)."""
    held_out = validation_users(ds.users, cfg.holdout_users_fraction, scenario.seed)
    is_held = np.isin(ws.users, held_out)
    fraction = scenario.data.train_fraction
    train_ws, later = split_chronological(ws.subset(~is_held), fraction)
    val_ws, test_ws = split_chronological(later, 0.5)
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


def choose_small_width(
    nets: dict[float, SlimNet],
    val: tuple[np.ndarray, np.ndarray],
    profile: McuProfile,
    cfg: AdaptiveConfig,
    n_classes: int,
) -> tuple[float, dict[float, float]]:
    """Among the two-width networks ``nets`` (small width → network trained at that width and
    1.0), the width whose validation modes have the largest hypervolume in F1 × cycles (eq. (3)
    costs), with a reference point shared by all candidates. Also returns the hypervolumes."""
    ths = thresholds(cfg.thresholds, cfg.th_min)
    tables = {}
    for w, net in nets.items():
        clf = build_classifier(net, w)
        costs = expected_cost(clf.small, clf.large, profile)
        out = collect_outputs(clf.small, clf.large, val[0])
        tables[w] = sweep(val[1], out, costs, ths, n_classes)
    ref_score = min(m.f1 for t in tables.values() for m in t)
    ref_cost = max(m.cycles_avg for t in tables.values() for m in t)
    volumes = {
        w: float(
            hypervolume(
                np.array([m.f1 for m in t]),
                np.array([m.cycles_avg for m in t]),
                ref_score,
                ref_cost,
            )
        )
        for w, t in tables.items()
    }
    return max(volumes, key=lambda w: volumes[w]), volumes


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


def run_study(
    scenario: Scenario,
    cfg: AdaptiveConfig,
    data_dir: str | None,
    log: Log,
    journal: Journal | None = None,
) -> StudyResult:
    """Runs the whole study; ``log`` receives one line per step. Each trained grid model is
    appended to ``journal`` (opened on ``grid.jsonl`` with :func:`grid_identity`), and the
    models it already holds are not trained again. PyTorch runs on one thread, which keeps
    results reproducible and is faster on a shared CPU."""
    torch.set_num_threads(1)
    profile = load_profile(cfg.profile)
    ds, ws = load_windows(scenario, data_dir)
    split = split_users(ds, ws, scenario, cfg)
    log(
        f"windows: train {len(split.train[1])}, val {len(split.val[1])}, test {len(split.test[1])}"
        f" ({len(split.users)} held-out users for personalization)"
    )
    n_classes = split.n_classes
    _, c, t = ws.x.shape
    data = {"train": split.train, "val": split.val, "test": split.test}
    cands = []
    rows = journal.rows if journal is not None else []
    kept = {(k.channels, k.kernel): k for k in map(Candidate.from_row, rows)}
    for spec in grid_specs(c, t, n_classes, cfg.grid_channels, cfg.grid_kernels, cfg.pool):
        if conv_shape(spec) in kept:
            cands.append(kept[conv_shape(spec)])
            log(f"grid {cands[-1].label}: kept in {GRID_FILE}, not trained again")
            continue
        cand, _ = evaluate_static(
            spec,
            data,
            profile,
            epochs=cfg.search_epochs,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            seed=scenario.seed,
        )
        if journal is not None:
            cand = Candidate.from_row(journal.append(cand.to_row()))
        cands.append(cand)
        log(
            f"grid {cand.label}: val F1 {cand.f1_val:.3f}, test F1 {cand.f1_test:.3f}, "
            f"{cand.cycles:.3g} cycles, {cand.bytes} B"
        )
    eligible = [
        any(small_fits(c.channels, w, cfg.min_small_channels) for w in cfg.small_widths)
        for c in cands
    ]
    large, gains = choose_large(cands, cfg.score_drop, eligible)
    log(f"M_l = {cands[large].label} (gain {gains.get(large, float('nan')):.3g} F1/cycle)")
    chosen = cands[large]
    spec = grid_specs(c, t, n_classes, [list(chosen.channels)], [chosen.kernel], cfg.pool)[0]
    nets = {}
    for w in cfg.small_widths:
        if not small_fits(chosen.channels, w, cfg.min_small_channels):
            continue
        nets[w] = build_slim(spec, (w, 1.0), scenario.seed)
        train(
            nets[w],
            *split.train,
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            seed=scenario.seed,
        )
    small_width, volumes = choose_small_width(nets, split.val, profile, cfg, n_classes)
    net = nets[small_width]
    log(f"M_s width {small_width} (hypervolumes {volumes})")
    rng = np.random.default_rng(scenario.seed)
    calib = split.train[0][rng.permutation(len(split.train[0]))[: cfg.calib_windows]]
    modes, costs, clf = modes_of(net, small_width, split.test, profile, cfg, n_classes, calib)
    static_set = covering_static_set(cands, modes)
    deployed = (small_width, 1.0)
    result = StudyResult(
        candidates=cands,
        large_index=large,
        gains=gains,
        small_width=small_width,
        width_hypervolume=volumes,
        costs=costs,
        modes=modes,
        net=net,
        classifier=clf,
        adaptive_bytes=adaptive_bytes(net, deployed),
        static_bytes_large=static_bytes(net),
        bn_overhead_fraction=bn_overhead_fraction(net, deployed),
        static_in_range=static_in_range(cands, modes),
        static_set=static_set,
        static_set_bytes=sum(cands[i].bytes for i in static_set),
        normalizer=split.normalizer,
    )
    log(f"modes: {sum(m.pareto for m in modes)} Pareto of {len(modes)}")
    for k, user in enumerate(sorted(split.users)[: cfg.personalize_users]):
        tr, ts = split.users[user]
        before, _, _ = modes_of(net, small_width, ts, profile, cfg, n_classes, calib)
        mine = personalize(net, tr, cfg, scenario.seed + k)
        after, _, _ = modes_of(mine, small_width, ts, profile, cfg, n_classes, calib)
        result.personalized.append(UserModes(user, mine, len(tr[1]), len(ts[1]), before, after))
        log(f"user {user}: F1 at Th=1 {before[-1].f1:.3f} -> {after[-1].f1:.3f}")
    return result
