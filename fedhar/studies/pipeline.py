"""From a scenario to per-user data, folds, pretrained general models and No-Pers scores.

The data path, one function per step:

1. :func:`prepare` loads the dataset, cuts windows, splits each user's windows in time into a
   local train set TR_i and test set TS_i, and builds the folds and the model spec.
2. :func:`pretrain_fold` pretrains (or loads from the cache) the general model of a fold on
   all windows of the fold's pretraining users; none of the fold's test users is among them.
   :func:`pretrain_folds` does it for many folds, the uncached ones in parallel processes.
3. :func:`evaluate` scores a model on a user's TS_i, with the fold's normalizer, and
   :func:`evaluate_client` makes a user's No-Pers :class:`~fedhar.results.report.ClientRecord`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fedhar.data.paths import resolve_data_dir
from fedhar.data.preprocess import Normalizer, make_windows
from fedhar.data.registry import dataset_options, load_dataset
from fedhar.data.splits import kfold_users, loso_folds, split_chronological, validation_users
from fedhar.data.types import HarDataset, WindowSet
from fedhar.enums import Mode
from fedhar.errors import InputError, ScenarioValueError
from fedhar.metrics import Scores, score
from fedhar.models.spec import (
    ModelOptionError,
    ModelSpec,
    build_spec,
    model_options,
    sensor_indices,
)
from fedhar.results.record import ClientRecord, ModeRecord
from fedhar.schema.scenario import Scenario, load_scenario
from fedhar.studies.fedpretrain import federated_pretrain
from fedhar.studies.pretrain import (
    FederatedOptions,
    PretrainOptions,
    PretrainResult,
    cached,
    predict,
    pretrain,
)
from fedhar.wire.payload import layer_bits, payload_spec
from fedhar.workers import spawn_context


@dataclass
class UserData:
    """One user's local data.

    Attributes:
        user: user id.
        train: TR_i, the first ``train_fraction`` of each activity's windows, ``x [N, C, T]``.
        test: TS_i, the rest; no window shares a sample with a TR_i window.
    """

    user: str
    train: WindowSet
    test: WindowSet


@dataclass(frozen=True)
class Fold:
    """A group of users that share one general model.

    Attributes:
        name: ``"loso-<user>"`` or ``"kfold-<i>"``; names the fold in reports.
        test_users: users evaluated with this fold's model (and personalized from it).
        pretrain_users: users whose windows pretrain it; disjoint from ``test_users``.
    """

    name: str
    test_users: tuple[str, ...]
    pretrain_users: tuple[str, ...]


@dataclass
class Prepared:
    """Everything a run needs before training.

    Attributes:
        dataset: the loaded dataset (classes, channels, sample rate, load report); for model
            ``nas``, only the sensor channels the model keeps, in its order.
        windows: every window of every user, ``x [N, C, T]`` in sensor units, C the channels
            the model reads.
        users: per user id, in dataset order: TR_i and TS_i.
        folds: the folds whose test users take part in the run.
        spec: the model spec for these windows and classes.
        load_s: wall seconds spent loading the dataset (parsing, or its cache).
        windows_s: wall seconds spent cutting windows and splitting TR_i/TS_i.
    """

    dataset: HarDataset
    windows: WindowSet
    users: dict[str, UserData]
    folds: list[Fold]
    spec: ModelSpec
    load_s: float = 0.0
    windows_s: float = 0.0

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.dataset.classes)


def prepare(scenario: Scenario, data_dir: str | Path | None = None) -> Prepared:
    """Loads and windows the scenario's dataset and builds TR_i/TS_i, the folds and the spec.

    Args:
        scenario: the validated scenario.
        data_dir: the ``--data-dir`` flag; overrides ``scenario.data.data_dir``.

    Raises:
        fedhar.data.paths.DatasetMissingError: the dataset's files are not found.
        fedhar.data.reading.DataFileError: a dataset file cannot be read or decoded.
        fedhar.errors.ScenarioValueError: the scenario asks for options, classes, windows,
            users, folds or pooling the data cannot give, per-layer bits of layers the model
            lacks, or more federated pretraining clients per round than a fold's training
            users; it names the scenario key (or the ``bits.json`` file).
    """
    cfg = scenario.data
    _known_options("data.options", cfg.options, dataset_options(cfg.dataset))
    _known_options("model.options", scenario.model.options, model_options(scenario.model.name))
    directory = resolve_data_dir(data_dir if data_dir is not None else cfg.data_dir)
    started = time.perf_counter()
    with _blame("data.options"):
        dataset = load_dataset(
            cfg.dataset,
            directory,
            classes=cfg.classes,
            channels=cfg.channels,
            target_fs=cfg.target_fs,
            device=cfg.recording_device,
            seed=scenario.seed,
            **cfg.options,
        )
    loaded = time.perf_counter()
    view_channels = len(dataset.channels)
    model_opts = dict(scenario.model.options)
    if scenario.model.name == "nas":
        with _blame("model.options"):
            model_opts["sensors"] = sensor_indices(model_opts.get("sensors"), dataset.channels)
        dataset = dataset.with_channels(model_opts["sensors"])
    windows = make_windows(dataset, cfg.window, cfg.stride)
    all_users = [u for u in dataset.users if np.any(windows.users == u)]
    if len(dataset.users) < 2:
        raise ScenarioValueError(
            "data", f"expected the recordings of at least 2 users, found {len(dataset.users)}"
        )
    if len(all_users) < 2:
        raise ScenarioValueError(
            "data.window",
            f"expected a window that the recordings of at least 2 users can hold, got "
            f"{cfg.window} samples: {len(all_users)} user(s) of {cfg.dataset} have one that long",
        )
    clients = _clients(all_users, scenario.federation.users)
    users: dict[str, UserData] = {}
    for user in clients:
        train, test = split_chronological(windows.subset(windows.users == user), cfg.train_fraction)
        users[user] = UserData(user, train, test)
    folds = [f for f in _folds(all_users, scenario) if set(f.test_users) & set(clients)]
    folds = [
        Fold(f.name, tuple(u for u in f.test_users if u in users), f.pretrain_users) for f in folds
    ]
    with _blame("model.options"):
        spec = build_spec(
            scenario.model.name, view_channels, cfg.window, len(dataset.classes), **model_opts
        )
    _check_bits(scenario, spec)
    _check_participants(folds, pretrain_options(scenario), federated_options(scenario))
    return Prepared(
        dataset, windows, users, folds, spec, loaded - started, time.perf_counter() - loaded
    )


def _clients(all_users: list[str], requested: list[str] | None) -> list[str]:
    if requested is None:
        return all_users
    unknown = [u for u in requested if u not in all_users]
    if unknown:
        raise ScenarioValueError(
            "federation.users",
            f"expected users of the data ({', '.join(all_users)}), got {', '.join(unknown)}",
        )
    return [u for u in all_users if u in set(requested)]


def _folds(users: list[str], scenario: Scenario) -> list[Fold]:
    if scenario.split.method == "loso":
        return [Fold(f"loso-{u}", (u,), tuple(rest)) for u, rest in loso_folds(users)]
    if scenario.split.k > len(users):
        raise ScenarioValueError(
            "split.k",
            f"expected at most the number of users with windows ({len(users)}), "
            f"got {scenario.split.k}",
        )
    return [
        Fold(f"kfold-{i}", tuple(test), tuple(train))
        for i, (test, train) in enumerate(
            kfold_users(users, scenario.split.k, scenario.seed), start=1
        )
    ]


def _check_bits(scenario: Scenario, spec: ModelSpec) -> None:
    """Checks that a ``mixed`` payload's bits name exactly the model's conv and dense layers;
    the problem names ``federation.bits``, or the ``bits.json`` that ``bits_from`` read."""
    fed = scenario.federation
    if fed.payload != "mixed":
        return
    try:
        layer_bits(fed.payload, payload_spec(fed.payload, spec), fed.bits)
    except ValueError as exc:
        if fed.bits_source:
            raise InputError(f"{fed.bits_source}: {exc}") from None
        raise ScenarioValueError("federation.bits", str(exc)) from None


def _known_options(key: str, given: dict[str, object], allowed: list[str]) -> None:
    """Checks a scenario's free ``options`` mapping against the keywords its builder takes."""
    for name in given:
        if name not in allowed:
            raise ScenarioValueError(
                f"{key}.{name}", f"unknown option, expected one of: {', '.join(allowed)}"
            )


@contextmanager
def _blame(key: str) -> Iterator[None]:
    """Turns a ``ValueError`` of a step driven by scenario key ``key`` into a
    :class:`ScenarioValueError` naming it (``key.option`` for a
    :class:`~fedhar.models.spec.ModelOptionError`; an input error already naming its file or
    key passes through)."""
    try:
        yield
    except InputError:
        raise
    except ModelOptionError as exc:
        raise ScenarioValueError(f"{key}.{exc.option}", exc.message) from None
    except ValueError as exc:
        raise ScenarioValueError(key, str(exc)) from None


def pretrain_options(scenario: Scenario) -> PretrainOptions:
    """The scenario's ``pretrain`` section (but its ``method`` and ``federated``) and seed as
    :class:`PretrainOptions`."""
    return PretrainOptions(
        **scenario.pretrain.model_dump(exclude={"method", "federated"}), seed=scenario.seed
    )


def federated_options(scenario: Scenario) -> FederatedOptions | None:
    """The scenario's ``pretrain.federated`` as :class:`FederatedOptions` under ``method:
    federated``; None under ``centralized``."""
    if scenario.pretrain.method != "federated":
        return None
    return FederatedOptions(**scenario.pretrain.federated.model_dump())


def train_general(
    spec: ModelSpec,
    windows: WindowSet,
    options: PretrainOptions,
    federated: FederatedOptions | None,
    *,
    use_cache: bool = True,
) -> PretrainResult:
    """The general model of a fold's pretraining windows: centralized pretraining, or
    federated with ``federated`` (:func:`~fedhar.studies.fedpretrain.federated_pretrain`)."""
    if federated is None:
        return pretrain(spec, windows, options, use_cache=use_cache)
    return federated_pretrain(spec, windows, options, federated, use_cache=use_cache)


def fold_windows(prepared: Prepared, fold: Fold) -> WindowSet:
    """All windows (both halves) of the fold's pretraining users, ``x [N, C, T]``."""
    return prepared.windows.subset(np.isin(prepared.windows.users, list(fold.pretrain_users)))


def pretrain_fold(
    prepared: Prepared, fold: Fold, scenario: Scenario, *, use_cache: bool = True
) -> PretrainResult:
    """The general model of ``fold``: pretrained on its pretraining users, or from the cache."""
    return train_general(
        prepared.spec,
        fold_windows(prepared, fold),
        pretrain_options(scenario),
        federated_options(scenario),
        use_cache=use_cache,
    )


def _check_participants(
    folds: Sequence[Fold], options: PretrainOptions, federated: FederatedOptions | None
) -> None:
    """Checks that every fold has at least ``clients_per_round`` training users (its
    pretraining users but the validation ones)."""
    k = federated.clients_per_round if federated is not None else None
    if k is None:
        return
    for fold in folds:
        users = list(fold.pretrain_users)
        n_val = (
            len(validation_users(users, options.val_fraction, options.seed))
            if options.val_fraction > 0 and len(users) > 1
            else 0
        )
        if k > len(users) - n_val:
            raise ScenarioValueError(
                "pretrain.federated.clients_per_round",
                f"expected at most the number of training users of fold {fold.name} "
                f"({len(users) - n_val}), got {k}",
            )


def pretrain_folds(
    prepared: Prepared,
    folds: Sequence[Fold],
    scenario: Scenario,
    *,
    jobs: int = 1,
    threads: int = 1,
    use_cache: bool = True,
) -> Iterator[tuple[Fold, PretrainResult]]:
    """Yields ``(fold, general model)`` for each of ``folds``, in their order.

    Cached models are loaded here; the others are pretrained in up to ``jobs`` worker
    processes (spawned, each running torch on ``threads`` threads), or in this process when
    ``jobs`` is 1 or a single fold is missing. Pretraining is seeded and runs deterministic
    kernels, so the models, and the cache entries the workers write, are the same whatever
    ``jobs``.

    Raises:
        ValueError: ``jobs`` or ``threads`` is below 1.
    """
    if jobs < 1 or threads < 1:
        raise ValueError(f"jobs and threads must be >= 1, got jobs={jobs}, threads={threads}")
    options, federated = pretrain_options(scenario), federated_options(scenario)
    hits = {
        f.name: cached(prepared.spec, fold_windows(prepared, f), options, federated=federated)
        if use_cache
        else None
        for f in folds
    }
    misses = [f for f in folds if hits[f.name] is None]
    if jobs == 1 or len(misses) < 2:
        for fold in folds:
            yield (
                fold,
                hits[fold.name] or pretrain_fold(prepared, fold, scenario, use_cache=use_cache),
            )
        return
    workers = min(jobs, len(misses))
    pool = ProcessPoolExecutor(
        workers,
        mp_context=spawn_context(),
        initializer=torch.set_num_threads,
        initargs=(threads,),
    )
    # At most two folds per worker are queued, so at most that many copies of the windows wait.
    queued: deque[Future[_Trained]] = deque()
    todo = iter(misses)
    try:
        for fold in folds:
            while len(queued) < 2 * workers and (job := next(todo, None)) is not None:
                windows = fold_windows(prepared, job)
                queued.append(
                    pool.submit(
                        _pretrain_job, prepared.spec, windows, options, federated, use_cache
                    )
                )
            hit = hits[fold.name]
            if hit is not None:
                yield fold, hit
                continue
            yield fold, queued.popleft().result().result()
    finally:
        pool.shutdown(cancel_futures=True)


@dataclass(frozen=True)
class _Trained:
    """A worker's result: the state_dict as arrays (plain pickles, not torch's shared-memory
    tensors) and the rest of the :class:`PretrainResult`."""

    state: dict[str, np.ndarray]
    rest: PretrainResult

    def result(self) -> PretrainResult:
        return replace(
            self.rest, state_dict={k: torch.from_numpy(v) for k, v in self.state.items()}
        )


def _pretrain_job(
    spec: ModelSpec,
    windows: WindowSet,
    options: PretrainOptions,
    federated: FederatedOptions | None,
    use_cache: bool,
) -> _Trained:
    """One fold's pretraining in a worker process; it writes the cache entry itself."""
    result = train_general(spec, windows, options, federated, use_cache=use_cache)
    state = {k: v.numpy() for k, v in result.state_dict.items()}
    return _Trained(state, replace(result, state_dict={}))


def evaluate(net: nn.Module, normalizer: Normalizer, test: WindowSet, n_classes: int) -> Scores:
    """Scores ``net`` on raw windows ``test`` (``x [N, C, T]``), normalized with ``normalizer``.

    Raises:
        ValueError: ``test`` holds no windows.
    """
    if len(test) == 0:
        raise ValueError("no test windows to evaluate")
    return score(test.y, predict(net, normalizer.transform(test.x)), n_classes)


def evaluate_client(
    prepared: Prepared, fold: Fold, data: UserData, general: PretrainResult
) -> ClientRecord:
    """No-Pers record of one user: the fold's general model scored on the user's TS_i."""
    scores = evaluate(
        general.model(prepared.spec), general.normalizer, data.test, prepared.n_classes
    )
    return ClientRecord(
        user=data.user,
        fold=fold.name,
        n_train=len(data.train),
        n_test=len(data.test),
        modes={Mode.NONE: ModeRecord.scored(scores)},
    )


@lru_cache(maxsize=4)
def prepared(scenario_path: str, data_dir: str | None) -> Prepared:
    """The scenario's prepared data, read once per process."""
    return prepare(load_scenario(scenario_path), data_dir)
