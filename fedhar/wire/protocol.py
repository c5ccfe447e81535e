"""What the server and an MCU client say to each other: message types, record names, error
codes, and the plain dataclasses that travel inside Flower records.

A round has two kinds of messages:

* ``query`` (once, first): the server asks every node who it is. The reply's ConfigRecord
  ``node`` (a :class:`NodeInfo`) lists the users whose data the node holds and its MCU
  profile; the server maps Flower's random node ids to users with it.
* ``train``: one message per client (a user on a node), each with its own model and config.
  Content: ArrayRecord ``model`` (the compressed general model, see :mod:`fedhar.wire.codec`)
  and ConfigRecord ``config`` (a :class:`TrainConfig`). The reply holds the client's record
  (:class:`fedhar.results.record.ClientRecord`, spread by
  :func:`fedhar.results.record.to_flower` over MetricRecord ``metrics`` and ConfigRecord
  ``info``) and, when a training mode ran, ArrayRecord ``update`` (the personalized model of
  :attr:`TrainConfig.update_mode`, compressed as it came). A battery-powered wearable's round
  (state of charge, energy by load, jobs) is part of that record. With a battery, ConfigRecord
  ``device`` (key ``state``) carries the device's state both ways: the server sends the state
  the client replied with last round (``""`` for a fresh device), the client replies with its
  state at the end of this round. A client the server did not choose for the round gets a
  ``train`` message with :attr:`TrainConfig.participate` false and no ``model``: its device
  lives the round and reports, and it trains nothing.

A client that declines (the model does not fit its SRAM, or its policy skips the round)
replies with a Flower ``Error`` of code :data:`DECLINED` and a reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from flwr.app import ConfigRecord

from fedhar.enums import Mode

QUERY = "query"
TRAIN = "train"

NODE = "node"
MODEL = "model"
CONFIG = "config"
INFO = "info"
METRICS = "metrics"
UPDATE = "update"
DEVICE = "device"

DECLINED = 1001
"""Error code of a reply by which a client declines a round (its reason says why)."""


@dataclass(frozen=True)
class RunPaths:
    """The files a run reads and writes, from the run config (strings).

    Attributes:
        scenario: the scenario YAML (run config ``scenario``). A relative path is relative to
            the app directory, which ``flwr run`` ships with the app (``scenarios/*.yaml``).
        out: the output directory (``out``); a relative path is relative to the working
            directory.
        data_dir: the dataset directory (``data-dir``; None: the scenario's or
            ``FEDHAR_DATA_DIR``); a relative path is relative to the working directory.
    """

    scenario: str
    out: str
    data_dir: str | None


def run_paths(run_config: Mapping[str, object], app_dir: Path) -> RunPaths:
    """The run's paths, made absolute (see :class:`RunPaths`); ``app_dir`` is the directory
    of the Flower app (the one holding ``server/`` and ``clients/``).

    Raises:
        KeyError: the run config lacks ``scenario`` or ``out``.
    """
    scenario = Path(str(run_config["scenario"])).expanduser()
    if not scenario.is_absolute():
        scenario = app_dir / scenario
    data_dir = str(run_config.get("data-dir", "")) or None
    return RunPaths(
        scenario=str(scenario.resolve()),
        out=str(Path(str(run_config["out"])).expanduser().resolve()),
        data_dir=str(Path(data_dir).expanduser().resolve()) if data_dir else None,
    )


@dataclass(frozen=True)
class NodeInfo:
    """A node's answer to the ``query`` message.

    Attributes:
        users: the users whose data this node holds (none, one, or several).
        profile: MCU profile name of the node's clients.
        sram_bytes: SRAM of that MCU, in bytes.
    """

    users: list[str]
    profile: str
    sram_bytes: int

    def to_record(self) -> ConfigRecord:
        return ConfigRecord(asdict(self))

    @staticmethod
    def from_record(record: ConfigRecord) -> NodeInfo:
        return NodeInfo(
            users=[str(u) for u in record["users"]],
            profile=str(record["profile"]),
            sram_bytes=int(record["sram_bytes"]),
        )


@dataclass(frozen=True)
class TrainConfig:
    """One client's instructions for one round.

    Attributes:
        round: 1-based round number.
        user: the user this message is for (the node checks that it holds that user).
        fold: the fold whose general model the message carries.
        modes: modes to run, in :data:`fedhar.enums.MODES` order.
        epochs: personalization epochs after the warm-up.
        lr: SGD learning rate.
        batch_size: windows per batch.
        momentum: SGD momentum.
        warmup_epochs: epochs that first train only the last dense layer (tl, full).
        tl_layers: trainable dense layers, from the end, in ``tl``.
        seed: seeds the batch order and the ``no_pretrain`` initialisation.
        norm_mean: ``[C]`` per-channel mean of the fold's normalizer (data units).
        norm_std: ``[C]`` per-channel std of the fold's normalizer (data units).
        update_mode: the mode whose personalized model is sent back (``""``: none).
        payload_bytes: bytes on the wire of this message's ``model`` record.
        guard_holdout_every: the guard's held-out share of TR_i, one window in this many
            (0: no guard).
        participate: whether the client takes part in the round (False: a battery-powered
            client not chosen; its device only lives the round and reports).
    """

    round: int
    user: str
    fold: str
    modes: list[Mode]
    epochs: int
    lr: float
    batch_size: int
    momentum: float
    warmup_epochs: int
    tl_layers: int
    seed: int
    norm_mean: list[float]
    norm_std: list[float]
    update_mode: str = ""
    payload_bytes: int = 0
    guard_holdout_every: int = 0
    participate: bool = True

    def to_record(self) -> ConfigRecord:
        return ConfigRecord({**asdict(self), "modes": [m.value for m in self.modes]})

    @staticmethod
    def from_record(record: ConfigRecord) -> TrainConfig:
        return TrainConfig(
            round=int(record["round"]),
            user=str(record["user"]),
            fold=str(record["fold"]),
            modes=[Mode(str(m)) for m in record["modes"]],
            epochs=int(record["epochs"]),
            lr=float(record["lr"]),
            batch_size=int(record["batch_size"]),
            momentum=float(record["momentum"]),
            warmup_epochs=int(record["warmup_epochs"]),
            tl_layers=int(record["tl_layers"]),
            seed=int(record["seed"]),
            norm_mean=[float(v) for v in record["norm_mean"]],
            norm_std=[float(v) for v in record["norm_std"]],
            update_mode=str(record["update_mode"]),
            payload_bytes=int(record["payload_bytes"]),
            guard_holdout_every=int(record.get("guard_holdout_every", 0)),
            participate=bool(record.get("participate", True)),
        )
