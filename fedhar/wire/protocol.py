"""What the server and an MCU client say to each other: message types, record names, error
codes, and the plain dataclasses that travel inside Flower records.

A round has two kinds of messages:

* ``query`` (once, first): the server asks every node who it is. The reply's ConfigRecord
  ``node`` gives the user id, the MCU profile and the sizes of TR_i and TS_i; the server maps
  Flower's random node ids to users with it.
* ``train``: one message per client, each with its own model and config. Content: ArrayRecord
  ``model`` (the compressed general model, see :mod:`fedhar.wire.codec`) and ConfigRecord
  ``config`` (a :class:`TrainConfig`). The reply holds ConfigRecord ``info``, MetricRecord
  ``metrics`` (a :class:`ClientReport`) and, when a training mode ran, ArrayRecord ``update``
  (the personalized model of :attr:`TrainConfig.update_mode`, compressed as it came). With a
  battery-powered device (the scenario's ``device:`` section), the reply also holds
  MetricRecord ``device``: the round's state of charge, energy by load and jobs
  (:func:`fedhar.wearable.federation.report_record`).

A client that declines (the model does not fit its SRAM, or its policy skips the round)
replies with a Flower ``Error`` of code :data:`DECLINED` and a reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

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

DECLINED = 1001
"""Error code of a reply by which a client declines a round (its reason says why)."""


@dataclass(frozen=True)
class NodeInfo:
    """A node's answer to the ``query`` message.

    Attributes:
        user: the user whose data this node holds.
        profile: MCU profile name.
        sram_bytes: SRAM of the device, in bytes.
        n_train: windows in TR_i.
        n_test: windows in TS_i.
    """

    user: str
    profile: str
    sram_bytes: int
    n_train: int
    n_test: int

    def to_record(self) -> ConfigRecord:
        return ConfigRecord(asdict(self))

    @staticmethod
    def from_record(record: ConfigRecord) -> NodeInfo:
        return NodeInfo(
            user=str(record["user"]),
            profile=str(record["profile"]),
            sram_bytes=int(record["sram_bytes"]),
            n_train=int(record["n_train"]),
            n_test=int(record["n_test"]),
        )


@dataclass(frozen=True)
class TrainConfig:
    """One client's instructions for one round.

    Attributes:
        round: 1-based round number.
        user: the user the server believes this node holds (checked by the client).
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
        )
