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

from dataclasses import asdict, dataclass, field

from flwr.app import ConfigRecord, MetricRecord

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

MODES: tuple[str, ...] = ("none", "tl", "full", "no_pretrain")
TRAIN_MODES: tuple[str, ...] = ("tl", "full", "no_pretrain")


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
        modes: modes to run, a subset of :data:`MODES` in that order.
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
    modes: list[str]
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
        return ConfigRecord(asdict(self))

    @staticmethod
    def from_record(record: ConfigRecord) -> TrainConfig:
        return TrainConfig(
            round=int(record["round"]),
            user=str(record["user"]),
            modes=[str(m) for m in record["modes"]],
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


@dataclass(frozen=True)
class ModeResult:
    """What one mode cost and gave on the device.

    Attributes:
        f1: macro-F1 on TS_i of the float32 model.
        f1_int8: macro-F1 on TS_i after re-quantizing the model to int8.
        memory_bytes: peak arena bytes by category, as the C library names them, plus
            ``total``; empty for ``none``, which does not train.
        macs: multiply-accumulates counted by the C library over the whole job.
        cycles: MCU cycles of the job on the client's profile.
        seconds: MCU seconds of the job.
        energy_j: MCU energy of the job, in joules.
    """

    f1: float
    f1_int8: float
    memory_bytes: dict[str, int] = field(default_factory=dict)
    macs: int = 0
    cycles: float = 0.0
    seconds: float = 0.0
    energy_j: float = 0.0


@dataclass(frozen=True)
class ClientReport:
    """One client's reply to ``train``: numbers per mode plus sizes.

    Attributes:
        n_train: windows in TR_i.
        n_test: windows in TS_i.
        modes: mode name → its :class:`ModeResult`.
        payload_bytes_down: bytes on the wire of the model the client received.
        payload_bytes_up: bytes on the wire of the update it sends back (0 without one).
    """

    n_train: int
    n_test: int
    modes: dict[str, ModeResult]
    payload_bytes_down: int = 0
    payload_bytes_up: int = 0

    def to_record(self) -> MetricRecord:
        """Flat keys: ``n_train``, ``f1.<mode>``, ``memory_bytes.<mode>.<category>``, …"""
        flat: dict[str, int | float] = {
            "n_train": self.n_train,
            "n_test": self.n_test,
            "payload_bytes_down": self.payload_bytes_down,
            "payload_bytes_up": self.payload_bytes_up,
        }
        for mode, r in self.modes.items():
            flat[f"f1.{mode}"] = float(r.f1)
            flat[f"f1_int8.{mode}"] = float(r.f1_int8)
            flat[f"macs.{mode}"] = int(r.macs)
            flat[f"cycles.{mode}"] = float(r.cycles)
            flat[f"seconds.{mode}"] = float(r.seconds)
            flat[f"energy_j.{mode}"] = float(r.energy_j)
            for category, value in r.memory_bytes.items():
                flat[f"memory_bytes.{mode}.{category}"] = int(value)
        return MetricRecord(flat)

    @staticmethod
    def from_record(record: MetricRecord) -> ClientReport:
        """Inverse of :meth:`to_record`."""
        modes = [m for m in MODES if f"f1.{m}" in record]
        results = {}
        for mode in modes:
            prefix = f"memory_bytes.{mode}."
            memory = {k[len(prefix) :]: int(v) for k, v in record.items() if k.startswith(prefix)}
            results[mode] = ModeResult(
                f1=float(record[f"f1.{mode}"]),
                f1_int8=float(record[f"f1_int8.{mode}"]),
                memory_bytes=memory,
                macs=int(record[f"macs.{mode}"]),
                cycles=float(record[f"cycles.{mode}"]),
                seconds=float(record[f"seconds.{mode}"]),
                energy_j=float(record[f"energy_j.{mode}"]),
            )
        return ClientReport(
            n_train=int(record["n_train"]),
            n_test=int(record["n_test"]),
            modes=results,
            payload_bytes_down=int(record["payload_bytes_down"]),
            payload_bytes_up=int(record["payload_bytes_up"]),
        )
