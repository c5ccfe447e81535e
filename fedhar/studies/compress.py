"""The compression study of ``fedhar compress``: every architecture × format, trained, quantized,
run through the C kernels and priced (Daghero et al. 2022 §4.1–4.2, Contoli et al. 2023).

For each architecture (the scenario's ``model``, or the ``compress.grid`` over the daghero
template):

1. **float**: trained with BatchNorm in PyTorch (:func:`fedhar.studies.pretrain.fit`, early
   stopping on the validation macro-F1), then folded (:func:`fedhar.models.quantized.fold_state`);
2. **post-training formats** (Contoli et al. 2023): ``float32`` (the folded model through the
   C library's float forward), ``dynamic`` (int8 weights, activations quantized on the fly) and
   ``full_int8`` (8-bit weights and activations calibrated on training windows);
3. **QAT** at every fixed precision of ``compress.bits`` with PACT (``pact8`` … ``pact1``), from
   the folded float model.

Then the EdMIPS search (``compress.mixed``) starts from the best 8-bit architectures on the
validation F1-vs-memory front, once per λ, and each assignment it chooses is fine-tuned with QAT
(format ``mixed``). Every deployed model is scored on the test windows *by the C kernels*
(:mod:`fedhar.ondevice.qnet_infer`), and priced from the operations they count on every profile.
Each model is a journal row (``models.jsonl``), appended as soon as it is scored, so an
interrupted study resumes where it stopped; float models are kept in ``states/`` for the
formats that start from them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedhar.compress import edmips, ptq, qat
from fedhar.data.preprocess import Normalizer
from fedhar.data.splits import split_by_users, split_chronological
from fedhar.data.types import WindowSet
from fedhar.mcu import McuProfile, load_profile
from fedhar.metrics import score
from fedhar.models.quantized import (
    BITS,
    DynamicNet,
    QLinear,
    QNet,
    fold_spec,
    fold_state,
    quantize,
    quantize_dynamic,
)
from fedhar.models.spec import ModelSpec, build_spec
from fedhar.ondevice import qnet_infer
from fedhar.ondevice.ctrain import Trainer
from fedhar.ondevice.estimator import OpCounts, estimate_inference
from fedhar.ondevice.qnet_estimate import layer_ops
from fedhar.results.journal import Journal, identity_sha256, scenario_identity
from fedhar.schema.compress import CompressConfig
from fedhar.schema.scenario import Scenario
from fedhar.studies.adaptive import load_windows
from fedhar.studies.pretrain import PretrainOptions, fit

EXECUTED_PROFILE = "stm32l496zg_fedhar"
"""The profile whose instruction timings price the emulated executions."""
MODELS_FILE = "models.jsonl"
"""The journal of scored models (one :meth:`ModelRow.to_row` per line)."""
STATES_DIR = "states"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Data:
    """Normalized windows ``x [N, C, T]`` float32 and labels ``y [N]`` of each part."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    raw_train: tuple[np.ndarray, np.ndarray]
    raw_val: tuple[np.ndarray, np.ndarray]
    normalizer: Normalizer
    n_classes: int
    classes: list[str]

    def calib(self, n: int, seed: int) -> np.ndarray:
        """``n`` training windows drawn by ``seed`` (calibration of activation scales)."""
        x = self.train[0]
        idx = np.random.default_rng(seed).permutation(len(x))[:n]
        return x[np.sort(idx)]


def split_data(ws: WindowSet, classes: list[str], scenario: Scenario, cfg: CompressConfig) -> Data:
    """Train / validation / test windows of ``ws`` as ``cfg.split`` says, normalized on train."""
    if cfg.split == "chronological":
        train_ws, later = split_chronological(ws, scenario.data.train_fraction)
        val_ws, test_ws = split_chronological(later, 0.5)
    elif cfg.split == "users":
        train_ws, val_ws, test_ws = split_by_users(
            ws, cfg.test_users, cfg.val_fraction, scenario.seed, "compress.test_users"
        )
    else:
        rng = np.random.default_rng(scenario.seed)
        order = rng.permutation(len(ws))
        n_test = int(round(cfg.test_fraction * len(ws)))
        test_idx, rest = order[:n_test], order[n_test:]
        n_val = int(round(cfg.val_fraction * len(rest)))
        val_idx, train_idx = rest[:n_val], rest[n_val:]

        def pick(idx: np.ndarray) -> WindowSet:
            mask = np.zeros(len(ws), dtype=bool)
            mask[idx] = True
            return ws.subset(mask)

        train_ws, val_ws, test_ws = pick(train_idx), pick(val_idx), pick(test_idx)
    norm = Normalizer().fit(train_ws.x)

    def xy(part: WindowSet) -> tuple[np.ndarray, np.ndarray]:
        return norm.transform(part.x), np.asarray(part.y, dtype=np.int64)

    return Data(
        xy(train_ws),
        xy(val_ws),
        xy(test_ws),
        (train_ws.x, np.asarray(train_ws.y, dtype=np.int64)),
        (val_ws.x, np.asarray(val_ws.y, dtype=np.int64)),
        norm,
        len(classes),
        list(classes),
    )


# ---------------------------------------------------------------------------------------------
# Architectures


@dataclass(frozen=True)
class Arch:
    """One architecture: its label (e.g. ``C8-16-16 K7``) and model spec (with BatchNorm)."""

    label: str
    spec: ModelSpec


def architectures(scenario: Scenario, cfg: CompressConfig, c: int, t: int, k: int) -> list[Arch]:
    """The scenario's model, or the grid over the daghero template (``model.options`` other than
    channels and kernels, e.g. ``pool``, apply to every grid model)."""
    options = dict(scenario.model.options)
    if cfg.grid is None:
        spec = build_spec(scenario.model.name, c, t, k, **options)
        return [Arch(scenario.model.name, spec)]
    options.pop("channels", None)
    options.pop("kernels", None)
    out = []
    for channels in cfg.grid.channels:
        for kernel in cfg.grid.kernels:
            spec = build_spec(
                "daghero",
                c,
                t,
                k,
                channels=tuple(channels),
                kernels=(kernel,) * len(channels),
                **options,
            )
            out.append(Arch(f"C{'-'.join(map(str, channels))} K{kernel}", spec))
    return out


# ---------------------------------------------------------------------------------------------
# Scored models


@dataclass(frozen=True)
class ModelRow:
    """One deployed model and what it scores and costs.

    Attributes:
        arch: architecture label.
        format: ``float32``, ``dynamic``, ``full_int8``, ``pact8`` … ``pact1`` or ``mixed``.
        bits: layer → ``[w_bits, a_bits]`` (empty for float32; ``a_bits`` 0 for the logits).
        lam: EdMIPS λ (mixed models only).
        f1_val, f1_test: macro-F1 of the deployed model (C kernels) on validation and test.
        memory_bytes: deployed model bytes (packed weights and per-channel data; float32:
            4 bytes per parameter).
        scratch_bytes: working memory of one inference: the C kernels' scratch buffer
            (exact); float32: the largest input + output pair of a layer, 4 bytes each.
        ops: counted operations of one inference (class → count).
        cycles: profile → cycles of one inference, from the counted operations.
        energy_uj: profile → energy of one inference, µJ, from the counted operations.
        executed_cycles: cycles of one inference executed on the emulated Cortex-M4F
            (:data:`EXECUTED_PROFILE`'s instruction timings); None for float32 or without
            ``compress.emulate``.
        executed_energy_uj: the same at that profile's clock and active power, µJ.
        accuracy_test: accuracy on test (Contoli et al. 2023 report accuracy).
    """

    arch: str
    format: str
    bits: dict[str, list[int]]
    lam: float | None
    f1_val: float
    f1_test: float
    memory_bytes: int
    scratch_bytes: int
    ops: dict[str, int]
    cycles: dict[str, float]
    energy_uj: dict[str, float]
    executed_cycles: float | None = None
    executed_energy_uj: float | None = None
    accuracy_test: float | None = None

    @property
    def key(self) -> str:
        """Identity of the row in the journal."""
        return row_key(self.arch, self.format, self.lam)

    def to_row(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"key": self.key, **asdict(self)}

    @staticmethod
    def from_row(row: Mapping[str, Any]) -> ModelRow:
        """Inverse of :meth:`to_row`."""
        return ModelRow(**{k: v for k, v in row.items() if k != "key"})


def row_key(arch: str, fmt: str, lam: float | None = None) -> str:
    """Journal key of a model: architecture, format and λ."""
    return f"{arch}|{fmt}" + ("" if lam is None else f"|{lam:g}")


def _scores(pred: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[float, float]:
    """Macro-F1 and accuracy of predictions ``pred [N]`` against labels ``y [N]``."""
    s = score(y, pred, n_classes)
    return float(s.macro_f1), float(s.accuracy)


def _ops_dict(ops: OpCounts) -> dict[str, int]:
    return {k: int(v) for k, v in asdict(ops).items()}


def _priced(ops: OpCounts, profiles: list[McuProfile]) -> tuple[dict[str, float], dict[str, float]]:
    cycles = {p.name: float(p.cycles(ops)) for p in profiles}
    energy = {p.name: float(p.joules(ops) * 1e6) for p in profiles}
    return cycles, energy


@dataclass
class Scorer:
    """Scores and prices deployed models on the study's windows and profiles."""

    data: Data
    profiles: list[McuProfile]
    emulate: bool = False

    def _executed(self, net: QNet | DynamicNet, x: np.ndarray, host: np.ndarray) -> dict[str, Any]:
        """Cycles and energy of one window executed on the emulated Cortex-M4F, whose logits must
        equal the host's (the same C source, cross-compiled)."""
        if not self.emulate:
            return {}
        from fedhar.ondevice import emulator

        run = emulator.run_qnet(net, x[:1])
        if run.status != 0 or not np.allclose(run.logits, host[:1], rtol=1e-5, atol=1e-6):
            raise RuntimeError(
                f"{net.spec_name}: the emulated Cortex-M4F gave status {run.status} and logits "
                f"{run.logits[0].tolist()}, the host {host[0].tolist()}"
            )
        profile = load_profile(EXECUTED_PROFILE)
        cycles = run.execution.cycles(profile.instruction_timings)
        joules = cycles / profile.clock_hz * profile.active_watts
        return {"executed_cycles": float(cycles), "executed_energy_uj": float(joules * 1e6)}

    def _run(
        self,
        arch: str,
        fmt: str,
        net: QNet | DynamicNet,
        bits: dict[str, list[int]],
        lam: float | None,
    ) -> ModelRow:
        """Scores ``net`` on validation and test through its C kernels, prices the counted
        operations of one inference on every profile and, with :attr:`emulate`, executes one
        window on the emulated Cortex-M4F."""
        runner: qnet_infer.QNetC | qnet_infer.DynamicNetC
        if isinstance(net, QNet):
            runner, prepare = qnet_infer.QNetC(net), net.quantize_input
        else:
            runner, prepare = qnet_infer.DynamicNetC(net), np.asarray
        f1 = {}
        for part in ("val", "test"):
            x, y = getattr(self.data, part)
            x_in = prepare(x)
            logits, counted = runner.logits(x_in)
            f1[part], acc = _scores(logits.argmax(axis=1), y, self.data.n_classes)
        ops = _per_sample(counted, len(x))
        cycles, energy = _priced(ops, self.profiles)
        return ModelRow(
            arch,
            fmt,
            bits,
            lam,
            f1["val"],
            f1["test"],
            runner.model_bytes,
            runner.buffer_bytes,
            _ops_dict(ops),
            cycles,
            energy,
            **self._executed(net, x_in, logits),
            accuracy_test=acc,
        )

    def qnet(self, arch: str, fmt: str, net: QNet, lam: float | None = None) -> ModelRow:
        """A :class:`~fedhar.models.quantized.QNet` through the C integer kernels."""
        return self._run(arch, fmt, net, {k: list(v) for k, v in net.bits().items()}, lam)

    def dynamic(self, arch: str, spec: ModelSpec, state: Mapping[str, np.ndarray]) -> ModelRow:
        """The dynamic-range format through the C kernels (bits: 8-bit weights, 32-bit float
        activations)."""
        bits = {layer.name: [8, 32] for layer in spec.layers if layer.kind in ("conv1d", "dense")}
        return self._run(arch, "dynamic", quantize_dynamic(spec, state), bits, None)

    def float32(self, arch: str, spec: ModelSpec, state: Mapping[str, np.ndarray]) -> ModelRow:
        """The folded float model through the C training library's forward pass."""
        trainer = Trainer(spec)
        trainer.load_state_dict(dict(state))
        f1 = {}
        for part in ("val", "test"):
            x, y = getattr(self.data, part)
            pred = np.concatenate(
                [trainer.logits(x[i : i + 4096]).argmax(axis=1) for i in range(0, len(x), 4096)]
            )
            f1[part], acc = _scores(pred, y, self.data.n_classes)
        ops = estimate_inference(spec, 1)
        cycles, energy = _priced(ops, self.profiles)
        params = sum(int(np.prod(s)) for s in spec.param_shapes().values())
        return ModelRow(
            arch,
            "float32",
            {},
            None,
            f1["val"],
            f1["test"],
            4 * params,
            float_scratch_bytes(spec),
            _ops_dict(ops),
            cycles,
            energy,
            accuracy_test=acc,
        )


def float_scratch_bytes(spec: ModelSpec) -> int:
    """Working memory of one float32 inference: the largest input + output pair of a layer,
    4 bytes per element."""
    sizes = [spec.input_channels * spec.input_length]
    sizes += [int(np.prod(layer.out_shape)) for layer in spec.layers]
    return 4 * max(a + b for a, b in zip(sizes, sizes[1:], strict=False))


def float_inference_bytes(spec: ModelSpec) -> int:
    """Peak memory of one float32 inference: 4 bytes per parameter plus
    :func:`float_scratch_bytes`."""
    params = sum(int(np.prod(s)) for s in spec.param_shapes().values())
    return 4 * params + float_scratch_bytes(spec)


def _per_sample(ops: OpCounts, n: int) -> OpCounts:
    """Counts of one inference from the counts of ``n``; every count must divide evenly."""
    values = asdict(ops)
    if any(v % n for v in values.values()):
        raise ValueError(f"operation counts {values} are not a multiple of the {n} windows")
    return OpCounts(**{k: v // n for k, v in values.items()})


# ---------------------------------------------------------------------------------------------
# The study


def study_identity(scenario: Scenario, cfg: CompressConfig) -> dict[str, Any]:
    """What a models journal belongs to: the scenario (its data, model and compress sections)."""
    return {
        "study": "compress",
        "format": FORMAT_VERSION,
        **scenario_identity(scenario),
        "compress_sha256": identity_sha256(cfg.model_dump(mode="json")),
    }


@dataclass
class StudyResult:
    """Every scored model, and what the summary needs to name."""

    rows: list[ModelRow]
    archs: list[Arch]
    data: Data
    profiles: list[str]
    extra: dict[str, Any] = field(default_factory=dict)


def _float_state(
    arch: Arch, data: Data, cfg: CompressConfig, seed: int, states: Path
) -> dict[str, np.ndarray]:
    """The architecture's trained float state (with BatchNorm), from ``states/`` or trained."""
    path = states / f"{_file_name(arch.label)}.npz"
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    options = PretrainOptions(
        optimizer="adam",
        lr=cfg.lr,
        schedule="cosine",
        batch_size=cfg.batch_size,
        epochs=cfg.float_epochs,
        patience=cfg.float_epochs,
        val_fraction=0.0,
        engine="torch",
        seed=seed,
    )
    state, _, _ = fit(
        arch.spec,
        data.raw_train[0],
        data.raw_train[1],
        options,
        data.normalizer,
        data.raw_val[0],
        data.raw_val[1],
    )
    arrays = {k: v.detach().numpy().astype(np.float32) for k, v in state.items()}
    states.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return arrays


def _file_name(label: str) -> str:
    return label.replace(" ", "_")


def run_study(
    scenario: Scenario,
    cfg: CompressConfig,
    data_dir: str | None,
    out: Path,
    journal: Journal,
    log: Callable[[str], None],
) -> StudyResult:
    """Runs (or resumes) the whole exploration; returns every scored model."""
    torch.set_num_threads(1)
    ds, ws = load_windows(scenario, data_dir)
    data = split_data(ws, list(ds.classes), scenario, cfg)
    c, t = ws.x.shape[1], ws.x.shape[2]
    archs = architectures(scenario, cfg, c, t, data.n_classes)
    profiles = [load_profile(p) for p in cfg.profiles]
    scorer = Scorer(data, profiles, cfg.emulate)
    done = {row["key"]: ModelRow.from_row(row) for row in journal.rows}
    rows: list[ModelRow] = list(done.values())
    log(
        f"{len(archs)} architectures x ({len(cfg.ptq)} post-training + {len(cfg.bits)} QAT) "
        f"formats; {len(data.train[0])} train, {len(data.val[0])} val, {len(data.test[0])} test "
        f"windows; {len(done)} models already scored"
    )
    calib = data.calib(cfg.calib_windows, scenario.seed)
    states = out / STATES_DIR

    def keep(row: ModelRow) -> None:
        rows.append(ModelRow.from_row(journal.append(row.to_row())))
        done[row.key] = row
        log(
            f"{row.arch:<16} {row.format:<9} F1 {row.f1_test:.3f} (val {row.f1_val:.3f}), "
            f"{row.memory_bytes} B, {row.cycles[profiles[0].name]:.3g} cycles"
        )

    folded: dict[str, tuple[ModelSpec, dict[str, np.ndarray]]] = {}

    def folded_of(arch: Arch) -> tuple[ModelSpec, dict[str, np.ndarray]]:
        if arch.label not in folded:
            state = _float_state(arch, data, cfg, scenario.seed, states)
            folded[arch.label] = (fold_spec(arch.spec), fold_state(arch.spec, state))
        return folded[arch.label]

    for arch in archs:
        wanted = [row_key(arch.label, f) for f in cfg.ptq]
        wanted += [row_key(arch.label, f"pact{b}") for b in cfg.bits]
        if all(k in done for k in wanted):
            continue
        spec, state = folded_of(arch)
        for fmt in cfg.ptq:
            if row_key(arch.label, fmt) in done:
                continue
            if fmt == "float32":
                keep(scorer.float32(arch.label, spec, state))
            elif fmt == "dynamic":
                keep(scorer.dynamic(arch.label, spec, state))
            else:
                keep(scorer.qnet(arch.label, fmt, ptq.ptq_full_int8(spec, state, calib)))
        for b in cfg.bits:
            fmt = f"pact{b}"
            if row_key(arch.label, fmt) in done:
                continue
            bits = {
                layer.name: (b, b) for layer in spec.layers if layer.kind in ("conv1d", "dense")
            }
            net = _qat(spec, state, bits, data, cfg, cfg.qat_epochs, scenario.seed, calib)
            keep(scorer.qnet(arch.label, fmt, net))
    if cfg.mixed is not None:
        _mixed(archs, rows, done, data, cfg, scenario.seed, calib, folded_of, scorer, keep, log)
    return StudyResult(rows, archs, data, [p.name for p in profiles])


def _qat(
    spec: ModelSpec,
    state: Mapping[str, np.ndarray],
    bits: Mapping[str, tuple[int, int]],
    data: Data,
    cfg: CompressConfig,
    epochs: int,
    seed: int,
    calib: np.ndarray,
) -> QNet:
    """QAT of a folded model at ``bits``, exported for the C kernels."""
    net = qat.qat_finetune(
        spec,
        state,
        bits,
        data.train[0],
        data.train[1],
        epochs=epochs,
        lr=cfg.qat_lr,
        batch_size=cfg.batch_size,
        seed=seed,
        calib_x=calib,
        x_val=data.val[0],
        y_val=data.val[1],
    )
    return qat.to_qnet(net)


def _mixed(
    archs: list[Arch],
    rows: list[ModelRow],
    done: dict[str, ModelRow],
    data: Data,
    cfg: CompressConfig,
    seed: int,
    calib: np.ndarray,
    folded_of: Callable[[Arch], tuple[ModelSpec, dict[str, np.ndarray]]],
    scorer: Scorer,
    keep: Callable[[ModelRow], None],
    log: Callable[[str], None],
) -> None:
    """EdMIPS from the best 8-bit architectures of the validation F1-vs-memory front."""
    from fedhar.adaptive.modes import pareto_mask

    mixed = cfg.mixed
    assert mixed is not None
    eight = [r for r in rows if r.format == "pact8"]
    if not eight:
        log("no 8-bit models to start the mixed-precision search from (add 8 to compress.bits)")
        return
    on_front = pareto_mask(
        np.array([r.f1_val for r in eight]), np.array([r.memory_bytes for r in eight])
    )
    starts = sorted(
        (r for r, m in zip(eight, on_front, strict=True) if m), key=lambda r: -r.f1_val
    )[: mixed.starts]
    by_label = {a.label: a for a in archs}
    for start in starts:
        arch = by_label[start.arch]
        todo = [lam for lam in mixed.lambdas if row_key(arch.label, "mixed", lam) not in done]
        if not todo:
            continue
        spec, state = folded_of(arch)
        cost = None
        if mixed.cost == "cycles":
            cost = cycle_cost(spec, state, scorer.profiles[0])
        for lam in todo:
            bits = edmips.search(
                spec,
                state,
                data.train[0],
                data.train[1],
                lam=lam,
                epochs=mixed.search_epochs,
                lr=cfg.qat_lr,
                batch_size=cfg.batch_size,
                seed=seed,
                calib_x=calib,
                cost=cost,
            )
            log(f"{arch.label} λ={lam:g}: bits {json.dumps({k: list(v) for k, v in bits.items()})}")
            net = _qat(spec, state, bits, data, cfg, mixed.finetune_epochs, seed, calib)
            keep(scorer.qnet(arch.label, "mixed", net, lam))


def cycle_cost(
    spec: ModelSpec, state: Mapping[str, np.ndarray], profile: McuProfile
) -> Callable[[str, int, int], float]:
    """Expected-cycles cost of a layer at ``(w_bits, a_bits)`` on ``profile``: the cycles the C
    kernels count for that layer (and the pools after it) in the network quantized uniformly at
    ``(w_bits, a_bits)``, so that its input comes at ``a_bits`` too (the first layer's at 8)."""
    names = [layer.name for layer in spec.layers if layer.kind in ("conv1d", "dense")]
    table: dict[tuple[str, int, int], float] = {}
    for w in BITS:
        for a in BITS:
            uniform = dict.fromkeys(names, (w, a))
            net = quantize(spec, state, uniform, dict.fromkeys(names, 1.0), 1.0)
            owner = ""
            for layer, ops in zip(net.layers, layer_ops(net), strict=True):
                owner = layer.name if isinstance(layer, QLinear) else owner
                table[(owner, w, a)] = table.get((owner, w, a), 0.0) + float(profile.cycles(ops))
    return lambda name, w_bits, a_bits: table[(name, w_bits, a_bits)]
