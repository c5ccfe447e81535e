"""Runs the C library on an emulated Cortex-M4F and counts what it executes.

The cross-build (``emu/Makefile``) compiles the library for ``-mcpu=cortex-m4 -mthumb
-mfpu=fpv4-sp-d16 -mfloat-abi=hard`` with arm-none-eabi-gcc, links it into the bare-metal
harness of ``emu/harness`` and builds the QEMU plugin ``emu/plugin/fh_icount.c``. A job is
written to a file, QEMU's ``mps2-an386`` board runs the harness on it (semihosting file I/O),
and the harness's results and the plugin's executed-instruction counts are read back:

* :func:`run_training`: ``steps`` calls of ``ft_train_batch`` on one batch, then optionally
  ``ft_logits``; losses, logits, parameters, the library's operation counters and memory.
* :func:`run_slim`: ``fh_slim_forward_f32``/``_s8`` on a batch and the score-margin policy.
* :func:`run_qnet`: ``fh_qnet_forward`` (a packed integer ``QNet``) or ``fh_dnet_forward`` (a
  dynamic-range ``DynamicNet``) on a batch: logits, counters and memory, one region per layer.

Executed instructions come per *region*: :data:`REGION_HARNESS` (the harness itself),
:data:`REGION_GLUE` (library code between kernel calls: validation, sample loading, the layer
walk) and, for a training job, one region per layer row and phase as the library's counters
have them (the loss row's region holds the whole softmax cross-entropy); a slim job's rows are
conv blocks (phase 0 the conv, 1 its max-pool), GAP, the dense layers and the policy.

Nothing here runs unless the tools are installed (:func:`missing_tools`); builds are cached in
``<user cache>/emu/<hash of sources and compiler>``.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fedhar.data.paths import user_cache_dir
from fedhar.models.quantized import DynamicLinear, DynamicNet, QNet, QPool
from fedhar.models.spec import ModelSpec
from fedhar.ondevice import ctrain
from fedhar.ondevice.clib import COpCounts
from fedhar.ondevice.estimator import CATEGORIES, LOSS, PHASES, SHARED, OpCounts
from fedhar.ondevice.isa import CLASSES, access_bytes, classify, cycles
from fedhar.ondevice.qnet_infer import MEMORY_PARTS, layer_dims
from fedhar.ondevice.slim_format import SlimF32, SlimS8

__all__ = [
    "Build",
    "EmulatorError",
    "Execution",
    "QNetRun",
    "REGION_GLUE",
    "REGION_HARNESS",
    "SlimRun",
    "TrainRun",
    "build",
    "missing_tools",
    "random_inputs",
    "run_qnet",
    "run_slim",
    "run_training",
]

EMU_DIR = Path(__file__).resolve().parent / "emu"
CSRC_DIR = Path(__file__).resolve().parent / "csrc"
REGION_HARNESS = 0
REGION_GLUE = 1
LOGITS_BASE = 1024  # the harness's FH_LOGITS_BASE
_N_REGIONS = 2048  # the harness's FH_REGIONS
_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-nm", "qemu-system-arm", "make", "cc")
_MAGIC_JOB, _MAGIC_OUT = 0x4D454846, 0x4F454846


class EmulatorError(RuntimeError):
    """The cross-build, QEMU or the harness failed (the message says which and why)."""


def missing_tools() -> list[str]:
    """The tools this module needs that are not on ``PATH`` (Debian: ``gcc-arm-none-eabi``,
    ``libnewlib-arm-none-eabi``, ``qemu-system-arm``, ``make``, ``gcc``)."""
    return [t for t in _TOOLS if shutil.which(t) is None]


def region(row: int, phase: int, base: int = 0) -> int:
    """The harness's region id of a layer row (>= 0) and phase index."""
    return base + 2 + 4 * row + phase


@dataclass(frozen=True)
class Build:
    """One cross-build: the harness ELF, the plugin, the shipping library and the marker
    addresses the plugin needs."""

    directory: Path
    elf: Path
    plugin: Path
    library: Path
    marker: tuple[int, int]
    marks: tuple[int, int]
    compiler: str


def _source_hash() -> str:
    h = hashlib.sha256()
    for root in (CSRC_DIR, EMU_DIR):
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.suffix in {".c", ".h", ".ld", ""} and p.name != ".gitignore":
                h.update(str(p.relative_to(root.parent)).encode())
                h.update(p.read_bytes())
    return h.hexdigest()


def _run(cmd: Sequence[str], what: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)
    except subprocess.CalledProcessError as e:
        tail = (e.stderr or e.stdout or "").strip().splitlines()[-5:]
        raise EmulatorError(f"{what} failed: {' / '.join(tail)}") from None


def build(directory: Path | None = None) -> Build:
    """Cross-builds (or reuses) the harness, the shipping library and the plugin."""
    missing = missing_tools()
    if missing:
        raise EmulatorError(
            f"the emulator needs {', '.join(missing)} (Debian: apt-get install "
            "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm make gcc)"
        )
    compiler = _run(["arm-none-eabi-gcc", "--version"], "arm-none-eabi-gcc").stdout
    compiler = compiler.splitlines()[0]
    if directory is None:
        key = hashlib.sha256((_source_hash() + compiler).encode()).hexdigest()[:16]
        directory = user_cache_dir() / "emu" / key
    directory.mkdir(parents=True, exist_ok=True)
    _run(["make", "-s", "-C", str(EMU_DIR), f"OUT={directory}", "all"], "the cross-build")
    elf = directory / "harness.elf"
    symbols: dict[str, tuple[int, int]] = {}
    for line in _run(["arm-none-eabi-nm", "-S", str(elf)], "nm").stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] in {"ft_emu_mark", "fh_emu_marks"}:
            symbols[parts[3]] = (int(parts[0], 16), int(parts[1], 16))
    if set(symbols) != {"ft_emu_mark", "fh_emu_marks"}:
        raise EmulatorError(f"{elf} lacks the region markers (found {sorted(symbols)})")
    lo, size = symbols["ft_emu_mark"]
    base, marks_bytes = symbols["fh_emu_marks"]
    return Build(
        directory,
        elf,
        directory / "fh_icount.so",
        directory / "libfedhar_m4.a",
        (lo & ~1, (lo & ~1) + size),
        (base, marks_bytes // 4),
        compiler,
    )


@dataclass
class Execution:
    """What one QEMU run executed: per region, executed instructions by plugin key, and the
    taken branches (control transfers to anywhere but the next instruction)."""

    keys: dict[int, Counter[str]] = field(default_factory=dict)
    taken: Counter[int] = field(default_factory=Counter)
    wall_s: float = 0.0

    def total(self) -> int:
        """Every executed instruction, harness included."""
        return sum(sum(c.values()) for c in self.keys.values())

    def classes(self, regions: Sequence[int] | None = None) -> dict[str, int]:
        """Executed instructions by class (:data:`fedhar.ondevice.isa.CLASSES`) over ``regions``
        (default: all but the harness)."""
        chosen = regions if regions is not None else [r for r in self.keys if r != REGION_HARNESS]
        out = dict.fromkeys(CLASSES, 0)
        for r in chosen:
            for key, n in self.keys.get(r, Counter()).items():
                out[classify(key)] += n
        return out

    def targets(self, regions: Sequence[int]) -> dict[str, int]:
        """:meth:`classes` of ``regions`` plus their ``taken`` branches."""
        return {**self.classes(regions), "taken": sum(self.taken[r] for r in regions)}

    def cycles(self, timings: Mapping[str, float], regions: Sequence[int] | None = None) -> float:
        """Cycles of ``regions`` (default: all but the harness) by the instruction timings of a
        profile (``McuProfile.instruction_timings``), taken-branch refills included."""
        chosen = regions if regions is not None else [r for r in self.keys if r != REGION_HARNESS]
        keys: Counter[str] = Counter()
        for r in chosen:
            keys.update(self.keys.get(r, Counter()))
        return cycles(keys, sum(self.taken[r] for r in chosen), timings)

    def data_bytes(self, regions: Sequence[int]) -> tuple[int, int]:
        """(bytes loaded, bytes stored) by the instructions of ``regions``, stack included."""
        loaded = stored = 0
        for r in regions:
            for key, n in self.keys.get(r, Counter()).items():
                a, b = access_bytes(key)
                loaded += a * n
                stored += b * n
        return loaded, stored


def _qemu_timeout() -> float:
    return 1800.0 if os.environ.get("CI") == "true" else 900.0


def execute(b: Build, job: bytes, timeout: float | None = None) -> tuple[bytes, Execution]:
    """Runs one job file through QEMU with the counting plugin; returns the harness's output."""
    with tempfile.TemporaryDirectory(prefix="fedhar-emu-") as tmp:
        work = Path(tmp)
        (work / "fh_job.bin").write_bytes(job)
        counts = work / "counts.txt"
        plugin = (
            f"{b.plugin},out={counts},marker={b.marker[0]:#x}:{b.marker[1]:#x},"
            f"marks={b.marks[0]:#x}:{b.marks[1]}"
        )
        cmd = [
            "qemu-system-arm", "-M", "mps2-an386", "-cpu", "cortex-m4", "-display", "none",
            "-monitor", "none", "-serial", "none", "-nodefaults", "-net", "none",
            "-semihosting-config", "enable=on,target=native", "-kernel", str(b.elf),
            "-plugin", plugin,
        ]  # fmt: skip
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd, cwd=work, capture_output=True, text=True,
                timeout=timeout if timeout is not None else _qemu_timeout(),
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise EmulatorError("QEMU did not finish the job in time") from None
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            text = (proc.stdout + proc.stderr).strip().replace("\n", " / ")
            raise EmulatorError(f"the harness exited with {proc.returncode}: {text}")
        return (work / "fh_out.bin").read_bytes(), _parse_counts(counts, wall)


def _parse_counts(path: Path, wall: float) -> Execution:
    ex = Execution(wall_s=wall)
    names: dict[int, str] = {}
    for line in path.read_text().splitlines():
        tag, *rest = line.split()
        if tag == "V" and rest[1] != "0":
            raise EmulatorError("the counting plugin ran out of key slots")
        elif tag == "K":
            names[int(rest[0])] = rest[1]
        elif tag == "C":
            r, k, n = (int(v) for v in rest)
            ex.keys.setdefault(r, Counter())[names[k]] += n
        elif tag == "T":
            ex.taken[int(rest[0])] += int(rest[1])
    return ex


def random_inputs(
    spec: ModelSpec, batch: int, seed: int = 0
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Seeded random parameters (batch-norm variances in [0.5, 2]), a batch ``x [batch, C,
    T]`` and labels ``y [batch]``: the instruction counts do not depend on the values beyond a
    few data-dependent branches."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in spec.param_shapes().items():
        if key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
        else:
            state[key] = (0.3 * rng.standard_normal(shape)).astype(np.float32)
    x = rng.standard_normal((batch, spec.input_channels, spec.input_length)).astype(np.float32)
    return state, x, rng.integers(0, spec.n_classes, batch)


# ---- job files ------------------------------------------------------------------------------


def _tensor(a: np.ndarray | None) -> bytes:
    if a is None or a.size == 0:
        return struct.pack("<2I", 0, 0)
    a = np.ascontiguousarray(a)
    raw = a.tobytes()
    return struct.pack("<2I", a.size, a.itemsize) + raw + b"\0" * (-len(raw) % 4)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise EmulatorError("the harness's output is truncated")
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def i32(self) -> int:
        return int(struct.unpack("<i", self.take(4))[0])

    def array(self, dtype: type, n: int) -> np.ndarray:
        return np.frombuffer(self.take(n * np.dtype(dtype).itemsize), dtype=dtype).copy()

    def floats(self) -> np.ndarray:
        return self.array(np.float32, self.i32())


def _header(job: int) -> bytes:
    return struct.pack("<4i", _MAGIC_JOB, 1, job, 0)


@dataclass
class TrainRun:
    """Results of a training job on the emulated MCU.

    Attributes:
        status: the C library's status (0 = FT_OK).
        losses: ``[steps]`` batch losses.
        logits: ``[N, K]`` after training (empty without ``logits=True``).
        params: the trained ``state_dict`` (PyTorch names and layouts).
        counts: the library's operation counters, ``{row: {phase: OpCounts}}`` as
            :meth:`fedhar.ondevice.ctrain.Trainer.counts` names them.
        arena_bytes: the arena ``ft_context_get_buffer_size`` asked for.
        memory_peak: ``{row: {category: bytes}}``.
        execution: executed instructions per region (training and the ``ft_logits`` pass).
    """

    status: int
    losses: np.ndarray
    logits: np.ndarray
    params: dict[str, np.ndarray]
    counts: dict[str, dict[str, OpCounts]]
    arena_bytes: int
    memory_peak: dict[str, dict[str, int]]
    execution: Execution


def train_job(
    spec: ModelSpec,
    state: Mapping[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    trainable: Sequence[bool],
    steps: int = 1,
    lr: float = 0.01,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    optimizer: str = "sgd",
    logits: bool = True,
) -> bytes:
    """The job file of :func:`run_training` (see ``emu/harness/harness.c``)."""
    descs = ctrain.layer_descs(spec)
    cfg = ctrain.train_config(lr, momentum, weight_decay, 0, optimizer)
    parts = [_header(1), struct.pack("<i", len(spec.layers)), bytes(descs), bytes(cfg)]
    parts.append(_tensor(np.array([1 if t else 0 for t in trainable], dtype=np.uint8)))
    tensors = []
    for i, layer in enumerate(spec.layers):
        for key in layer.param_shapes():
            value = state[key]
            if hasattr(value, "detach"):
                value = value.detach().cpu().numpy()
            pid = ctrain.PARAM_IDS[key.rsplit(".", 1)[1]]
            tensors.append(struct.pack("<2i", i, pid) + _tensor(np.asarray(value, np.float32)))
    parts.append(struct.pack("<i", len(tensors)))
    parts.extend(tensors)
    parts.append(_tensor(None))
    x = np.ascontiguousarray(x, dtype=np.float32)
    parts.append(struct.pack("<3i", x.shape[0], x.shape[1], x.shape[2]))
    parts += [_tensor(x), _tensor(np.asarray(y, dtype=np.int32))]
    parts.append(struct.pack("<2i", steps, 1 if logits else 0))
    return b"".join(parts)


def run_training(
    spec: ModelSpec,
    state: Mapping[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    trainable: Sequence[bool],
    b: Build | None = None,
    **options: Any,
) -> TrainRun:
    """Training steps on the batch ``x [N, C, T]``, ``y [N]`` from ``state``, on the emulated
    Cortex-M4F, with the trained layers ``trainable``; ``options`` are :func:`train_job`'s
    (``steps``, ``lr``, ``momentum``, ``weight_decay``, ``optimizer``, ``logits``)."""
    b = b if b is not None else build()
    out, execution = execute(b, train_job(spec, state, x, y, trainable, **options))
    r = _Reader(out)
    if r.i32() != _MAGIC_OUT:
        raise EmulatorError("the harness's output has no header")
    status, done = r.i32(), r.i32()
    losses = r.array(np.float32, done)
    lg = r.floats()
    n_classes = spec.n_classes
    params: dict[str, np.ndarray] = {}
    n_params = r.i32()
    keys = [(key, shape) for layer in spec.layers for key, shape in layer.param_shapes().items()]
    for key, shape in keys[:n_params]:
        params[key] = r.floats().reshape(shape)
    n_rows = r.i32()
    raw = (COpCounts * n_rows).from_buffer_copy(r.take(n_rows * ctypes.sizeof(COpCounts)))
    names = [layer.name for layer in spec.layers] + [LOSS]
    counts = {
        names[row]: {p: raw[row * len(PHASES) + j].to_op_counts() for j, p in enumerate(PHASES)}
        for row in range(len(names))
    }
    arena = int(struct.unpack("<q", r.take(8))[0])
    n_mem = r.i32()
    peak = r.array(np.int64, n_mem).reshape(len(names), len(CATEGORIES))
    mem_names = [layer.name for layer in spec.layers] + [SHARED]
    memory = {
        mem_names[row]: {c: int(peak[row, j]) for j, c in enumerate(CATEGORIES)}
        for row in range(len(mem_names))
    }
    return TrainRun(
        status, losses, lg.reshape(-1, n_classes), params, counts, arena, memory, execution
    )


@dataclass
class SlimRun:
    """Results of a sliced-inference job: status, logits ``[N, K]``, margins, argmax, easy
    flags ``[N]``, the net's and the policy's counters, the scratch bytes and the execution."""

    status: int
    logits: np.ndarray
    margin: np.ndarray
    argmax: np.ndarray
    easy: np.ndarray
    ops: OpCounts
    ops_policy: OpCounts
    buffer_bytes: int
    execution: Execution


def slim_job(model: SlimF32 | SlimS8, x: np.ndarray, th: float) -> bytes:
    """The job file of :func:`run_slim`."""
    s8 = isinstance(model, SlimS8)
    parts = [_header(3 if s8 else 2)]
    parts.append(struct.pack("<4i", model.in_channels, model.in_length, len(model.convs),
                             len(model.denses)))  # fmt: skip
    for c in model.convs:
        co_full, ci_full, k = c.weight.shape
        parts.append(struct.pack("<6i", ci_full, co_full, c.c_in, c.c_out, k, c.pool))
        if isinstance(model, SlimS8):
            tensors = [c.weight.astype(np.int8), c.bias, c.mult, c.rshift]
            parts += [_tensor(tensors[0])] + [_tensor(np.asarray(t, np.int32)) for t in tensors[1:]]
        else:
            parts += [_tensor(np.asarray(t, np.float32)) for t in (c.weight, c.scale, c.shift)]
    for d in model.denses:
        n_out_full, n_in_full = d.weight.shape
        parts.append(struct.pack("<5i", n_in_full, n_out_full, d.n_in, d.n_out, int(d.relu)))
        if isinstance(model, SlimS8):
            parts.append(_tensor(d.weight.astype(np.int8)))
            parts += [_tensor(np.asarray(t, np.int32)) for t in (d.bias, d.mult, d.rshift)]
            parts.append(_tensor(np.asarray(d.logit_scale, np.float32)))
        else:
            parts += [_tensor(np.asarray(t, np.float32)) for t in (d.weight, d.bias)]
    xq = model.quantize_input(x) if isinstance(model, SlimS8) else np.asarray(x, np.float32)
    parts += [struct.pack("<i", x.shape[0]), _tensor(xq), struct.pack("<f", th)]
    return b"".join(parts)


def run_slim(
    model: SlimF32 | SlimS8, x: np.ndarray, th: float = 0.5, b: Build | None = None
) -> SlimRun:
    """Sliced inference of ``x [N, C, T]`` (float; the int8 model quantizes it with its input
    scale) and the score-margin policy at threshold ``th``, on the emulated Cortex-M4F."""
    b = b if b is not None else build()
    out, execution = execute(b, slim_job(model, x, th))
    r = _Reader(out)
    if r.i32() != _MAGIC_OUT:
        raise EmulatorError("the harness's output has no header")
    status = r.i32()
    logits = r.floats()
    margin = r.floats()
    argmax = r.array(np.int32, r.i32())
    easy = r.array(np.int32, r.i32()).astype(bool)
    ops = COpCounts.from_buffer_copy(r.take(ctypes.sizeof(COpCounts))).to_op_counts()
    ops_policy = COpCounts.from_buffer_copy(r.take(ctypes.sizeof(COpCounts))).to_op_counts()
    n = x.shape[0]
    return SlimRun(status, logits.reshape(n, -1) if n else logits, margin, argmax, easy, ops,
                   ops_policy, r.i32(), execution)  # fmt: skip


@dataclass
class QNetRun:
    """Results of a compressed-inference job: status, logits ``[N, K]``, the counters, the
    memory by part (``fh_qnet_memory``, :data:`fedhar.ondevice.qnet_infer.MEMORY_PARTS`) and
    the execution (layer ``i`` is region ``2 + 4 i``)."""

    status: int
    logits: np.ndarray
    ops: OpCounts
    memory: dict[str, int]
    execution: Execution


def qnet_job(net: QNet | DynamicNet, x: np.ndarray) -> bytes:
    """The job file of :func:`run_qnet`."""
    dyn = isinstance(net, DynamicNet)
    parts = [_header(5 if dyn else 4)]
    parts.append(struct.pack("<4i", net.in_channels, net.in_length, net.n_classes,
                             len(net.layers)))  # fmt: skip
    for layer in net.layers:
        parts.append(bytes(layer_dims(layer)))
        if isinstance(layer, QPool):
            head = struct.pack("<i", 0) if dyn else struct.pack("<3i", 0, layer.bits, layer.bits)
            parts += [head] + [_tensor(None)] * (3 if dyn else 5)
        elif isinstance(layer, DynamicLinear):
            parts.append(struct.pack("<i", int(layer.relu)))
            parts.append(_tensor(np.asarray(layer.weight, np.int8)))
            parts += [_tensor(np.asarray(t, np.float32)) for t in (layer.w_scale, layer.bias)]
        else:
            parts.append(struct.pack("<3i", layer.w_bits, layer.in_bits, layer.out_bits))
            parts.append(_tensor(np.asarray(layer.weight, np.uint8)))
            parts += [_tensor(np.asarray(t, np.int32)) for t in (layer.bias, layer.mult)]
            parts.append(_tensor(np.asarray(layer.rshift, np.int8)))
            parts.append(_tensor(np.asarray(layer.logit_scale, np.float32)))
    xin = np.ascontiguousarray(x, np.float32 if dyn else np.int8)
    parts += [struct.pack("<i", xin.shape[0]), _tensor(xin)]
    return b"".join(parts)


def run_qnet(net: QNet | DynamicNet, x: np.ndarray, b: Build | None = None) -> QNetRun:
    """A batch ``x [N, C, T]`` (int8 for a ``QNet``, float for a ``DynamicNet``) through the
    compressed-inference kernels on the emulated Cortex-M4F."""
    b = b if b is not None else build()
    out, execution = execute(b, qnet_job(net, x))
    r = _Reader(out)
    if r.i32() != _MAGIC_OUT:
        raise EmulatorError("the harness's output has no header")
    status = r.i32()
    logits = r.floats()
    ops = COpCounts.from_buffer_copy(r.take(ctypes.sizeof(COpCounts))).to_op_counts()
    memory = dict(zip(MEMORY_PARTS, (int(v) for v in r.array(np.int64, len(MEMORY_PARTS))),
                      strict=True))  # fmt: skip
    n = x.shape[0]
    return QNetRun(status, logits.reshape(n, -1) if n else logits, ops, memory, execution)
