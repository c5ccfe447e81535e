"""Analytic memory and operation estimates of the C training library, from a model spec alone.

Pure Python: no library call. For any :class:`~fedhar.models.spec.ModelSpec`, mode, batch size
and number of stored samples it gives what :class:`fedhar.ondevice.ctrain.Trainer` measures on a
real run of the same configuration: the arena bytes per category (byte for byte) and the operations
per layer and phase (operation for operation). ``tests/ctrain/test_estimator.py`` checks it.

Units: memory in bytes (float32 and int32 elements, 4 bytes each); operations are counts per
batch (training) or per call (inference). The exact counting rules of every kernel are in
``fedhar/ondevice/csrc/README.md``; this module restates them in :func:`_layer_ops`.

Memory categories (peak bytes of the arena's buffers; the library's control block, i.e. the
context struct and its tables, is not included: it is reported as ``control_bytes`` by
:meth:`fedhar.ondevice.ctrain.Trainer.memory`):

``parameters``
    every parameter tensor: conv/dense weights and biases, batchnorm gamma, beta, running mean
    and running variance (trained or frozen).
``gradients``
    gradient accumulators of the trained layers (weights + biases; batchnorm gamma + beta).
``optimizer``
    SGD momentum buffers of the trained layers (0 when momentum is 0).
``activations``
    forward outputs kept for the backward pass (inputs of trained conv/dense/batchnorm layers,
    ReLU outputs behind the first trained layer) and maxpool argmax indices (int32).
``deltas``
    the two ping-pong buffers of loss gradients w.r.t. activations (error buffers), sized for
    the largest gradient each one holds.
``input``
    one input sample, channels-last, with the zero rows of a ``same``-padded first conv.
``stored_samples``
    ``n_stored_samples`` local samples (``C*T`` float32 each) and their int32 labels.
``scratch``
    forward ping-pong buffers for outputs not kept, padded conv inputs not kept, batchnorm
    folds (inv_std, scale, shift per channel), class weights and the softmax exp buffer.

``memory_per_layer`` attributes each buffer to the layer owning it (its parameters, gradients,
momentum, kept output, fold); buffers used by all layers (input, stored samples, ping-pong and
delta buffers, class weights, softmax buffer) are under ``"shared"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from fedhar.enums import TRAINING_JOBS
from fedhar.models.spec import LayerSpec, ModelSpec

__all__ = [
    "CATEGORIES",
    "PHASES",
    "OpCounts",
    "TrainingEstimate",
    "estimate_inference",
    "estimate_training",
    "trainable_flags",
]

CATEGORIES: tuple[str, ...] = (
    "parameters",
    "gradients",
    "optimizer",
    "activations",
    "deltas",
    "input",
    "stored_samples",
    "scratch",
)
PHASES: tuple[str, ...] = ("forward", "backward_input", "backward_weights", "update")
SHARED = "shared"
LOSS = "loss"
_MODES = tuple(m.value for m in TRAINING_JOBS)
_TRAINABLE_KINDS = ("conv1d", "dense", "batchnorm1d")


@dataclass(frozen=True)
class OpCounts:
    """Operation counts (README "Operation counting").

    Attributes:
        macs: multiply-accumulates ``a += b * c`` (also ``b * c + d``).
        adds: additions and subtractions outside MACs.
        muls: multiplications outside MACs.
        divs: divisions.
        exps: transcendental calls: ``expf``, ``logf``, ``sqrtf``.
        cmps: comparisons (max, ReLU, argmax).
        bytes_moved: bytes of array-element loads and stores of the reference loop nest
            (4 bytes per float32/int32 element; scalars held in registers are not counted).
        bitops: integer shift, mask, logic and popcount steps (unpacking and packing sub-byte
            data, binary dot products; 0 for every float32 kernel).
    """

    macs: int = 0
    adds: int = 0
    muls: int = 0
    divs: int = 0
    exps: int = 0
    cmps: int = 0
    bytes_moved: int = 0
    bitops: int = 0

    def __add__(self, other: OpCounts) -> OpCounts:
        return OpCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def scaled(self, k: int) -> OpCounts:
        """Every count multiplied by ``k`` (e.g. per sample -> per batch)."""
        return OpCounts(*(getattr(self, f.name) * k for f in fields(self)))

    def per_sample(self, n: int) -> OpCounts:
        """Counts of ``n`` samples divided by ``n``; exact when every sample runs the same loops."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        return OpCounts(*(getattr(self, f.name) // n for f in fields(self)))


ZERO = OpCounts()


@dataclass(frozen=True)
class TrainingEstimate:
    """Estimate of one training configuration.

    Attributes:
        mode: ``"full"``, ``"tl"`` or ``"custom"`` (explicit flags).
        batch: samples per SGD step.
        trainable: per-layer trainable flags, spec order.
        memory_bytes: peak arena bytes per category of :data:`CATEGORIES`, plus ``"total"``
            (their sum).
        memory_per_layer: ``{layer name or "shared": {category: bytes}}``.
        ops_per_layer: ``{layer name or "loss": {phase: OpCounts}}`` for one batch of
            ``batch`` samples; phases are :data:`PHASES`.
        ops_per_phase: ``{phase: OpCounts}`` summed over layers, one batch.
        ops_total_per_batch: everything, one batch.
    """

    mode: str
    batch: int
    trainable: tuple[bool, ...]
    memory_bytes: dict[str, int]
    memory_per_layer: dict[str, dict[str, int]]
    ops_per_layer: dict[str, dict[str, OpCounts]]
    ops_per_phase: dict[str, OpCounts] = field(default_factory=dict)
    ops_total_per_batch: OpCounts = ZERO


def trainable_flags(spec: ModelSpec, mode: str = "full", tl_layers: int = 2) -> list[bool]:
    """Per-layer trainable flags: ``full`` = every conv1d/dense/batchnorm1d layer, ``tl`` = the
    last ``tl_layers`` dense layers."""
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if mode == "full":
        return [layer.kind in _TRAINABLE_KINDS for layer in spec.layers]
    dense = [i for i, layer in enumerate(spec.layers) if layer.kind == "dense"]
    if not 1 <= tl_layers <= len(dense):
        raise ValueError(
            f"tl_layers must be in [1, {len(dense)}] for model {spec.name!r}, got {tl_layers}"
        )
    chosen = set(dense[-tl_layers:])
    return [i in chosen for i in range(len(spec.layers))]


# ---- shapes as the library sees them ([C, T], vectors with T = 1) ------------------------


def _ct(shape: tuple[int, ...]) -> tuple[int, int]:
    return (shape[0], shape[1]) if len(shape) == 2 else (shape[0], 1)


def _pads(layer: LayerSpec) -> tuple[int, int]:
    if layer.kind == "conv1d" and layer.padding == "same":
        total = layer.kernel - 1
        return total // 2, total - total // 2
    return 0, 0


def _weight_elems(layer: LayerSpec) -> int:
    c, _ = _ct(layer.in_shape)
    if layer.kind == "conv1d":
        return layer.out_channels * c * layer.kernel
    if layer.kind == "dense":
        return layer.out_channels * c
    if layer.kind == "batchnorm1d":
        return c
    return 0


def _bias_elems(layer: LayerSpec) -> int:
    if layer.kind in ("conv1d", "dense"):
        return layer.out_channels
    if layer.kind == "batchnorm1d":
        return _ct(layer.in_shape)[0]
    return 0


def _out_elems(layer: LayerSpec) -> int:
    c, t = _ct(layer.out_shape)
    return c * t


def _keep_output(layers: Sequence[LayerSpec], tr: Sequence[bool], s: int, i: int) -> bool:
    """Whether the buffer holding output ``i`` (-1: the input) survives until backward."""
    n = len(layers)
    while True:
        if s < 0:
            return False
        if i >= 0 and layers[i].kind == "relu" and i > s:
            return True
        if i + 1 < n and i + 1 >= s and tr[i + 1] and layers[i + 1].kind in _TRAINABLE_KINDS:
            return True
        if i + 1 < n and layers[i + 1].kind == "relu":
            i += 1
            continue
        return False


def _output_pads(layers: Sequence[LayerSpec], i: int) -> tuple[int, int]:
    j = i + 1
    while j < len(layers) and layers[j].kind == "relu":
        j += 1
    if j < len(layers) and layers[j].kind == "conv1d":
        return _pads(layers[j])
    return 0, 0


def _memory(
    spec: ModelSpec, tr: Sequence[bool], momentum: bool, n_stored: int
) -> dict[str, dict[str, int]]:
    """Bytes per owner (layer name or "shared") and category, mirroring ``plan_arena``."""
    layers = spec.layers
    n = len(layers)
    s = next((i for i, f in enumerate(tr) if f), -1)
    owners = [layer.name for layer in layers] + [SHARED]
    mem = {o: dict.fromkeys(CATEGORIES, 0) for o in owners}

    def add(owner: int, cat: str, elems: int) -> None:
        mem[owners[owner]][cat] += 4 * elems

    k = spec.n_classes
    for i, layer in enumerate(layers):
        add(i, "parameters", _weight_elems(layer) + _bias_elems(layer))
        if layer.kind == "batchnorm1d":
            c = _ct(layer.in_shape)[0]
            add(i, "parameters", 2 * c)
            add(i, "scratch", 3 * c)
    pl, pr = _output_pads(layers, -1)
    c0, t0 = spec.input_channels, spec.input_length
    add(n, "input", (t0 + pl + pr) * c0)
    add(n, "stored_samples", n_stored * c0 * t0 + n_stored)
    add(n, "scratch", 2 * k)

    for i, layer in enumerate(layers):
        if tr[i]:
            elems = _weight_elems(layer) + _bias_elems(layer)
            add(i, "gradients", elems)
            if momentum:
                add(i, "optimizer", elems)

    ping = pong = 0
    cur = "input"
    for i, layer in enumerate(layers):
        if layer.kind == "maxpool1d" and s >= 0 and i > s:
            add(i, "activations", _out_elems(layer))
        if layer.kind == "relu":
            continue
        pl, pr = _output_pads(layers, i)
        keep = _keep_output(layers, tr, s, i)
        if keep or pl + pr > 0:
            oc, ot = _ct(layer.out_shape)
            add(i, "activations" if keep else "scratch", (ot + pl + pr) * oc)
            cur = "dedicated"
        else:
            cur = "pong" if cur == "ping" else "ping"
            if cur == "ping":
                ping = max(ping, _out_elems(layer))
            else:
                pong = max(pong, _out_elems(layer))
    add(n, "scratch", ping + pong)

    da = db = 0
    if s >= 0:
        in_a = True
        da = k
        for i in range(n - 1, s, -1):
            layer = layers[i]
            if layer.kind == "relu":
                continue
            c, t = _ct(layer.in_shape)
            pl, pr = _pads(layer)
            need = c * (t + pl + pr)
            in_a = not in_a
            if in_a:
                da = max(da, need)
            else:
                db = max(db, need)
    add(n, "deltas", da + db)
    return mem


# ---- operation counts, one sample unless stated ----------------------------------------------


def _conv_geom(layer: LayerSpec) -> tuple[int, int, int, int, int]:
    """(c, t_pad, f, t_out, k * c) of a conv or dense layer."""
    c, t = _ct(layer.in_shape)
    if layer.kind == "conv1d":
        pl, pr = _pads(layer)
        return c, t + pl + pr, layer.out_channels, _ct(layer.out_shape)[1], layer.kernel * c
    return c, 1, layer.out_channels, 1, c


def _layer_ops(layer: LayerSpec, phase: str, keep_idx: bool = False) -> OpCounts:
    """Per-sample counts of one layer's kernel in ``forward``, ``backward_input`` or
    ``backward_weights`` (batchnorm's once-per-batch fold is :func:`_bn_prepare_ops`)."""
    kind = layer.kind
    c, t = _ct(layer.in_shape)
    n = c * t
    if kind in ("conv1d", "dense"):
        c, t_pad, f, to, kc = _conv_geom(layer)
        macs = to * kc * f
        if phase == "forward":
            return OpCounts(macs=macs, bytes_moved=4 * (2 * macs + 2 * to * f))
        if phase == "backward_input":
            return OpCounts(macs=macs, bytes_moved=4 * (2 * macs + t_pad * c + 2 * to * kc))
        return OpCounts(
            macs=macs, adds=to * f, bytes_moved=4 * (3 * macs + to * kc + to * f + 2 * f)
        )
    if kind == "relu":
        return OpCounts(cmps=n, bytes_moved=4 * (2 if phase == "forward" else 3) * n)
    if kind in ("avgpool1d", "maxpool1d"):
        o = _out_elems(layer)
        p = layer.kernel
        if kind == "avgpool1d":
            if phase == "forward":
                return OpCounts(adds=o * (p - 1), muls=o, divs=1, bytes_moved=4 * (o * p + o))
            return OpCounts(macs=o * p, divs=1, bytes_moved=4 * (n + 3 * o * p))
        if phase == "forward":
            return OpCounts(cmps=o * (p - 1), bytes_moved=4 * (o * p + o + (o if keep_idx else 0)))
        return OpCounts(adds=o, bytes_moved=4 * (n + 4 * o))
    if kind == "gap1d":
        if phase == "forward":
            return OpCounts(adds=c * (t - 1), muls=c, divs=1, bytes_moved=4 * (n + c))
        return OpCounts(muls=c, divs=1, bytes_moved=4 * (c + n))
    if kind == "flatten":
        return OpCounts(bytes_moved=4 * 2 * n)
    if kind == "batchnorm1d":
        if phase == "forward":
            return OpCounts(macs=n, bytes_moved=4 * 4 * n)
        if phase == "backward_input":
            return OpCounts(muls=n, bytes_moved=4 * 3 * n)
        return OpCounts(adds=2 * n, muls=n, macs=n, bytes_moved=4 * 8 * n)
    raise ValueError(f"layer {layer.name!r}: unknown kind {kind!r}")


def _bn_prepare_ops(layer: LayerSpec) -> OpCounts:
    c = _ct(layer.in_shape)[0]
    return OpCounts(adds=c, divs=c, exps=c, muls=c, macs=c, bytes_moved=4 * 7 * c)


def _sgd_ops(elems: int, momentum: bool, weight_decay: bool) -> OpCounts:
    return OpCounts(
        macs=elems * (1 + int(weight_decay) + int(momentum)),
        bytes_moved=4 * elems * (4 + 2 * int(momentum)),
    )


def _xent_ops(k: int) -> tuple[OpCounts, OpCounts]:
    fwd = OpCounts(cmps=k - 1, adds=2 * k + 2, exps=k + 1, bytes_moved=4 * (4 * k + 1))
    bwd = OpCounts(divs=1, muls=2 * k, adds=1, bytes_moved=4 * (2 * k + 2))
    return fwd, bwd


def estimate_training(
    spec: ModelSpec,
    mode: str = "full",
    batch: int = 32,
    tl_layers: int = 2,
    n_stored_samples: int = 0,
    momentum: bool = True,
    weight_decay: bool = False,
    trainable: Sequence[bool] | None = None,
) -> TrainingEstimate:
    """Memory and per-batch operations of training ``spec`` with the C library.

    Args:
        spec: the model.
        mode: ``"full"`` or ``"tl"`` (ignored when ``trainable`` is given).
        batch: samples per SGD step (gradient accumulation: memory does not depend on it).
        tl_layers: dense layers trained in TL mode.
        n_stored_samples: local samples kept in the arena.
        momentum: whether SGD momentum is non-zero (adds the momentum buffers and 1 MAC per
            trained parameter per update).
        weight_decay: whether weight decay is non-zero (1 MAC per trained parameter per update).
        trainable: explicit per-layer flags (only conv1d/dense/batchnorm1d may be True).

    Returns:
        A :class:`TrainingEstimate` equal to :meth:`Trainer.memory` and to the
        :meth:`Trainer.counts` of one ``train_batch`` of ``batch`` samples.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if n_stored_samples < 0:
        raise ValueError(f"n_stored_samples must be >= 0, got {n_stored_samples}")
    layers = spec.layers
    if trainable is None:
        tr = trainable_flags(spec, mode, tl_layers)
    else:
        tr = [bool(f) for f in trainable]
        if len(tr) != len(layers):
            raise ValueError(f"trainable must have {len(layers)} entries, got {len(tr)}")
        bad = [
            layers[i].name for i, f in enumerate(tr) if f and layers[i].kind not in _TRAINABLE_KINDS
        ]
        if bad:
            raise ValueError(f"layers {bad} have no parameters and cannot be trainable")
        mode = "custom"
    s = next((i for i, f in enumerate(tr) if f), -1)
    if s < 0:
        raise ValueError("no layer is trainable")

    per_layer_mem = _memory(spec, tr, momentum, n_stored_samples)
    memory_bytes = {cat: sum(m[cat] for m in per_layer_mem.values()) for cat in CATEGORIES}
    memory_bytes["total"] = sum(memory_bytes[cat] for cat in CATEGORIES)

    ops: dict[str, dict[str, OpCounts]] = {}
    for i, layer in enumerate(layers):
        row = dict.fromkeys(PHASES, ZERO)
        keep_idx = layer.kind == "maxpool1d" and i > s
        row["forward"] = _layer_ops(layer, "forward", keep_idx).scaled(batch)
        if layer.kind == "batchnorm1d":
            row["forward"] += _bn_prepare_ops(layer)
        if i >= s and tr[i]:
            row["backward_weights"] = _layer_ops(layer, "backward_weights").scaled(batch)
            row["update"] = _sgd_ops(_weight_elems(layer), momentum, weight_decay) + _sgd_ops(
                _bias_elems(layer), momentum, weight_decay
            )
        if i > s:
            row["backward_input"] = _layer_ops(layer, "backward_input").scaled(batch)
        ops[layer.name] = row
    xf, xb = _xent_ops(spec.n_classes)
    loss_batch = OpCounts(adds=batch, divs=1, muls=batch + 1, macs=batch, bytes_moved=8 * batch)
    ops[LOSS] = {
        **dict.fromkeys(PHASES, ZERO),
        "forward": loss_batch + xf.scaled(batch),
        "backward_input": xb.scaled(batch),
    }
    per_phase = {p: sum((ops[name][p] for name in ops), ZERO) for p in PHASES}
    return TrainingEstimate(
        mode=mode,
        batch=batch,
        trainable=tuple(tr),
        memory_bytes=memory_bytes,
        memory_per_layer=per_layer_mem,
        ops_per_layer=ops,
        ops_per_phase=per_phase,
        ops_total_per_batch=sum(per_phase.values(), ZERO),
    )


def estimate_inference(spec: ModelSpec, n_samples: int = 1) -> OpCounts:
    """Forward-only operations of one :meth:`Trainer.logits` call on ``n_samples`` samples.

    Per-sample layer counts times ``n_samples``, plus each batchnorm's fold once per call.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    total = ZERO
    for layer in spec.layers:
        total += _layer_ops(layer, "forward").scaled(n_samples)
        if layer.kind == "batchnorm1d":
            total += _bn_prepare_ops(layer)
    return total
