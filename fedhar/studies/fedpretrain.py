"""Federated pretraining of a fold's general model: FedAvg over the fold's pretraining users.

:func:`federated_pretrain` is the counterpart of :func:`~fedhar.studies.pretrain.pretrain`
for ``pretrain.method: federated``. It is given the same windows (the fold's pretraining
users only, so a held-out user never contributes to its own fold's model) and holds out the
same validation users. Then, in process:

1. Each training user sends its sufficient statistics once (:mod:`fedhar.studies.fedavg`);
   the server pools them into the normalizer and the class weights and sends those back.
2. The model starts from the same seeded initialisation as centralized pretraining. Each
   round, the participants (every training user, or ``clients_per_round`` of them drawn by
   seed and round) receive the global float32 parameters, train ``local_epochs`` epochs on
   their own windows through the C training library (a fresh optimizer each round; batch order
   and augmentation from a generator seeded by seed, round and user), and send their
   parameters back; the server averages them weighted by the clients' windows (n_k / n).
3. With validation users, the round whose model scores the best macro-F1 on them is kept and
   ``patience`` rounds without a better one stop the run; without, the last round is kept.

Every round logs its participants, training loss, validation macro-F1, the parameter bytes
sent down and up (the arrays' ``nbytes``) and the C library's operation counts of the
clients' training. The result is cached by content like centralized pretraining, under a key
that adds the federated options.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from fedhar.data.types import WindowSet
from fedhar.metrics import score
from fedhar.models.spec import ModelSpec
from fedhar.models.torch_model import build_torch
from fedhar.models.training import class_weights_from_counts
from fedhar.ondevice.estimator import OpCounts
from fedhar.studies.fedavg import client_statistics, pooled_statistics, weighted_average
from fedhar.studies.pretrain import (
    CEngine,
    EpochLog,
    FederatedOptions,
    PretrainOptions,
    PretrainResult,
    RoundLog,
    epoch_batches,
    epoch_lr,
    resolved_engine,
    split_validation,
    through_cache,
)


def participants(users: Sequence[str], k: int | None, seed: int, round_: int) -> list[str]:
    """The users that train in 1-based round ``round_``: all of ``users``, or ``k`` of them
    drawn uniformly without replacement by a generator seeded with ``(seed, round_)``; in the
    order of ``users``."""
    if k is None or k >= len(users):
        return list(users)
    picked = np.random.default_rng([seed, round_]).choice(len(users), size=k, replace=False)
    return [users[i] for i in sorted(int(i) for i in picked)]


def client_generator(seed: int, round_: int, user: str) -> torch.Generator:
    """The generator of a client's batch order and augmentation in one round, seeded by a
    sha256 of ``(seed, round_, user)``: independent of who else takes part."""
    digest = hashlib.sha256(f"fedpretrain/{seed}/{round_}/{user}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


@dataclass(frozen=True)
class LocalUpdate:
    """A client's round.

    Attributes:
        state: its parameters after training, name → float32 array (what it sends).
        windows: training steps, one per window per epoch.
        loss: mean of its batch losses over the round (nats).
        ops: the C library's count of its training operations.
    """

    state: dict[str, np.ndarray]
    windows: int
    loss: float
    ops: OpCounts


def local_update(
    spec: ModelSpec,
    received: Mapping[str, np.ndarray],
    data: WindowSet,
    options: PretrainOptions,
    *,
    lr: float,
    epochs: int,
    class_weights: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    generator: torch.Generator,
) -> LocalUpdate:
    """``epochs`` epochs of the C training library on a client's raw windows
    ``data.x [N, C, T]``, from the ``received`` parameters, at learning rate ``lr`` with a
    fresh ``options.optimizer``; each epoch's batches come from
    :func:`~fedhar.studies.pretrain.epoch_batches` (``mean``, ``std`` ``[1, C, 1]``)."""
    engine = CEngine(spec, options, class_weights, init=received)
    engine.trainer.reset_counts()
    x = torch.from_numpy(np.ascontiguousarray(data.x, dtype=np.float32))
    y = torch.from_numpy(np.asarray(data.y, dtype=np.int64))
    total, batches, steps = 0.0, 0, 0
    for _ in range(epochs):
        xe, ye = epoch_batches(x, y, options, generator, mean, std)
        loss_sum, n_batches = engine.train_epoch(xe, ye, lr)
        total, batches, steps = total + loss_sum, batches + n_batches, steps + len(xe)
    counts = engine.trainer.counts().values()
    ops = sum((counted for phases in counts for counted in phases.values()), OpCounts())
    return LocalUpdate(engine.trainer.state_dict(), steps, total / max(batches, 1), ops)


def federated_pretrain(
    spec: ModelSpec,
    windows: WindowSet,
    options: PretrainOptions,
    federated: FederatedOptions,
    *,
    use_cache: bool = True,
    cache_dir: Path | None = None,
) -> PretrainResult:
    """The general model of one fold by FedAvg over the users of ``windows`` (the fold's
    pretraining users' raw windows ``[N, C, T]``), cached by
    :func:`~fedhar.studies.pretrain.cache_key` with ``federated``; ``log`` holds one entry
    per round, ``rounds`` the round figures and ``stats_bytes`` the statistics exchange.

    Raises:
        ValueError: a model the C library cannot train (BatchNorm), the torch engine, or
            ``clients_per_round`` above the number of training users.
    """
    if resolved_engine(spec, options) != "c":
        raise ValueError(
            f"federated pretraining trains in the C library; got engine {options.engine!r} "
            f"for model {spec.name!r}"
        )
    return through_cache(
        spec,
        windows,
        options,
        federated,
        lambda key: _fedavg(spec, windows, options, federated, key),
        use_cache=use_cache,
        cache_dir=cache_dir,
    )


def _fedavg(
    spec: ModelSpec,
    windows: WindowSet,
    options: PretrainOptions,
    federated: FederatedOptions,
    key: str,
) -> PretrainResult:
    """:func:`federated_pretrain` without its cache; ``key`` names the result."""
    split = split_validation(windows, options)
    users = split.train_users
    k = federated.clients_per_round
    if k is not None and k > len(users):
        raise ValueError(f"clients_per_round {k} is more than the {len(users)} training users")
    started = time.perf_counter()
    local = {u: split.train.subset(split.train.users == u) for u in users}
    stats = [client_statistics(d.x, d.y, spec.n_classes) for d in local.values()]
    pooled = pooled_statistics(stats, spec.input_channels, spec.input_length)
    normalizer = pooled.normalizer
    weights = class_weights_from_counts(pooled.class_counts)
    sent_back = np.concatenate([normalizer.mean, normalizer.std, weights.numpy()])
    stats_bytes = {"up": sum(s.nbytes for s in stats), "down": sent_back.nbytes * len(users)}
    mean = torch.tensor(normalizer.mean, dtype=torch.float32)[None, :, None]
    std = torch.tensor(normalizer.std, dtype=torch.float32)[None, :, None]
    seeded = build_torch(spec, seed=options.seed).spec_state_dict()
    model = {name: v.numpy().copy() for name, v in seeded.items()}
    schedule = replace(options, lr=federated.lr or options.lr, epochs=federated.rounds)
    held = split.held
    x_val = normalizer.transform(held.x) if len(held) else None
    judge = CEngine(spec, options, weights, init=model) if x_val is not None else None
    best_state, best_round, best_f1, stale = model, federated.rounds, -math.inf, 0
    log: list[EpochLog] = []
    rounds: list[RoundLog] = []
    for round_ in range(1, federated.rounds + 1):
        chosen = participants(users, k, options.seed, round_)
        down = sum(v.nbytes for v in model.values()) * len(chosen)
        updates = [
            local_update(
                spec,
                model,
                local[u],
                options,
                lr=epoch_lr(schedule, round_),
                epochs=federated.local_epochs,
                class_weights=weights,
                mean=mean,
                std=std,
                generator=client_generator(options.seed, round_, u),
            )
            for u in chosen
        ]
        counts = [len(local[u]) for u in chosen]
        model = weighted_average([u.state for u in updates], counts)
        steps = sum(u.windows for u in updates)
        loss = sum(u.loss * u.windows for u in updates) / max(steps, 1)
        val_f1 = math.nan
        if judge is not None and x_val is not None:
            judge.trainer.load_state_dict(model)
            val_f1 = score(np.asarray(held.y), judge.predict(x_val), spec.n_classes).macro_f1
        ops = sum((u.ops for u in updates), OpCounts())
        rounds.append(
            RoundLog(
                round=round_,
                participants=tuple(chosen),
                windows=steps,
                train_loss=loss,
                val_f1=val_f1,
                bytes_down=down,
                bytes_up=sum(v.nbytes for u in updates for v in u.state.values()),
                ops=asdict(ops),
            )
        )
        log.append(EpochLog(round_, loss, val_f1, steps))
        if judge is None:
            best_state, best_round = model, round_
        elif val_f1 > best_f1:
            best_state, best_round, best_f1, stale = model, round_, val_f1, 0
        else:
            stale += 1
            if stale >= options.patience:
                break
    return PretrainResult(
        state_dict={name: torch.from_numpy(v) for name, v in best_state.items()},
        normalizer=normalizer,
        log=log,
        best_epoch=best_round,
        train_users=users,
        val_users=split.val_users,
        cache_key=key,
        train_s=time.perf_counter() - started,
        rounds=rounds,
        stats_bytes=stats_bytes,
    )
