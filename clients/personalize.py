"""Personalization of one model on one device, through the C training library.

:func:`run_mode` runs one mode of the paper's protocol (Craighero et al. 2023 §IV-B) on a
user's train set TR_i and scores it on the test set TS_i:

* ``none``: the received general model, evaluated as is;
* ``tl``: a warm-up on the last dense layer, then the last ``tl_layers`` dense layers;
* ``full``: the same warm-up, then every layer;
* ``no_pretrain``: a random initialisation trained on every layer for the same number of
  epochs (warm-up included), so that its budget matches ``full``.

With ``guard_holdout_every`` set, every so-many-th TR_i window is held out of training and
the job's model is deployed only if it beats the received model there (:func:`_guard`);
otherwise the record scores the received model.

The C library counts the operations it runs and its arena's peak bytes by category;
the device's MCU profile prices the operations in cycles, seconds and joules. After every
epoch the record's learning curve takes the epoch's mean training loss and the macro-F1 on
the windows trained on (with the guard: on its held-out windows); that evaluation is not
counted in the job's cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from clients.deploy import Deployment
from fedhar.enums import TRAINED_MODES, Mode
from fedhar.mcu import McuProfile
from fedhar.metrics import Scores, score
from fedhar.models.spec import ModelSpec
from fedhar.models.torch_model import build_torch
from fedhar.ondevice.ctrain import CATEGORIES, OpCounts, Trainer
from fedhar.results.record import ModeRecord
from fedhar.wire.protocol import TrainConfig

_MEMORY_KEYS = (*CATEGORIES, "total")


class DoesNotFit(Exception):
    """The model and mode need more SRAM than the device has."""


@dataclass(frozen=True)
class NormalizedData:
    """A user's local windows, normalized with the fold's normalizer.

    Attributes:
        x_train: ``[N_tr, C, T]`` float32 TR_i.
        y_train: ``[N_tr]`` int class indices.
        x_test: ``[N_ts, C, T]`` float32 TS_i.
        y_test: ``[N_ts]`` int class indices.
        n_classes: number of classes of the model.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int


def c_mode(mode: Mode) -> str:
    """The C library's trainable set for a personalization mode (``tl`` or ``full``)."""
    return "tl" if mode == Mode.TL else "full"


def arena_bytes(spec: ModelSpec, mode: Mode, config: TrainConfig) -> int:
    """Arena bytes the C library needs to personalize ``spec`` in ``mode``.

    The device streams its windows one batch at a time from flash, so the arena stores one
    batch of samples.
    """
    return int(
        Trainer.required_arena_bytes(
            spec,
            mode=c_mode(mode),
            tl_layers=config.tl_layers,
            momentum=config.momentum,
            n_stored_samples=config.batch_size,
        )
    )


def check_fits(
    spec: ModelSpec, modes: list[Mode], config: TrainConfig, profile: McuProfile
) -> None:
    """Raises :class:`DoesNotFit` naming bytes needed and available for the first training
    mode whose arena exceeds the device's SRAM."""
    for mode in modes:
        if mode == Mode.NONE:
            continue
        needed = arena_bytes(spec, mode, config)
        if not profile.fits(needed):
            raise DoesNotFit(
                f"mode {mode!r} of model {spec.name} (input {spec.input_channels}x"
                f"{spec.input_length}) needs {needed} bytes of SRAM, device {profile.name} "
                f"has {profile.sram_bytes} bytes"
            )


def total_ops(trainer: Trainer) -> OpCounts:
    """Operations counted since the last reset, summed over layers and phases."""
    total = OpCounts()
    for phases in trainer.counts().values():
        for ops in phases.values():
            total = total + ops
    return total


def _scores(trainer: Trainer, data: NormalizedData) -> Scores:
    """The trainer's model scored on TS_i."""
    logits = trainer.logits(data.x_test)
    return score(data.y_test, np.argmax(logits, axis=1), data.n_classes)


def _held_out(data: NormalizedData, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The held-out TR_i windows ``[H, C, T]`` and their labels ``[H]`` (``held`` ``[N_tr]``
    bool)."""
    return np.ascontiguousarray(data.x_train[held]), data.y_train[held]


def _guard(
    trainer: Trainer, received: Mapping[str, np.ndarray], data: NormalizedData, held: np.ndarray
) -> dict[str, float]:
    """The guard: the job's model against the received one on the held-out TR_i windows
    (``held`` ``[N_tr]`` bool). Leaves the trainer holding the model the device deploys: the
    job's when its macro F1 there is higher, else the received one. Its inference counts."""
    x, y = _held_out(data, held)
    candidate = trainer.state_dict()
    cand_f1 = score(y, np.argmax(trainer.logits(x), axis=1), data.n_classes).macro_f1
    trainer.load_state_dict(received)
    recv_f1 = score(y, np.argmax(trainer.logits(x), axis=1), data.n_classes).macro_f1
    deployed = cand_f1 > recv_f1
    if deployed:
        trainer.load_state_dict(candidate)
    return {
        "deployed": float(deployed),
        "candidate_f1": cand_f1,
        "received_f1": recv_f1,
        "n_holdout": float(held.sum()),
    }


def run_mode(
    deployment: Deployment,
    mode: Mode,
    data: NormalizedData,
    config: TrainConfig,
    profile: McuProfile,
) -> tuple[ModeRecord, dict[str, np.ndarray]]:
    """Runs ``mode`` from the received model; returns its record and its final weights. The
    record's ``f1`` scores the float model, its ``f1_deployed`` the model as the device
    deploys it in the payload's format (``none``: the received model as it came).

    Args:
        deployment: the received model, its spec (the one trained: folded for an integer
            network payload) and its format.
        mode: one of ``none``, ``tl``, ``full``, ``no_pretrain``.
        data: the user's windows.
        config: epochs, learning rate, batch, seed, …
        profile: the device, to price the counted operations.
    """
    spec, received = deployment.spec, deployment.received
    trainer = Trainer(
        spec,
        mode=c_mode(mode),
        tl_layers=config.tl_layers,
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=0.0,
        class_weights=None,
        n_stored_samples=config.batch_size,
        arena_bytes=arena_bytes(spec, mode, config),
    )
    if mode == Mode.NO_PRETRAIN:
        seed = config.seed + 7919 * config.round
        start = {k: v.numpy() for k, v in build_torch(spec, seed=seed).spec_state_dict().items()}
    else:
        start = dict(received)
    trainer.load_state_dict(start)
    if mode == Mode.NONE:
        scores = _scores(trainer, data)
        deployed = deployment.f1(trainer, data.x_test, data.y_test, None)
        return ModeRecord.scored(scores, f1_deployed=deployed), start

    rng = np.random.default_rng([config.seed, config.round, TRAINED_MODES.index(mode)])
    every = config.guard_holdout_every
    held = np.arange(data.y_train.shape[0]) % every == 0 if every else None
    x_fit = data.x_train if held is None else np.ascontiguousarray(data.x_train[~held])
    y_train = (data.y_train if held is None else data.y_train[~held]).astype(np.int32)
    n = int(y_train.shape[0])
    x_curve, y_curve = (x_fit, y_train) if held is None else _held_out(data, held)
    curve: dict[str, list[float]] = {"loss": [], "f1": []}
    ops = OpCounts()
    trainer.reset_counts()
    phases = [(1, config.warmup_epochs), (None, config.epochs)]
    if mode == Mode.NO_PRETRAIN:
        phases = [(None, config.warmup_epochs + config.epochs)]
    for last_layers, epochs in phases:
        if last_layers is None:
            trainer.set_trainable(mode=c_mode(mode), tl_layers=config.tl_layers)
        else:
            trainer.set_trainable(mode="tl", tl_layers=last_layers)
        for _ in range(epochs):
            loss = trainer.train_epoch(x_fit, y_train, config.batch_size, rng.permutation(n))
            ops = ops + total_ops(trainer)
            # The curve's evaluation is the simulator's, not the device's: its counts are
            # dropped so that the job's cycles and energy are the training's alone.
            predicted = np.argmax(trainer.logits(x_curve), axis=1)
            trainer.reset_counts()
            curve["loss"].append(loss)
            curve["f1"].append(score(y_curve, predicted, data.n_classes).macro_f1)
    guard: dict[str, float] = {}
    if held is not None:
        guard = _guard(trainer, received, data, held)
    ops = ops + total_ops(trainer)
    peaks = trainer.memory()
    memory = {k: int(v) for k, v in peaks.items() if isinstance(v, int) and k in _MEMORY_KEYS}
    state = {k: np.asarray(v, dtype=np.float32) for k, v in trainer.state_dict().items()}
    scores = _scores(trainer, data)
    cost = profile.cost(ops)
    record = ModeRecord.scored(
        scores,
        f1_deployed=deployment.f1(trainer, data.x_test, data.y_test, state),
        memory_bytes=memory,
        ops={k: int(v) for k, v in asdict(ops).items()},
        cycles=float(cost.cycles),
        seconds=float(cost.seconds),
        energy_j=float(cost.joules),
        guard=guard,
        curve=curve,
        curve_on="train" if held is None else "holdout",
    )
    return record, state
