"""The scenario file: a validated YAML description of one fedhar run.

:func:`load_scenario` reads and validates a YAML file into a :class:`Scenario`; every problem of
the file is reported at once (:class:`fedhar.schema.base.SchemaError`), one line each naming the
file, the key path, what was expected and what was found, e.g.
``scenarios/x.yaml: pretrain.lr: expected a finite number > 0, got 'fast'``.
``docs/scenario.md`` is the reference of every key (:mod:`fedhar.schema.docs`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, PrivateAttr, field_validator, model_validator

from fedhar.enums import Mode
from fedhar.schema.base import (
    KeyProblem,
    SchemaError,
    Strict,
    found,
    load_yaml_model,
    validate_model,
)
from fedhar.schema.battery import BatterySection
from fedhar.schema.mcu import ProfileName
from fedhar.schema.policies import (
    ChargingSection,
    PersonalizationSection,
    ThresholdSection,
    policy,
)

PayloadFormat = Literal["float32", "int8", "full_int8", "w4a4", "w2a2", "w1a1", "mixed"]
"""Formats of the model a federation sends (:mod:`fedhar.wire.payload`)."""
BitWidth = Literal[1, 2, 4, 8]
"""Bits of a layer's weights or activations."""
SelectionStrategy = Literal["all", "random", "battery_threshold", "soc_weighted", "utility"]
"""How the server picks each round's participants (:mod:`server.selection`)."""
LinkName = Literal["ble_1m", "ble_1m_dle", "ble_2m_dle"]
"""Radio links of ``fedhar/wearable/data/links.yaml`` (effective throughput, sources inside)."""
BATTERY_STRATEGIES: tuple[str, ...] = ("battery_threshold", "soc_weighted", "utility")
"""Strategies that read the state of charge the clients report (they need a battery)."""
HaptChannels = Literal["acc", "acc+gyro", "body_acc", "body_acc+gyro", "acc+body_acc", "uci_har"]
"""Channel sets of the hapt loader (``fedhar.data.hapt.CHANNEL_SETS``; every other dataset
takes ``acc`` only)."""
BITS_FILE = "bits.json"
"""The file of a compress output folder that holds its bits per layer
(``{"layer": [w_bits, a_bits], ...}``)."""


UCI_HAR_TEST_USERS: tuple[str, ...] = ("2", "4", "9", "10", "12", "13", "18", "20", "24")
"""UCI HAR's test volunteers (UCI HAR Dataset README.txt: "70% of the volunteers was selected
for generating the training data and 30% the test data"; ``subject_test.txt`` lists these 9;
zhou2024 §V-A1 uses the same split)."""


def split_test_users_field() -> Any:
    """The ``test_users`` setting of a `users` split (UCI HAR's and UCI HAPT's test volunteers
    by default), shared by the sections that split by users."""
    return Field(
        default_factory=lambda: list(UCI_HAR_TEST_USERS),
        min_length=1,
        description="Test users of the `users` split (default: the 9 test volunteers of UCI "
        "HAR and UCI HAPT, 2 4 9 10 12 13 18 20 24, from UCI HAR's subject_test.txt).",
    )


class DataConfig(Strict):
    """Which recordings to load and how to cut them into windows."""

    dataset: Literal["wisdm", "wisdm2019", "hapt", "synthetic"] = Field(
        description="Dataset loader: WISDM v1.1 raw, WISDM 2019 raw, UCI HAPT raw, or the "
        "deterministic synthetic generator."
    )
    data_dir: str | None = Field(
        None,
        description="Data directory; `--data-dir` overrides it. Unset: `$FEDHAR_DATA_DIR`, "
        "then the user cache directory.",
    )
    classes: list[str] | None = Field(
        None,
        description="Class subset, by the loader's class names or codes (WISDM 2019: "
        "activity codes such as `A`). Unset: the loader's default subset.",
    )
    channels: HaptChannels = Field(
        "acc",
        description="Sensor channels: `acc` (tri-axial total acceleration, every dataset); "
        "hapt also takes `body_acc` (gravity removed by a zero-phase 3rd-order Butterworth "
        "low-pass at 0.3 Hz), the 6-channel `acc+gyro`, `body_acc+gyro` and `acc+body_acc`, "
        "and `uci_har`, the 9-channel UCI HAR view (total acc, body acc, gyro).",
    )
    recording_device: Literal["phone", "watch"] = Field(
        "phone",
        validation_alias=AliasChoices("recording_device", "device"),
        description="Device the recordings were made with (WISDM 2019 only).",
    )
    target_fs: float | None = Field(
        None,
        gt=0,
        description="Resample every recording to this rate, in Hz. Unset: the dataset's "
        "native rate (recordings off the nominal rate are still resampled to it).",
    )
    window: int = Field(
        100, ge=20, le=200, description="Window length T, in samples (the paper uses 20-100)."
    )
    stride: int = Field(50, ge=1, description="Step between window starts, in samples.")
    train_fraction: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Share of each user's recording of each activity, in time order, that "
        "forms the local train set TR_i; the rest forms the test set TS_i.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra loader options passed as keywords, e.g. `n_users` for `synthetic`.",
    )


class SplitConfig(Strict):
    """How users are grouped into folds for pretraining the general model."""

    method: Literal["loso", "kfold"] = Field(
        "loso",
        description="`loso`: each user's general model is pretrained on all other users. "
        "`kfold`: users are split into `k` folds; a fold's users share a model pretrained on "
        "the other folds.",
    )
    k: int = Field(5, ge=2, description="Number of user folds for `kfold`.")


class ModelConfig(Strict):
    """The 1D-CNN architecture."""

    name: Literal["cnn3", "daghero", "contoli", "nas"] = Field(
        "cnn3",
        description="`cnn3`: the CNN of Craighero et al. 2023 (Conv32-Conv64-Dense50). "
        "`daghero`: the Conv+BatchNorm+ReLU+MaxPool template of Daghero et al. 2022. "
        "`contoli`: the 1D_CNN of Contoli et al. 2023 (Conv4 K3, MaxPool, Dense100). "
        "`nas`: an architecture found by the zhou2024 search of `fedhar compress` "
        "(Conv+ReLU layers, global average pooling, optional hidden Dense, classifier).",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword options of the model builder (`cnn3`: `pool`; `daghero`: "
        "`channels`, `kernels`, `pool`, `hidden`; `contoli`: `filters`, `kernel`, `pool`, "
        "`hidden`; `nas`: per searched layer `kernels` (0: identity, the layer left out), "
        "`filters` (kept filters, 0 for an identity) and `strides` (1: `same` padding, "
        "wider: `valid`; default 2, 1, 2, 1, ...), `hidden` dense units after pooling (0: "
        "none) and `sensors`, the kept sensor channels by name (e.g. `gyro_x`) or index "
        "into `data.channels`' view (default: all); the model is fed only those channels, "
        "in that order).",
    )


class FederatedPretrainConfig(Strict):
    """Federated pretraining (`pretrain.method: federated`): FedAvg from a seeded
    initialisation over the fold's pretraining users, each client's local epochs run by the C
    training library on its own windows. The optimizer, batch size, augmentation and
    validation users are those of `pretrain`, whose `val_fraction` and `patience` choose the
    best round and stop the rounds as they do epochs (`val_fraction: 0`: the last round is
    kept); the local optimizer starts fresh each round."""

    rounds: int = Field(30, ge=1, description="FedAvg rounds.")
    local_epochs: int = Field(
        1, ge=1, description="Epochs each participant trains on its own windows per round."
    )
    clients_per_round: int | None = Field(
        None,
        ge=1,
        description="Participants per round, drawn uniformly without replacement (seeded by "
        "the seed and the round) among the training users. Unset: every training user.",
    )
    lr: float | None = Field(
        None,
        gt=0,
        description="Local learning rate (initial, under `pretrain.schedule`, which then runs "
        "over the rounds: a half cosine from `lr` at round 1 down to 0 after the last). "
        "Unset: `pretrain.lr`.",
    )


class PretrainConfig(Strict):
    """Pretraining of the general model on a fold's pretraining users (cached)."""

    optimizer: Literal["sgd", "adam"] = Field("adam", description="Optimizer.")
    lr: float = Field(0.002, gt=0, description="Learning rate (initial, under a schedule).")
    schedule: Literal["constant", "cosine"] = Field(
        "constant",
        description="Learning-rate schedule: constant, or a half cosine from `lr` down to 0 "
        "over `epochs`.",
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum (`sgd` only).")
    weight_decay: float = Field(0.0, ge=0, description="L2 weight decay.")
    batch_size: int = Field(64, ge=1, description="Windows per batch.")
    epochs: int = Field(30, ge=1, description="Maximum number of epochs.")
    patience: int = Field(
        6, ge=1, description="Stop after this many epochs without a better validation macro-F1."
    )
    val_fraction: float = Field(
        0.15,
        ge=0,
        lt=1,
        description="Share of the pretraining users held out (by user, never by window) to "
        "choose the best epoch. 0 disables early stopping: the last epoch is kept.",
    )
    augment_rotation_deg: float = Field(
        0.0,
        ge=0,
        le=180,
        description="Largest angle, in degrees, of a random 3-D rotation of each training "
        "window's accelerometer axes (a device worn slightly differently). 0: off.",
    )
    augment_spin_deg: float = Field(
        0.0,
        ge=0,
        le=180,
        description="Largest angle, in degrees, of a random turn of each training window about "
        "the device's long (y) axis, as a phone turns in a trouser pocket; postures stay "
        "distinguishable (gravity along y or across it). 0: off.",
    )
    augment_flips: bool = Field(
        False,
        description="Also turn training windows by a random half-turn about a device axis "
        "(a phone upside down, or facing in or out, in the pocket).",
    )
    method: Literal["centralized", "federated"] = Field(
        "centralized",
        description="`centralized`: one training run over the pooled windows of the fold's "
        "pretraining users. `federated`: FedAvg over those users (`federated`); no window "
        "leaves its user, and the normalizer and class weights come from the users' summed "
        "statistics (per-channel sums and sums of squares, class counts).",
    )
    federated: FederatedPretrainConfig = Field(
        default_factory=FederatedPretrainConfig,
        description="Options of `method: federated` (ignored by `centralized`).",
    )
    engine: Literal["auto", "c", "torch"] = Field(
        "auto",
        description="What runs the training steps: `c`, fedhar's C training library (the "
        "on-device one, several times faster on a CPU); `torch`, PyTorch (the reference; it "
        "also trains BatchNorm on batch statistics, which the C library keeps frozen); "
        "`auto`, `c` unless the model has BatchNorm layers. Both draw the same initial "
        "weights, batch order and augmentation.",
    )


class PersonalizationConfig(Strict):
    """On-device personalization of the general model on each user's TR_i."""

    modes: list[Mode] = Field(
        default_factory=lambda: [Mode.NONE],
        min_length=1,
        description="Modes to run and report: `none` (the general model, No Pers.), `tl` "
        "(retrain the last dense layers), `full` (retrain all layers), `no_pretrain` (random "
        "initialisation, same budget).",
    )
    epochs: int = Field(20, ge=1, description="Personalization epochs.")
    lr: float = Field(0.01, gt=0, description="SGD learning rate.")
    batch_size: int = Field(32, ge=1, description="Windows per batch.")
    momentum: float = Field(0.0, ge=0, lt=1, description="SGD momentum.")
    warmup_epochs: int = Field(
        2, ge=0, description="Epochs that first retrain the last dense layer only (tl, full)."
    )
    tl_layers: int = Field(2, ge=1, description="Trainable dense layers, from the end, in `tl`.")
    guard_holdout_every: int = Field(
        0,
        ge=0,
        description="The guard (0: off): every this-many-th TR_i window is held out of "
        "training, and a job's model is deployed only if its macro F1 there beats the "
        "received model's; otherwise the device keeps the received model.",
    )

    @field_validator("guard_holdout_every")
    @classmethod
    def _guard_every(cls, v: int) -> int:
        if v == 1:
            raise ValueError("expected 0 (off) or >= 2 (1 would hold out every window), got 1")
        return v


class SelectionConfig(Strict):
    """How the server chooses each round's participants. It reads only what the clients
    reported at the end of the previous round: their state of charge and whether they were on
    (round 1: every device reports a full battery, on, with no loss or energy figure yet). A
    battery-powered client that is not chosen still lives the round and reports (status
    `skipped`, reason `not selected`)."""

    strategy: SelectionStrategy = Field(
        "all",
        description="`all`: every client. `random`: `k` clients drawn uniformly (seeded per "
        "round). `battery_threshold`: every client that is on with a state of charge >= "
        "`soc_min`. `soc_weighted`: `k` clients that are on, drawn without replacement with "
        "probability proportional to their state of charge. `utility` (in the spirit of EAFL, "
        "Arouj & Abdelmoniem 2022): the `k` clients of highest `L_i sqrt(n_i) / max_j(L_j "
        "sqrt(n_j)) - energy_weight E_i / E_left_i`, where `L_i` is the client's last "
        "reported training loss, `n_i` its TR_i windows, `E_i` the training and radio energy "
        "of its last round in the federation (J) and `E_left_i` its state of charge times its "
        "battery's energy (J); clients that are off or whose `E_i >= E_left_i` are left out, "
        "and a client not yet heard from scores 1 (loss) and 0 (energy).",
    )
    k: int | None = Field(
        None, ge=1, description="Participants per round (`random`, `soc_weighted`, `utility`)."
    )
    soc_min: float = Field(
        0.5, ge=0, le=1, description="`battery_threshold`: lowest reported state of charge."
    )
    energy_weight: float = Field(
        1.0, ge=0, description="`utility`: weight of the energy share against the loss term."
    )

    @model_validator(mode="after")
    def _k_given(self) -> SelectionConfig:
        if self.strategy in ("random", "soc_weighted", "utility") and self.k is None:
            raise KeyProblem(
                "k", f"expected a number of clients per round for strategy {self.strategy}, "
                "got none",
            )  # fmt: skip
        return self


class FederationConfig(Strict):
    """How the Flower server and the simulated MCU clients run."""

    engine: Literal["inprocess", "ray", "deployment"] = Field(
        "inprocess",
        description="Flower engine: in-process (default), Ray simulation, or "
        "SuperLink/SuperNode deployment.",
    )
    rounds: int = Field(1, ge=1, description="Federated rounds.")
    aggregation: Literal["none", "fedavg", "fedavg_features"] = Field(
        "none",
        description="Aggregation of personalized updates between rounds: none, FedAvg of all "
        "layers, or FedAvg of the shared feature layers only.",
    )
    payload: PayloadFormat = Field(
        "int8",
        description="Format of the model sent to the clients, and deployed on them: `float32`; "
        "`int8` (8-bit weights, float activations); `full_int8` (8-bit weights and "
        "activations, integer inference); `w4a4`, `w2a2`, `w1a1` (every conv and dense layer "
        "at 4, 2 or 1 bit); `mixed` (bits per layer from `bits` or `bits_from`). The "
        "integer formats carry the packed network of the BatchNorm-folded model; clients "
        "train its dequantized weights and re-quantize them with the received activation "
        "scales.",
    )
    bits: dict[str, tuple[BitWidth, BitWidth]] | None = Field(
        None,
        description="Payload `mixed`: layer name → `[w_bits, a_bits]` for every conv and dense "
        "layer of the model (the last layer's `a_bits` is unused: logits are float).",
    )
    bits_from: str | None = Field(
        None,
        description="Payload `mixed`: a compress output folder, relative to the scenario file, "
        f'whose `{BITS_FILE}` holds the `bits` mapping as JSON (`{{"conv1": [8, 8], ...}}`); '
        "read when the scenario is loaded.",
    )
    compression: Literal["ptq", "qat"] = Field(
        "ptq",
        description="How the server makes an integer payload from the pretrained model: "
        "`ptq`, post-training quantization (BatchNorm folded into the convs, activation "
        "scales calibrated on the fold's pretraining windows); `qat`, the same start, then "
        "PACT quantization-aware training on the fold's pretraining windows "
        "(`qat_epochs`, `qat_lr`).",
    )
    qat_epochs: int = Field(3, ge=1, description="QAT: epochs over the fold's pretraining windows.")
    qat_lr: float = Field(0.001, gt=0, description="QAT: Adam learning rate.")
    calibration_percentile: float = Field(
        99.99,
        gt=50,
        le=100,
        description="PTQ: each activation's clip is this percentile of its ReLU outputs over "
        "the calibration windows (100: the maximum); the input's of its absolute values.",
    )
    calibration_windows: int = Field(
        2048,
        ge=1,
        description="PTQ: pretraining windows (evenly spaced over the fold's) that calibrate "
        "the activation scales.",
    )
    users: list[str] | None = Field(
        None, description="Only these user ids take part. Unset: every user."
    )
    selection: SelectionConfig = Field(
        default_factory=SelectionConfig, description="Choice of each round's participants."
    )
    deadline_s: float | None = Field(
        None,
        gt=0,
        description="Round deadline, in simulated s. A client's round time is its job's "
        "counted cycles over its MCU's clock (the update mode's job) plus the bytes it "
        "received and sent over `link`'s throughput; a client past the deadline is a "
        "straggler (it still spent the energy). Unset: no deadline.",
    )
    stragglers: Literal["drop", "late"] = Field(
        "drop",
        description="A straggler's update: `drop`ped, or aggregated one round `late`.",
    )
    link: LinkName = Field(
        "ble_1m",
        description="Radio link of the round time (`fedhar/wearable/data/links.yaml`): "
        "`ble_1m` (no data length extension), `ble_1m_dle`, `ble_2m_dle`.",
    )
    _bits_source: str | None = PrivateAttr(None)

    @property
    def bits_source(self) -> str:
        """Where ``bits`` came from, for messages: the ``bits.json`` that ``bits_from`` named,
        or ``""`` (the scenario's own ``federation.bits``)."""
        return self._bits_source or ""

    @model_validator(mode="after")
    def _bits_for_mixed(self) -> FederationConfig:
        given = [k for k in ("bits", "bits_from") if getattr(self, k) is not None]
        if len(given) == 2:
            raise KeyProblem("bits_from", "expected bits or bits_from, got both")
        if self.payload == "mixed" and not given:
            raise KeyProblem(
                "bits",
                "expected [w_bits, a_bits] per conv and dense layer (or bits_from) for payload "
                "mixed, got neither",
            )
        if self.payload != "mixed" and given:
            raise KeyProblem(
                given[0], f"expected no per-layer bits with payload {self.payload}, got some "
                "(only payload mixed takes them)",
            )  # fmt: skip
        return self


class McuConfig(Strict):
    """The simulated device."""

    profile: ProfileName = Field(
        "stm32l496zg", description="MCU profile name (`fedhar/mcu/profiles`)."
    )


class BatteryConfig(BatterySection):
    """A battery-powered wearable under every client (unset: no battery). A federation round
    is a simulated period of `round_s` s that each client's device lives through: sensing,
    adaptive inference, the personalization job its policy picks (priced by the C library's
    measured cost of that job on the client's MCU profile, warm-up epochs included), radio
    and sleep. Each client reports its state of charge and energy by load. The other keys are
    those of a study scenario's `battery:` section; `modes` needs `csv` or `rows`."""

    capacity_mah: float = Field(gt=0, description="Battery capacity, in mAh.")
    round_s: float = Field(
        86400.0, gt=0, description="Simulated time of one federation round, in s (a day)."
    )
    charging: ChargingSection = Field(
        default_factory=lambda: policy("charging", "never"),
        description="Charging habit, by name and `params` (see [Policies](#policies)).",
    )
    personalization: PersonalizationSection = Field(
        default_factory=lambda: policy("personalization", "always_full"),
        description="Personalization policy, by name and `params` (see [Policies](#policies)).",
    )
    threshold: ThresholdSection = Field(
        default_factory=lambda: policy("threshold", "static", th=1.0),
        description="Adaptive-inference threshold policy, by name and `params` (see "
        "[Policies](#policies)).",
    )
    skip_below_soc: float | None = Field(
        None,
        ge=0,
        le=1,
        description="The server skips a client for a round (status `skipped`) when the state "
        "of charge it reported at the end of the previous round is below this fraction. "
        "Unset: no client is skipped.",
    )
    capacities_mah: list[float] | None = Field(
        None,
        min_length=1,
        description="Heterogeneous batteries: capacities in mAh (each > 0), given to the users "
        "by `assign`. Unset: every device has `capacity_mah`.",
    )
    profiles: list[ProfileName] | None = Field(
        None,
        min_length=1,
        description="Heterogeneous devices: MCU profile names, given to the users by `assign` "
        "(a node's `mcu-profile` still wins). Unset: every device has `mcu.profile`.",
    )
    assign: Literal["list", "draw"] = Field(
        "list",
        description="How users get `capacities_mah` and `profiles`: `list`, the i-th user in "
        "dataset order takes item i (the list repeats); `draw`, each user draws one item "
        "uniformly, seeded by the scenario's seed and the user id.",
    )

    @field_validator("capacities_mah")
    @classmethod
    def _positive(cls, v: list[float] | None) -> list[float] | None:
        bad = [c for c in v or [] if c <= 0]
        if bad:
            raise ValueError(f"expected capacities > 0 mAh, got {bad[0]}")
        return v

    @model_validator(mode="after")
    def _modes_given(self) -> BatteryConfig:
        if self.modes.csv is None and self.modes.rows is None:
            raise KeyProblem("modes", "expected csv or rows, got neither")
        return self

    def anchored(self, base_dir: Path) -> BatteryConfig:
        """This section with its relative file paths (``parts``, ``modes.csv``) made absolute
        against ``base_dir``, the directory of the scenario file they are relative to."""

        def absolute(path: str | None) -> str | None:
            if path is None or Path(path).is_absolute():
                return path
            return str((base_dir / path).resolve())

        modes = self.modes.model_copy(update={"csv": absolute(self.modes.csv)})
        return self.model_copy(update={"parts": absolute(self.parts), "modes": modes})


class SweepConfig(Strict):
    """A sweep: the scenario runs once per value, and the runs are compared. Either window
    lengths (Table II), or selection strategies crossed with round deadlines (a battery-aware
    federation study)."""

    window: list[int] | None = Field(
        None,
        min_length=1,
        description="Window lengths T to run, in samples (each 20-200); the stride scales with "
        "T so the overlap of `data` is kept. Each run goes to `OUT/T<length>/`.",
    )
    selection: list[SelectionConfig] | None = Field(
        None,
        min_length=1,
        description="Selection strategies to run (each a `federation.selection` mapping), each "
        "with every `deadline_s`. Each run goes to `OUT/<strategy>-<deadline>/` (`-none` "
        "without a deadline), and `OUT/strategies.md` compares them.",
    )
    deadline_s: list[float | None] | None = Field(
        None,
        min_length=1,
        description="Round deadlines to cross with `selection`, simulated s (`null`: no "
        "deadline). Unset: the scenario's `federation.deadline_s` only.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> SweepConfig:
        if (self.window is None) == (self.selection is None):
            raise KeyProblem(
                "window",
                "expected either window (window lengths) or selection (strategies), got "
                + ("both" if self.window else "neither"),
            )
        if self.deadline_s is not None and self.selection is None:
            raise KeyProblem("deadline_s", "expected it with selection, got it without")
        bad = [d for d in self.deadline_s or [] if d is not None and d <= 0]
        if bad:
            raise KeyProblem("deadline_s", f"expected deadlines > 0 s or null, got {bad[0]}")
        return self


class Scenario(Strict):
    """One fedhar run: data, folds, model, pretraining, personalization, federation, MCU and
    battery."""

    name: str = Field(min_length=1, description="Scenario name, shown in reports.")
    seed: int = Field(0, ge=0, description="Seed of every random choice in the run.")
    data: DataConfig = Field(description="Dataset and windows.")
    split: SplitConfig = Field(default_factory=SplitConfig, description="User folds.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Model.")
    pretrain: PretrainConfig = Field(
        default_factory=PretrainConfig, description="Pretraining of the general model."
    )
    personalization: PersonalizationConfig = Field(
        default_factory=PersonalizationConfig, description="Personalization on the device."
    )
    federation: FederationConfig = Field(
        default_factory=FederationConfig, description="Federation."
    )
    mcu: McuConfig = Field(default_factory=McuConfig, description="Device profile.")
    battery: BatteryConfig | None = Field(
        None,
        validation_alias=AliasChoices("battery", "device"),
        description="Battery-powered wearable under every client (unset: no battery).",
    )
    sweep: SweepConfig | None = Field(
        None, description="Run the scenario once per value and compare (unset: one run)."
    )

    def identity_dump(self) -> dict[str, Any]:
        """The scenario as JSON data for its identity hashes (journal, report header): the
        selection, deadline and heterogeneous-device keys are left out while they hold their
        defaults, so a scenario written before they existed keeps its hash."""
        dumped = self.model_dump(mode="json")
        for section, keys in _LATER_KEYS.items():
            values = dumped.get(section)
            if values is None:
                continue
            model = type(getattr(self, section))
            for key in keys:
                default = model.model_fields[key].get_default(call_default_factory=True)
                if isinstance(default, Strict):
                    default = default.model_dump(mode="json")
                if values[key] == default:
                    del values[key]
        return dumped

    @model_validator(mode="after")
    def _battery_for_battery_selection(self) -> Scenario:
        strategy = self.federation.selection.strategy
        if strategy in BATTERY_STRATEGIES and self.battery is None:
            raise KeyProblem(
                "federation.selection.strategy",
                f"expected a battery: section for strategy {strategy} (it reads the state of "
                "charge the devices report), got none; use all or random",
            )
        return self

    @model_validator(mode="after")
    def _federated_pretrain_in_c(self) -> Scenario:
        pre = self.pretrain
        if pre.method != "federated":
            return self
        if pre.engine == "torch" or self.model.name == "daghero":
            given = f"engine {pre.engine} with model {self.model.name}"
            raise KeyProblem(
                "pretrain.method",
                "expected centralized for a model or engine other than the C library's (the "
                f"clients of federated pretraining train in C, without BatchNorm), got {given}",
            )
        return self

    @model_validator(mode="after")
    def _engine_trains_model(self) -> Scenario:
        if self.pretrain.engine == "c" and self.model.name == "daghero":
            raise KeyProblem(
                "pretrain.engine",
                "expected torch or auto for a model with BatchNorm layers (the C library "
                "trains BatchNorm with frozen statistics), got c with model daghero",
            )
        return self


_LATER_KEYS = {
    "pretrain": ("method", "federated"),
    "federation": ("selection", "deadline_s", "stragglers", "link"),
    "battery": ("capacities_mah", "profiles", "assign"),
}
"""Keys that :meth:`Scenario.identity_dump` leaves out at their defaults."""


class _BitsFile(Strict):
    """The content of a ``bits.json``, validated as the ``bits`` mapping it stands for."""

    bits: dict[str, tuple[BitWidth, BitWidth]]


def read_bits(path: Path) -> dict[str, tuple[int, int]]:
    """The bits per layer in the JSON file ``path`` (:data:`BITS_FILE`):
    ``{"layer": [w_bits, a_bits], ...}``, each bit-width 1, 2, 4 or 8.

    Raises:
        fedhar.schema.base.SchemaError: one line per problem, naming the file (and the layer).
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemaError([f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError([f"{path}: cannot read: {exc}"]) from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise SchemaError([f"{path}: {where}: invalid JSON: {exc.msg}"]) from None
    if not isinstance(raw, dict) or not raw:
        raise SchemaError(
            [f"{path}: expected a mapping of layer names to [w_bits, a_bits], got {found(raw)}"]
        )
    try:
        return dict(validate_model({"bits": raw}, _BitsFile, str(path)).bits)
    except SchemaError as exc:
        lines = [line.replace(f"{path}: bits.", f"{path}: ", 1) for line in exc.lines]
        raise SchemaError(lines) from None


def load_scenario(path: str | Path) -> Scenario:
    """Reads and validates a scenario YAML file. A ``federation.bits_from`` folder's
    :data:`BITS_FILE` is read now: the scenario returned holds its content as
    ``federation.bits`` (and no ``bits_from``), so a copy of it needs no other file.

    Raises:
        fedhar.schema.base.SchemaError: every problem of the file, one line each naming the
            file, the key path, what was expected and what was found; or the problem of the
            ``bits.json``, naming that file.
    """
    scenario = load_yaml_model(path, Scenario)
    federation = scenario.federation
    if federation.bits_from is None:
        return scenario
    source = Path(path).parent / federation.bits_from / BITS_FILE
    if not source.is_file():
        what = f"expected a folder holding {BITS_FILE}, found no {source}"
        raise SchemaError([f"{path}: federation.bits_from: {what}"])
    resolved = federation.model_copy(update={"bits": read_bits(source), "bits_from": None})
    resolved._bits_source = str(source)
    return scenario.model_copy(update={"federation": resolved})
