"""Pretraining of the general model on a fold's pretraining users, cached by content.

:func:`fit` is the deterministic training loop: class-weighted cross-entropy, SGD or Adam, a
seeded batch order, and early stopping on the macro-F1 of validation users. :func:`pretrain`
wraps it for one fold: it holds out validation users, fits the normalizer on the remaining
pretraining windows only, trains, and stores the state_dict, the normalizer and the training
log under ``<user cache>/pretrain/`` keyed by a sha256 of everything that determines the result
(the windows' bytes, the model spec, the options and a format version). A second call with the
same inputs loads the entry instead of training (:attr:`PretrainResult.from_cache`). An entry is
written to a temporary file and renamed into place, so processes pretraining in parallel never
leave or read a torn entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from fedhar.data.paths import user_cache_dir
from fedhar.data.preprocess import Normalizer
from fedhar.data.splits import validation_users
from fedhar.data.types import WindowSet
from fedhar.files import write_atomic
from fedhar.metrics import score
from fedhar.models.spec import ModelSpec
from fedhar.models.torch_model import SpecNet, build_torch
from fedhar.models.training import class_weights, deterministic_torch, numerical_environment
from fedhar.ondevice import clib
from fedhar.ondevice.ctrain import Trainer

# Bump when the training procedure changes in a way that changes its results.
CACHE_FORMAT = 3
FEDERATED_FORMAT = 1
"""Bump when federated pretraining changes in a way that changes its results (only
federated cache keys hold it)."""


@dataclass(frozen=True)
class PretrainOptions:
    """Hyper-parameters of pretraining (see the scenario's ``pretrain`` section).

    Attributes:
        optimizer: ``"sgd"`` or ``"adam"``.
        lr: learning rate (the initial one under a schedule).
        schedule: ``"constant"``, or ``"cosine"``: the learning rate follows a half cosine
            from ``lr`` at the first epoch down to 0 after the last (``epochs``).
        momentum: SGD momentum (ignored by Adam).
        weight_decay: L2 weight decay.
        batch_size: windows per batch.
        epochs: maximum number of epochs.
        patience: epochs without a better validation macro-F1 before stopping.
        val_fraction: share of the pretraining users held out for early stopping; 0 keeps the
            last epoch.
        augment_rotation_deg: largest angle, in degrees, of a random 3-D rotation applied to
            each training window's tri-axial accelerometer channels (0: none). It mimics a
            device worn slightly differently.
        augment_flips: also turn each training window's device by a random half-turn about one
            of its axes (or not), the orientations a phone takes in a pocket: upside down,
            or facing in or out. Gravity stays along the same device axis, so postures remain
            distinguishable.
        augment_spin_deg: largest angle, in degrees, of a random turn about the device's long
            (y) axis, the way a phone turns in a trouser pocket; gravity along y (standing)
            stays along y, gravity across it (sitting) moves between x and z. 0: none.
        engine: ``"c"`` (fedhar's C training library), ``"torch"`` (PyTorch, the reference;
            it alone trains BatchNorm on batch statistics) or ``"auto"`` (``c`` unless the
            model has BatchNorm layers); see :func:`resolved_engine`.
        seed: seeds the initial weights, the validation users and the batch order.
    """

    optimizer: str = "adam"
    lr: float = 0.002
    schedule: str = "constant"
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 30
    patience: int = 6
    val_fraction: float = 0.15
    augment_rotation_deg: float = 0.0
    augment_flips: bool = False
    augment_spin_deg: float = 0.0
    engine: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.engine not in ("auto", "c", "torch"):
            raise ValueError(f"engine must be 'auto', 'c' or 'torch', got {self.engine!r}")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.batch_size < 1 or self.epochs < 1 or self.patience < 1:
            raise ValueError("batch_size, epochs and patience must be >= 1")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        for name in ("augment_rotation_deg", "augment_spin_deg"):
            if not 0 <= getattr(self, name) <= 180:
                raise ValueError(f"{name} must be in [0, 180], got {getattr(self, name)}")

    @property
    def augments(self) -> bool:
        """True when training windows are rotated or flipped."""
        return self.augment_rotation_deg > 0 or self.augment_flips or self.augment_spin_deg > 0


@dataclass(frozen=True)
class FederatedOptions:
    """Options of federated pretraining (the scenario's ``pretrain.federated``).

    Attributes:
        rounds: FedAvg rounds (at most: with validation users, ``PretrainOptions.patience``
            rounds without a better validation macro-F1 stop it).
        local_epochs: epochs each participant trains on its own windows per round.
        clients_per_round: participants per round, drawn without replacement; None: all.
        lr: the local learning rate at round 1 (``PretrainOptions.schedule`` runs over the
            rounds); None: ``PretrainOptions.lr``.
    """

    rounds: int = 30
    local_epochs: int = 1
    clients_per_round: int | None = None
    lr: float | None = None

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.local_epochs < 1:
            raise ValueError("rounds and local_epochs must be >= 1")
        if self.clients_per_round is not None and self.clients_per_round < 1:
            raise ValueError(f"clients_per_round must be >= 1, got {self.clients_per_round}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


@dataclass(frozen=True)
class EpochLog:
    """One epoch of training.

    Attributes:
        epoch: 1-based epoch number.
        train_loss: mean class-weighted cross-entropy over the epoch's batches (nats).
        val_f1: macro-F1 on the validation users, or NaN without validation users.
        windows: training windows the epoch stepped on (a training step per window).
    """

    epoch: int
    train_loss: float
    val_f1: float
    windows: int = 0


@dataclass(frozen=True)
class RoundLog:
    """One round of federated pretraining.

    Attributes:
        round: 1-based round number.
        participants: the users that trained this round, in user order.
        windows: training steps of the participants, one per window per local epoch.
        train_loss: the participants' mean batch losses, weighted by their windows (nats).
        val_f1: macro-F1 of the aggregated model on the validation users, or NaN without.
        bytes_down: float32 parameter bytes the server sent, over all participants.
        bytes_up: float32 parameter bytes the participants sent back.
        ops: the participants' training operations, as counted by the C library, summed
            (:class:`~fedhar.ondevice.estimator.OpCounts` fields).
    """

    round: int
    participants: tuple[str, ...]
    windows: int
    train_loss: float
    val_f1: float
    bytes_down: int
    bytes_up: int
    ops: Mapping[str, int]

    def to_dict(self) -> dict[str, object]:
        """Plain JSON data."""
        return {**asdict(self), "participants": list(self.participants), "ops": dict(self.ops)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> RoundLog:
        """The inverse of :meth:`to_dict`."""
        values = dict(data)
        values["participants"] = tuple(values["participants"])  # type: ignore[call-overload]
        return cls(**values)  # type: ignore[arg-type]


@dataclass
class PretrainResult:
    """A pretrained general model and how it was obtained.

    Attributes:
        state_dict: the spec's ``state_dict`` keys → float32 tensors of the best epoch.
        normalizer: fitted on the pretraining (non-validation) users' windows; apply it to
            every window the model sees, the held-out users' included.
        log: one entry per epoch run.
        best_epoch: the epoch whose weights were kept.
        train_users: users whose windows trained the model.
        val_users: users held out for early stopping.
        cache_key: sha256 hex of the inputs; the cache entry's name.
        from_cache: True when loaded from the cache instead of trained.
        train_s: wall seconds :func:`fit` took in this process (0 from the cache).
        rounds: federated pretraining's rounds (empty for centralized pretraining); ``log``
            then holds one entry per round and ``best_epoch`` is the round kept.
        stats_bytes: federated pretraining's one-off exchange of statistics, ``{"up": bytes
            the clients sent, "down": bytes the server sent}`` (empty for centralized).
    """

    state_dict: dict[str, torch.Tensor]
    normalizer: Normalizer
    log: list[EpochLog]
    best_epoch: int
    train_users: list[str]
    val_users: list[str]
    cache_key: str
    from_cache: bool = False
    train_s: float = 0.0
    rounds: list[RoundLog] = field(default_factory=list)
    stats_bytes: dict[str, int] = field(default_factory=dict)

    def model(self, spec: ModelSpec) -> SpecNet:
        """The network of ``spec`` with these weights, in eval mode."""
        net = build_torch(spec, seed=0)
        net.load_state_dict(self.state_dict, strict=False)
        return net.eval()


def predict(net: nn.Module, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Class predictions ``[N]`` int64 of ``net`` (put in eval mode) for windows ``[N, C, T]``."""
    net.eval()
    out = np.empty(len(x), dtype=np.int64)
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size]))
            out[start : start + batch_size] = net(batch.float()).argmax(dim=1).numpy()
    return out


_HALF_TURNS = torch.tensor(
    [[1.0, 1.0, 1.0], [-1.0, -1.0, 1.0], [-1.0, 1.0, -1.0], [1.0, -1.0, -1.0]]
)


def _axis_angle(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: ``[n, 3, 3]`` rotations by ``angle`` ``[n]`` (radians) about unit
    ``axis`` ``[n, 3]``."""
    k = torch.zeros(len(axis), 3, 3)
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k = k - k.transpose(1, 2)
    sin, cos = angle.sin()[:, None, None], angle.cos()[:, None, None]
    return torch.eye(3).expand(len(axis), 3, 3) + sin * k + (1 - cos) * (k @ k)


def random_rotations(
    n: int, max_deg: float, flips: bool, generator: torch.Generator, spin_deg: float = 0.0
) -> torch.Tensor:
    """``[n, 3, 3]`` rotation matrices, drawn from ``generator`` only: a turn about the device
    y axis by an angle uniform in ``[-spin_deg, spin_deg]``, then a turn about a uniform random
    axis by an angle uniform in ``[0, max_deg]`` degrees, then (with ``flips``) one of the
    identity or the three half-turns about the device axes, chosen uniformly."""
    return _rotations([_draw_rotations(n, max_deg, flips, generator, spin_deg)])


_Draw = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]


def _draw_rotations(
    n: int, max_deg: float, flips: bool, generator: torch.Generator, spin_deg: float
) -> _Draw:
    """The random numbers of :func:`random_rotations` for ``n`` windows, in its draw order:
    axes ``[n, 3]``, angles ``[n]`` (radians), spins ``[n]`` or None, half-turns ``[n]`` or
    None."""
    axis = torch.randn(n, 3, generator=generator)
    angle = torch.rand(n, generator=generator) * math.radians(max_deg)
    spin = (
        (torch.rand(n, generator=generator) * 2 - 1) * math.radians(spin_deg)
        if spin_deg > 0
        else None
    )
    choice = torch.randint(0, len(_HALF_TURNS), (n,), generator=generator) if flips else None
    return axis, angle, spin, choice


def _rotations(draws: list[_Draw]) -> torch.Tensor:
    """The ``[n, 3, 3]`` rotations of several draws, concatenated (one batched computation)."""
    axis = torch.cat([d[0] for d in draws])
    axis = axis / axis.norm(dim=1, keepdim=True).clamp_min(1e-12)
    rot = _axis_angle(axis, torch.cat([d[1] for d in draws]))
    if draws[0][2] is not None:
        spin = torch.cat([d[2] for d in draws if d[2] is not None])
        rot = rot @ _axis_angle(torch.tensor([[0.0, 1.0, 0.0]]).expand(len(spin), 3), spin)
    if draws[0][3] is not None:
        choice = torch.cat([d[3] for d in draws if d[3] is not None])
        rot = _HALF_TURNS[choice][:, :, None] * rot
    return rot


def resolved_engine(spec: ModelSpec, options: PretrainOptions) -> str:
    """The engine that trains ``spec``: ``options.engine``, with ``auto`` resolved to ``c``
    unless the spec has BatchNorm layers (which the C library trains with frozen statistics).

    Raises:
        ValueError: ``c`` asked for a spec with BatchNorm layers.
    """
    has_bn = any(layer.kind == "batchnorm1d" for layer in spec.layers)
    if options.engine == "auto":
        return "torch" if has_bn else "c"
    if options.engine == "c" and has_bn:
        raise ValueError(
            f"the C engine cannot pretrain {spec.name!r}: it trains BatchNorm with frozen "
            "statistics; use engine 'torch' or 'auto'"
        )
    return options.engine


def epoch_lr(options: PretrainOptions, epoch: int) -> float:
    """Learning rate of 1-based ``epoch``: ``lr``, or under ``cosine``
    ``lr * (1 + cos(pi * (epoch - 1) / epochs)) / 2`` (torch's CosineAnnealingLR, eta_min 0)."""
    if options.schedule == "constant":
        return options.lr
    return options.lr * (1 + math.cos(math.pi * (epoch - 1) / options.epochs)) / 2


def epoch_batches(
    x: torch.Tensor,
    y: torch.Tensor,
    options: PretrainOptions,
    gen: torch.Generator,
    mean: torch.Tensor,
    std: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch's training windows in visiting order, augmented in sensor units, then
    normalized: ``(x [M, C, T], y [M])``; batch ``b`` is rows ``b * batch_size`` onwards.

    Both engines draw from ``gen`` in the same order: the epoch's permutation, then each
    batch's rotations. A 1-window tail batch is dropped (it breaks BatchNorm and adds nothing).
    """
    order = torch.randperm(len(x), generator=gen)
    if len(order) > options.batch_size and len(order) % options.batch_size == 1:
        order = order[:-1]
    xe = x[order]
    if options.augments:
        draws = [
            _draw_rotations(
                min(options.batch_size, len(order) - start),
                options.augment_rotation_deg,
                options.augment_flips,
                gen,
                options.augment_spin_deg,
            )
            for start in range(0, len(order), options.batch_size)
        ]
        xe = _rotations(draws) @ xe
    return (xe - mean) / std, y[order]


class _Engine(Protocol):
    """The training steps of one engine over a model initialised by :func:`build_torch`."""

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> tuple[float, int]:
        """Trains at ``lr`` on normalized windows ``x [M, C, T]`` and labels ``y [M]``, in
        batches of ``batch_size`` rows in order; returns (sum of batch losses, batches)."""
        ...

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class predictions ``[N]`` for normalized windows ``[N, C, T]``."""
        ...

    def state(self) -> dict[str, torch.Tensor]:
        """A copy of the spec's ``state_dict``."""
        ...


class _TorchEngine:
    def __init__(self, spec: ModelSpec, options: PretrainOptions, weights: torch.Tensor) -> None:
        self.net = build_torch(spec, seed=options.seed)
        self.loss_fn = nn.CrossEntropyLoss(weight=weights)
        if options.optimizer == "sgd":
            self.opt: torch.optim.Optimizer = torch.optim.SGD(
                self.net.parameters(),
                lr=options.lr,
                momentum=options.momentum,
                weight_decay=options.weight_decay,
            )
        else:
            self.opt = torch.optim.Adam(
                self.net.parameters(), lr=options.lr, weight_decay=options.weight_decay
            )
        self.batch_size = options.batch_size

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> tuple[float, int]:
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.net.train()
        total, batches = 0.0, 0
        for start in range(0, len(x), self.batch_size):
            self.opt.zero_grad(set_to_none=True)
            end = start + self.batch_size
            loss = self.loss_fn(self.net(x[start:end]), y[start:end])
            loss.backward()
            self.opt.step()
            total += float(loss.detach())
            batches += 1
        return total, batches

    def predict(self, x: np.ndarray) -> np.ndarray:
        return predict(self.net, x)

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in self.net.spec_state_dict().items()}


class CEngine:
    """fedhar's C training library (one call per epoch), with torch's initial weights (or
    ``init``, a state_dict of float32 arrays)."""

    def __init__(
        self,
        spec: ModelSpec,
        options: PretrainOptions,
        weights: torch.Tensor,
        init: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        sgd = options.optimizer == "sgd"
        self.trainer = Trainer(
            spec,
            "full",
            lr=options.lr,
            momentum=options.momentum if sgd else 0.0,
            weight_decay=options.weight_decay,
            class_weights=weights.numpy(),
            optimizer=options.optimizer,
        )
        if init is None:
            seeded = build_torch(spec, seed=options.seed).spec_state_dict()
            init = {k: v.numpy() for k, v in seeded.items()}
        self.trainer.load_state_dict(init)
        self.batch_size = options.batch_size

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> tuple[float, int]:
        self.trainer.set_lr(lr)
        mean = self.trainer.train_epoch(x.numpy(), y.numpy(), self.batch_size)
        batches = -(-len(x) // self.batch_size)
        return mean * batches, batches

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = np.empty(len(x), dtype=np.int64)
        for start in range(0, len(x), 4096):
            chunk = np.ascontiguousarray(x[start : start + 4096], dtype=np.float32)
            out[start : start + 4096] = self.trainer.logits(chunk).argmax(axis=1)
        return out

    def state(self) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(v.copy()) for k, v in self.trainer.state_dict().items()}


def fit(
    spec: ModelSpec,
    x_train: np.ndarray,
    y_train: np.ndarray,
    options: PretrainOptions,
    normalizer: Normalizer,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
) -> tuple[dict[str, torch.Tensor], list[EpochLog], int]:
    """Trains ``spec`` from a seeded initialisation; returns (best state_dict, log, best epoch).

    Args:
        spec: the model; its input shape must match the windows.
        x_train: ``[N, C, T]`` raw windows (sensor units); ``y_train``: ``[N]`` class indices.
        options: hyper-parameters, engine and seed.
        normalizer: fitted normalizer; training batches are augmented (if asked) in sensor
            units, then normalized with it.
        x_val, y_val: raw validation windows and labels; without them, the last epoch is kept.

    The initial weights come from :func:`build_torch` and the batch order and augmentation from
    a ``torch.Generator`` seeded with ``options.seed``, whatever the engine
    (:func:`resolved_engine`); the C library is deterministic and the torch engine runs with
    deterministic algorithms, so equal inputs give bit-identical weights.
    """
    expected = (spec.input_channels, spec.input_length)
    if x_train.ndim != 3 or tuple(x_train.shape[1:]) != expected:
        raise ValueError(f"windows must be [N, {expected[0]}, {expected[1]}], got {x_train.shape}")
    if len(x_train) == 0:
        raise ValueError("no training windows")
    if options.augments and spec.input_channels != 3:
        raise ValueError(
            f"rotation and flip augmentation need 3 accelerometer channels, got "
            f"{spec.input_channels}; turn augment_rotation_deg, augment_spin_deg and "
            "augment_flips off"
        )
    engine_name = resolved_engine(spec, options)
    mean = torch.tensor(normalizer.mean, dtype=torch.float32)[None, :, None]
    std = torch.tensor(normalizer.std, dtype=torch.float32)[None, :, None]
    # The C library is deterministic by construction; torch needs its deterministic kernels
    # (and switching them on costs a second of imports, which the C engine skips).
    with deterministic_torch() if engine_name == "torch" else nullcontext():
        weights = class_weights(y_train, spec.n_classes)
        engine: _Engine = (
            CEngine(spec, options, weights)
            if engine_name == "c"
            else _TorchEngine(spec, options, weights)
        )
        xt = torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32))
        yt = torch.from_numpy(np.asarray(y_train, dtype=np.int64))
        gen = torch.Generator().manual_seed(options.seed)
        has_val = x_val is not None and y_val is not None and len(x_val) > 0
        x_val_n = normalizer.transform(x_val) if has_val else None
        best_state = engine.state()
        best_f1, best_epoch, stale = -math.inf, options.epochs, 0
        log: list[EpochLog] = []
        for epoch in range(1, options.epochs + 1):
            xe, ye = epoch_batches(xt, yt, options, gen, mean, std)
            total, n_batches = engine.train_epoch(xe, ye, epoch_lr(options, epoch))
            val_f1 = math.nan
            if has_val:
                pred = engine.predict(x_val_n)
                val_f1 = score(np.asarray(y_val), pred, spec.n_classes).macro_f1
            log.append(EpochLog(epoch, total / max(n_batches, 1), val_f1, len(xe)))
            if not has_val:
                best_state = engine.state()
                best_epoch = epoch
                continue
            if val_f1 > best_f1:
                best_f1, best_epoch, stale = val_f1, epoch, 0
                best_state = engine.state()
            else:
                stale += 1
                if stale >= options.patience:
                    break
    return best_state, log, best_epoch


def windows_fingerprint(ws: WindowSet) -> str:
    """sha256 hex of a window set's bytes (x, y and users): identifies the data exactly."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(ws.x, dtype=np.float32).tobytes())
    digest.update(np.asarray(ws.y, dtype=np.int64).tobytes())
    digest.update("\n".join(str(u) for u in ws.users).encode())
    digest.update(str(ws.x.shape).encode())
    return digest.hexdigest()


def cache_key(
    spec: ModelSpec,
    windows: WindowSet,
    options: PretrainOptions,
    federated: FederatedOptions | None = None,
) -> str:
    """sha256 hex over the format version, the windows, the model spec JSON, the options (the
    engine resolved) and the build that trains: the torch version, and the C library's
    :func:`~fedhar.ondevice.clib.build_id` under the C engine. Federated pretraining adds its
    options and :data:`FEDERATED_FORMAT` (centralized keys hold neither, and stay as they
    were). Under the torch engine the key also holds the CPU kernels that train
    (:func:`~fedhar.models.training.numerical_environment` less the torch version, which is
    already there), because another instruction set trains other weights."""
    engine = resolved_engine(spec, options)
    content: dict[str, object] = {
        "format": CACHE_FORMAT,
        "windows": windows_fingerprint(windows),
        "spec": json.loads(spec.to_json()),
        "options": {**asdict(options), "engine": engine},
        "torch": torch.__version__.split("+")[0],
        "c_library": clib.build_id() if engine == "c" else None,
    }
    if engine == "torch":
        kernels = {k: v for k, v in numerical_environment().items() if k != "torch"}
        content["kernels"] = kernels
    if federated is not None:
        content["federated"] = {**asdict(federated), "format": FEDERATED_FORMAT}
    payload = json.dumps(content, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def pretrain_cache_dir() -> Path:
    """``<user cache>/pretrain``: ``$FEDHAR_CACHE_DIR/pretrain``, else ``~/.cache/fedhar/…``."""
    return user_cache_dir() / "pretrain"


@dataclass(frozen=True)
class ValidationSplit:
    """A fold's pretraining users split for validation (:func:`split_validation`).

    Attributes:
        train_users: users that train, in user order.
        val_users: users held out to choose the best epoch or round, in user order.
        train: the training users' windows; ``held``: the validation users' windows.
    """

    train_users: list[str]
    val_users: list[str]
    train: WindowSet
    held: WindowSet


def split_validation(windows: WindowSet, options: PretrainOptions) -> ValidationSplit:
    """Holds out ``options.val_fraction`` of the users of ``windows`` (chosen by seed, never
    by window) for validation; none when the fraction is 0 or there is a single user."""
    users = ordered_users(windows.users)
    val = (
        set(validation_users(users, options.val_fraction, options.seed))
        if (options.val_fraction > 0 and len(users) > 1)
        else set()
    )
    is_val = np.isin(windows.users, sorted(val))
    return ValidationSplit(
        [u for u in users if u not in val],
        [u for u in users if u in val],
        windows.subset(~is_val),
        windows.subset(is_val),
    )


def pretrain(
    spec: ModelSpec,
    windows: WindowSet,
    options: PretrainOptions,
    *,
    cache_dir: Path | None = None,
    use_cache: bool = True,
) -> PretrainResult:
    """Pretrains the general model on ``windows`` (all of one fold's pretraining users).

    Validation users (``options.val_fraction`` of the users, chosen by seed) are held out for
    early stopping. The normalizer is fitted on the other users' windows only, and both sets
    are normalized with it. The result is cached under ``cache_dir`` (default
    :func:`pretrain_cache_dir`) by :func:`cache_key`; a hit returns it with ``from_cache``.

    Args:
        spec: the model.
        windows: raw (unnormalized) windows ``[N, C, T]`` of the pretraining users.
        options: hyper-parameters and seed.
    """
    return through_cache(
        spec,
        windows,
        options,
        None,
        lambda key: _centralized(spec, windows, options, key),
        use_cache=use_cache,
        cache_dir=cache_dir,
    )


def _centralized(
    spec: ModelSpec, windows: WindowSet, options: PretrainOptions, key: str
) -> PretrainResult:
    """:func:`pretrain` without its cache; ``key`` names the result."""
    split = split_validation(windows, options)
    train, held = split.train, split.held
    normalizer = Normalizer().fit(train.x)
    started = time.perf_counter()
    state, log, best_epoch = fit(
        spec,
        train.x,
        train.y,
        options,
        normalizer,
        held.x if len(held) else None,
        held.y if len(held) else None,
    )
    return PretrainResult(
        state_dict=state,
        normalizer=normalizer,
        log=log,
        best_epoch=best_epoch,
        train_users=split.train_users,
        val_users=split.val_users,
        cache_key=key,
        train_s=time.perf_counter() - started,
    )


def through_cache(
    spec: ModelSpec,
    windows: WindowSet,
    options: PretrainOptions,
    federated: FederatedOptions | None,
    train: Callable[[str], PretrainResult],
    *,
    use_cache: bool,
    cache_dir: Path | None,
) -> PretrainResult:
    """The cached result of these inputs (:func:`cache_key`, under ``cache_dir``, default
    :func:`pretrain_cache_dir`) if ``use_cache`` finds one, else ``train(key)``, stored when
    ``use_cache``."""
    key = cache_key(spec, windows, options, federated)
    entry = cache_entry(spec, key, cache_dir)
    if use_cache:
        hit = load_entry(entry, key)
        if hit is not None:
            return hit
    result = train(key)
    if use_cache:
        store_entry(entry, result)
    return result


def cached(
    spec: ModelSpec,
    windows: WindowSet,
    options: PretrainOptions,
    *,
    cache_dir: Path | None = None,
    federated: FederatedOptions | None = None,
) -> PretrainResult | None:
    """The cached result :func:`pretrain` (or, with ``federated``,
    :func:`~fedhar.studies.fedpretrain.federated_pretrain`) would return for these inputs, or
    None on a miss."""
    key = cache_key(spec, windows, options, federated)
    return load_entry(cache_entry(spec, key, cache_dir), key)


def cache_entry(spec: ModelSpec, key: str, cache_dir: Path | None) -> Path:
    """The cache file of ``key``: ``<cache_dir>/<spec name>-<key[:32]>.pt`` (default
    directory :func:`pretrain_cache_dir`)."""
    directory = pretrain_cache_dir() if cache_dir is None else Path(cache_dir)
    return directory / f"{spec.name}-{key[:32]}.pt"


def ordered_users(users: Sequence[str] | np.ndarray) -> list[str]:
    """The distinct user ids of ``users``, numeric ids numerically first, then the others."""
    ids = {str(u) for u in users}
    return sorted(ids, key=lambda u: (0, int(u)) if u.isdigit() else (1, u))


def store_entry(entry: Path, result: PretrainResult) -> None:
    """Writes the entry atomically; a read-only or full cache only costs the next run time."""
    meta: dict[str, object] = {
        "cache_key": result.cache_key,
        "normalizer": result.normalizer.to_dict(),
        "log": [asdict(e) for e in result.log],
        "best_epoch": result.best_epoch,
        "train_users": result.train_users,
        "val_users": result.val_users,
    }
    if result.rounds:
        meta["rounds"] = [r.to_dict() for r in result.rounds]
        meta["stats_bytes"] = result.stats_bytes
    buffer = io.BytesIO()
    torch.save({"state_dict": result.state_dict, "meta": json.dumps(meta)}, buffer)
    with contextlib.suppress(OSError):
        write_atomic(entry, buffer.getvalue())


def load_entry(entry: Path, key: str) -> PretrainResult | None:
    """The cached result at ``entry``, or None if absent, unreadable or for another key."""
    if not entry.is_file():
        return None
    try:
        blob = torch.load(entry, map_location="cpu", weights_only=True)
        meta = json.loads(blob["meta"])
    except (OSError, RuntimeError, KeyError, ValueError, EOFError):
        return None
    if meta.get("cache_key") != key:
        return None
    return PretrainResult(
        state_dict=dict(blob["state_dict"]),
        normalizer=Normalizer.from_dict(meta["normalizer"]),
        log=[EpochLog(**e) for e in meta["log"]],
        best_epoch=int(meta["best_epoch"]),
        train_users=list(meta["train_users"]),
        val_users=list(meta["val_users"]),
        cache_key=key,
        from_cache=True,
        rounds=[RoundLog.from_dict(r) for r in meta.get("rounds", [])],
        stats_bytes=dict(meta.get("stats_bytes", {})),
    )
