"""ctypes binding of the C training library (``fedhar/ondevice/csrc``, built as
``fedhar.ondevice._fedhar_train``).

One :class:`Trainer` is one simulated device: a context in its own arena (a numpy byte buffer)
holding the model, the optimizer state and every training buffer. Arrays cross into C without
copies and each entry point is one C call per batch or per epoch.

Layouts: samples ``x`` are ``[N, C, T]`` float32 C-contiguous, labels ``y`` ``[N]`` (any
integer dtype; converted to int32), logits ``[N, K]`` float32. Parameters use PyTorch's
``state_dict`` names and layouts (see :mod:`fedhar.models.spec`).

The shared object is loaded by :mod:`fedhar.ondevice.clib` (``FEDHAR_CTRAIN_LIB`` selects
another build); a non-zero C status raises :class:`~fedhar.ondevice.clib.CLibError`.
"""

from __future__ import annotations

import ctypes
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fedhar.models.spec import LayerSpec, ModelSpec
from fedhar.ondevice import clib
from fedhar.ondevice.cint import c_int, c_ints
from fedhar.ondevice.estimator import CATEGORIES, LOSS, PHASES, SHARED, OpCounts, trainable_flags

__all__ = [
    "CATEGORIES",
    "PHASES",
    "OpCounts",
    "Trainer",
    "fold_batchnorm",
    "layer_descs",
    "trainable_flags",
]

_KINDS = {
    "conv1d": 0,
    "dense": 1,
    "relu": 2,
    "avgpool1d": 3,
    "maxpool1d": 4,
    "gap1d": 5,
    "flatten": 6,
    "batchnorm1d": 7,
}
PARAM_IDS = {"weight": 0, "bias": 1, "running_mean": 2, "running_var": 3}
MOMENT_IDS = {
    ("moment1", "weight"): 4,
    ("moment1", "bias"): 5,
    ("moment2", "weight"): 6,
    ("moment2", "bias"): 7,
}
"""Optimizer-state tensors (SGD momentum or Adam first moment; Adam second moment) of a
trainable layer's weight and bias, as ``ft_get_param``/``ft_set_param`` ids."""


class _LayerDesc(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_int32),
        ("in_c", ctypes.c_int32),
        ("in_t", ctypes.c_int32),
        ("out_c", ctypes.c_int32),
        ("out_t", ctypes.c_int32),
        ("kernel", ctypes.c_int32),
        ("stride", ctypes.c_int32),
        ("pad_left", ctypes.c_int32),
        ("pad_right", ctypes.c_int32),
        ("eps", ctypes.c_float),
    ]


class _TrainConfig(ctypes.Structure):
    _fields_ = [
        ("lr", ctypes.c_float),
        ("momentum", ctypes.c_float),
        ("weight_decay", ctypes.c_float),
        ("n_stored_samples", ctypes.c_int32),
        ("optimizer", ctypes.c_int32),
        ("beta1", ctypes.c_float),
        ("beta2", ctypes.c_float),
        ("eps", ctypes.c_float),
    ]


_OPTIMIZERS = {"sgd": 0, "adam": 1}


_P = ctypes.c_void_p
_I32 = ctypes.c_int32
_I64 = ctypes.c_int64
_SIGNATURES: dict[str, tuple[Any, ...]] = {
    "ft_context_get_buffer_size": (_P, _I32, _P, _P, _P, _P),
    "ft_context_init": (_P, _I64, _P, _I32, _P, _P, _P),
    "ft_context_configure": (_P, _P, _P),
    "ft_set_lr": (_P, ctypes.c_float),
    "ft_set_param": (_P, _I32, _I32, _P, _I64),
    "ft_get_param": (_P, _I32, _I32, _P, _I64),
    "ft_set_class_weights": (_P, _P, _I32),
    "ft_get_step": (_P, _P),
    "ft_set_step": (_P, _I64),
    "ft_train_batch": (_P, _P, _P, _I32, _I32, _I32, _P),
    "ft_train_epoch": (_P, _P, _P, _I32, _I32, _I32, _P, _I32, _I32, _P),
    "ft_logits": (_P, _P, _I32, _I32, _I32, _P),
    "ft_store_samples": (_P, _P, _P, _I32, _I32, _I32, _I32),
    "ft_get_counts": (_P, _P, _I64),
    "ft_reset_counts": (_P,),
    "ft_get_memory": (_P, _P, _I64, _P, _P),
    "ft_batchnorm1d_fold": (_P, _P, _I32, _I32, _P, _P, _P, _P, ctypes.c_float),
}


@functools.cache
def _lib() -> ctypes.CDLL:
    return clib.bind(_SIGNATURES)


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


def _as_f32(name: str, a: Any, shape: tuple[int | None, ...] | None = None) -> np.ndarray:
    """Checks that ``a`` is a float32 C-contiguous ndarray of the given shape (None = any)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != np.float32:
        raise TypeError(f"{name} must be float32, got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use np.ascontiguousarray)")
    if shape is not None and (
        a.ndim != len(shape)
        or any(w is not None and w != s for w, s in zip(shape, a.shape, strict=True))
    ):
        want = "[" + ", ".join("?" if w is None else str(w) for w in shape) + "]"
        raise ValueError(f"{name} must have shape {want}, got {list(a.shape)}")
    return a


def _as_labels(name: str, y: Any, n: int, n_classes: int) -> np.ndarray:
    """Labels ``[n]`` as int32, each checked in ``[0, n_classes)`` before it is narrowed."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must have shape [{n}], got {list(y.shape)}")
    return c_ints("label", y, "int32", 0, n_classes - 1, f"{n_classes} classes")


def _samples(x: np.ndarray) -> tuple[int, int, int]:
    """The ``[N, C, T]`` shape of a sample array as three int32 arguments."""
    n, c, t = x.shape
    return c_int("sample count N", n), c_int("channels C", c), c_int("length T", t)


@functools.lru_cache(maxsize=256)
def _layer_desc(layer: LayerSpec) -> _LayerDesc:
    """The layer as an ``ft_layer_desc`` (cached: every client of a run builds the same ones;
    callers copy it into their array, never change it)."""

    def ct(shape: tuple[int, ...]) -> tuple[int, int]:
        return (shape[0], shape[1]) if len(shape) == 2 else (shape[0], 1)

    in_c, in_t = ct(layer.in_shape)
    out_c, out_t = ct(layer.out_shape)
    pad_l = pad_r = 0
    if layer.kind == "conv1d" and layer.padding == "same":
        total = layer.kernel - 1
        pad_l, pad_r = total // 2, total - total // 2
    if layer.kind not in _KINDS:
        raise ValueError(f"layer {layer.name!r}: kind {layer.kind!r} is not supported")
    sizes = {
        "in_c": in_c,
        "in_t": in_t,
        "out_c": out_c,
        "out_t": out_t,
        "kernel": layer.kernel,
        "stride": layer.stride,
        "pad_left": pad_l,
        "pad_right": pad_r,
    }
    return _LayerDesc(
        _KINDS[layer.kind],
        *(c_int(f"layer {layer.name!r} {field}", v) for field, v in sizes.items()),
        layer.eps,
    )


def layer_descs(spec: ModelSpec) -> ctypes.Array:
    """The spec as the C array of ``ft_layer_desc`` (vectors ``[F]`` become ``C=F, T=1``)."""
    arr = (_LayerDesc * len(spec.layers))()
    for i, layer in enumerate(spec.layers):
        arr[i] = _layer_desc(layer)
    return arr


def train_config(
    lr: float,
    momentum: float,
    weight_decay: float,
    n_stored: int,
    optimizer: str = "sgd",
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> _TrainConfig:
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be finite and > 0, got {lr}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if not (weight_decay >= 0 and math.isfinite(weight_decay)):
        raise ValueError(f"weight_decay must be finite and >= 0, got {weight_decay}")
    n_stored = c_int("n_stored_samples", n_stored, lo=0)
    if optimizer not in _OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(_OPTIMIZERS)}, got {optimizer!r}")
    if optimizer == "adam":
        if momentum != 0:
            raise ValueError(f"Adam takes no momentum (its betas), got momentum {momentum}")
        if not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Adam betas must be in [0, 1), got {tuple(betas)}")
        if not (eps > 0 and math.isfinite(eps)):
            raise ValueError(f"Adam eps must be finite and > 0, got {eps}")
    return _TrainConfig(
        lr, momentum, weight_decay, n_stored, _OPTIMIZERS[optimizer], betas[0], betas[1], eps
    )


def _flags_array(flags: list[bool]) -> ctypes.Array:
    return (ctypes.c_uint8 * len(flags))(*[1 if f else 0 for f in flags])


class Trainer:
    """One simulated device training a :class:`ModelSpec` through the C library.

    Args:
        spec: the model.
        mode: ``"full"`` (all conv/dense/batchnorm layers) or ``"tl"`` (last ``tl_layers``
            dense layers).
        tl_layers: dense layers trained in TL mode.
        lr, momentum, weight_decay: ``torch.optim.SGD`` hyper-parameters (dampening 0);
            with Adam, ``lr`` and ``weight_decay`` are ``torch.optim.Adam``'s and momentum
            must be 0.
        optimizer: ``"sgd"`` or ``"adam"`` (``torch.optim.Adam`` without AMSGrad).
        betas, eps: Adam's moment decays and denominator term (ignored by SGD).
        class_weights: ``[K]`` loss weights (``CrossEntropyLoss(weight=...)``), default ones.
        n_stored_samples: local samples reserved in the arena (see :meth:`store_samples`).
        arena_bytes: arena size in bytes; default: enough for this configuration and for
            Full mode with the same optimizer, so that :meth:`set_trainable` can switch.
        trainable: explicit per-layer flags (overrides ``mode``); only conv1d, dense and
            batchnorm1d layers may be True.

    Parameters start at zero (batchnorm: gamma 1, running var 1); load real ones with
    :meth:`load_state_dict`.
    """

    def __init__(
        self,
        spec: ModelSpec,
        mode: str = "full",
        tl_layers: int = 2,
        lr: float = 0.01,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        class_weights: Any = None,
        n_stored_samples: int = 0,
        arena_bytes: int | None = None,
        trainable: Sequence[bool] | None = None,
        optimizer: str = "sgd",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.spec = spec
        self.n_layers = c_int("number of layers", len(spec.layers))
        self.n_classes = c_int("n_classes", spec.n_classes, lo=1)
        self._descs = layer_descs(spec)
        self._optimizer, self._betas, self._eps = optimizer, (betas[0], betas[1]), eps
        self._cfg = train_config(
            lr, momentum, weight_decay, n_stored_samples, optimizer, betas, eps
        )
        if trainable is None:
            self._flags = trainable_flags(spec, mode, tl_layers)
        elif len(trainable) != self.n_layers:
            raise ValueError(f"trainable must have {self.n_layers} entries, got {len(trainable)}")
        else:
            self._flags = [bool(f) for f in trainable]
        if arena_bytes is None:
            arena_bytes = max(
                self._required(self._flags), self._required(trainable_flags(spec, "full"))
            )
        arena_bytes = c_int("arena_bytes", arena_bytes, "int64", lo=0)
        self._arena = np.zeros(arena_bytes, dtype=np.uint8)
        handle = ctypes.c_void_p()
        clib.call(
            _lib().ft_context_init,
            _ptr(self._arena),
            arena_bytes,
            self._descs,
            self.n_layers,
            ctypes.byref(self._cfg),
            _flags_array(self._flags),
            ctypes.byref(handle),
            detail=f"model {spec.name!r} input {spec.input_channels}x{spec.input_length}, "
            f"arena {arena_bytes} bytes",
        )
        self._ctx = handle.value
        self._n_stored = 0
        if class_weights is not None:
            self.set_class_weights(class_weights)

    # -- configuration --------------------------------------------------------------------

    def _required(self, flags: list[bool]) -> int:
        out = ctypes.c_int64()
        clib.call(
            _lib().ft_context_get_buffer_size,
            self._descs,
            self.n_layers,
            ctypes.byref(self._cfg),
            _flags_array(flags),
            ctypes.byref(out),
            None,
            detail=f"model {self.spec.name!r}",
        )
        return out.value

    @staticmethod
    def required_arena_bytes(
        spec: ModelSpec,
        mode: str = "full",
        tl_layers: int = 2,
        momentum: float = 0.0,
        n_stored_samples: int = 0,
        optimizer: str = "sgd",
    ) -> int:
        """Arena bytes (control block included) that this configuration needs."""
        out = ctypes.c_int64()
        cfg = train_config(0.01, momentum, 0.0, n_stored_samples, optimizer)
        flags = trainable_flags(spec, mode, tl_layers)
        clib.call(
            _lib().ft_context_get_buffer_size,
            layer_descs(spec),
            len(spec.layers),
            ctypes.byref(cfg),
            _flags_array(flags),
            ctypes.byref(out),
            None,
            detail=f"model {spec.name!r} mode {mode!r}",
        )
        return out.value

    @property
    def trainable(self) -> list[bool]:
        """Per-layer trainable flags, in spec order."""
        return list(self._flags)

    def set_trainable(
        self,
        mode: str | None = None,
        tl_layers: int = 2,
        flags: list[bool] | None = None,
        lr: float | None = None,
        momentum: float | None = None,
        weight_decay: float | None = None,
    ) -> None:
        """Switches what trains (a mode or explicit per-layer ``flags``) and/or the optimizer.

        Re-plans the arena; parameters are kept, gradients and momentum restart from zero (as
        with a new ``torch.optim.SGD``). Example warm-up: ``set_trainable(mode="tl",
        tl_layers=1)``, train, then ``set_trainable(mode="full")``.
        """
        if flags is None:
            new_flags = self._flags if mode is None else trainable_flags(self.spec, mode, tl_layers)
        else:
            if len(flags) != self.n_layers:
                raise ValueError(f"flags must have {self.n_layers} entries, got {len(flags)}")
            new_flags = [bool(f) for f in flags]
        cfg = train_config(
            self._cfg.lr if lr is None else lr,
            self._cfg.momentum if momentum is None else momentum,
            self._cfg.weight_decay if weight_decay is None else weight_decay,
            self._cfg.n_stored_samples,
            self._optimizer,
            self._betas,
            self._eps,
        )
        clib.call(
            _lib().ft_context_configure,
            self._ctx,
            ctypes.byref(cfg),
            _flags_array(new_flags),
            detail=f"flags {[int(f) for f in new_flags]}, arena {self._arena.nbytes} bytes",
        )
        self._cfg = cfg
        self._flags = new_flags

    def set_lr(self, lr: float) -> None:
        """Sets the learning rate and keeps the optimizer state (a schedule's step)."""
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be finite and > 0, got {lr}")
        clib.call(_lib().ft_set_lr, self._ctx, lr, detail=f"lr {lr}")
        self._cfg.lr = lr

    def set_class_weights(self, weights: Any) -> None:
        """Loss weights ``[K]``, each finite and >= 0."""
        w = np.ascontiguousarray(np.asarray(weights, dtype=np.float32))
        if w.shape != (self.n_classes,):
            raise ValueError(f"class_weights must have shape [{self.n_classes}], got {w.shape}")
        clib.call(
            _lib().ft_set_class_weights,
            self._ctx,
            _ptr(w),
            self.n_classes,
            detail=f"weights {w.tolist()}",
        )

    # -- parameters -----------------------------------------------------------------------

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Loads every tensor of the spec from a PyTorch-layout ``state_dict`` (numpy or torch)."""
        shapes = self.spec.param_shapes()
        missing = [k for k in shapes if k not in state]
        if missing:
            raise KeyError(f"state_dict lacks {missing}")
        for i, layer in enumerate(self.spec.layers):
            for key, shape in layer.param_shapes().items():
                value = state[key]
                if hasattr(value, "detach"):
                    value = value.detach().cpu().numpy()
                a = np.ascontiguousarray(np.asarray(value, dtype=np.float32))
                if a.shape != shape:
                    raise ValueError(f"{key} must have shape {list(shape)}, got {list(a.shape)}")
                pid = PARAM_IDS[key.rsplit(".", 1)[1]]
                clib.call(
                    _lib().ft_set_param,
                    self._ctx,
                    i,
                    pid,
                    _ptr(a),
                    a.size,
                    detail=f"{key} shape {list(a.shape)}",
                )

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every tensor of the spec, PyTorch names and layouts, float32 copies."""
        out: dict[str, np.ndarray] = {}
        for i, layer in enumerate(self.spec.layers):
            for key, shape in layer.param_shapes().items():
                a = np.empty(shape, dtype=np.float32)
                pid = PARAM_IDS[key.rsplit(".", 1)[1]]
                clib.call(
                    _lib().ft_get_param,
                    self._ctx,
                    i,
                    pid,
                    _ptr(a),
                    a.size,
                    detail=f"{key} shape {list(shape)}",
                )
                out[key] = a
        return out

    def _moment_slots(self) -> list[tuple[str, int, int, tuple[int, ...]]]:
        """``(name, layer, id, shape)`` of every optimizer-state tensor this context keeps."""
        kinds = ["moment1"] if self._optimizer == "sgd" else ["moment1", "moment2"]
        if self._optimizer == "sgd" and self._cfg.momentum == 0:
            kinds = []
        slots = []
        for i, layer in enumerate(self.spec.layers):
            if not self._flags[i]:
                continue
            for key, shape in layer.param_shapes().items():
                which = key.rsplit(".", 1)[1]
                for kind in kinds:
                    if (kind, which) in MOMENT_IDS:
                        slots.append((f"{key}.{kind}", i, MOMENT_IDS[(kind, which)], shape))
        return slots

    def optimizer_state(self) -> dict[str, Any]:
        """The optimizer's state: ``"step"`` (int) and, per trainable tensor, its moments as
        float32 copies in PyTorch layout (``"<tensor>.moment1"``, Adam's ``".moment2"``).

        With :meth:`state_dict`, a checkpoint: a context of the same model and configuration
        given both (:meth:`load_state_dict`, :meth:`load_optimizer_state`) continues training
        exactly as this one would.
        """
        step = ctypes.c_int64()
        clib.call(_lib().ft_get_step, self._ctx, ctypes.byref(step))
        out: dict[str, Any] = {"step": int(step.value)}
        for name, i, pid, shape in self._moment_slots():
            a = np.empty(shape, dtype=np.float32)
            clib.call(_lib().ft_get_param, self._ctx, i, pid, _ptr(a), a.size, detail=name)
            out[name] = a
        return out

    def load_optimizer_state(self, state: Mapping[str, Any]) -> None:
        """Restores what :meth:`optimizer_state` returned, for the same trainable set."""
        slots = self._moment_slots()
        expected = {"step", *(name for name, *_ in slots)}
        if set(state) != expected:
            raise ValueError(
                f"optimizer state: expected keys {sorted(expected)}, got {sorted(state)}"
            )
        step = c_int("optimizer state step", state["step"], "int64", lo=0)
        for name, i, pid, shape in slots:
            a = np.ascontiguousarray(np.asarray(state[name], dtype=np.float32))
            if a.shape != shape:
                raise ValueError(f"{name} must have shape {list(shape)}, got {list(a.shape)}")
            clib.call(_lib().ft_set_param, self._ctx, i, pid, _ptr(a), a.size, detail=name)
        clib.call(_lib().ft_set_step, self._ctx, step, detail=f"step {step}")

    # -- training and evaluation --------------------------------------------------------------

    def _x(self, name: str, x: Any) -> np.ndarray:
        c, t = self.spec.input_channels, self.spec.input_length
        return _as_f32(name, x, (None, c, t))

    def train_batch(self, x: np.ndarray, y: Any) -> float:
        """One SGD step on ``x [B, C, T]``, ``y [B]``; returns the batch's weighted mean loss."""
        x = self._x("x", x)
        labels = _as_labels("y", y, x.shape[0], self.n_classes)
        loss = ctypes.c_float()
        clib.call(
            _lib().ft_train_batch,
            self._ctx,
            _ptr(x),
            _ptr(labels),
            *_samples(x),
            ctypes.byref(loss),
            detail=f"x shape {list(x.shape)}",
        )
        return float(loss.value)

    def train_epoch(
        self, x: np.ndarray | None, y: Any, batch_size: int, order: Any = None
    ) -> float:
        """One epoch of SGD steps; returns the mean of the batch losses.

        Args:
            x: ``[N, C, T]``, or None with ``y`` None to train on the stored samples.
            y: ``[N]`` labels, each in ``[0, n_classes)``.
            batch_size: samples per step (>= 1); the last batch may be shorter.
            order: ``[M]`` sample indices in ``[0, N)``, in visiting order (default
                ``arange(N)``).
        """
        if x is None:
            if y is not None:
                raise ValueError("x and y must both be arrays, or both None (stored samples)")
            n = self._n_stored
            x_ptr = y_ptr = None
            c, t = self.spec.input_channels, self.spec.input_length
        else:
            x = self._x("x", x)
            labels = _as_labels("y", y, x.shape[0], self.n_classes)
            n, c, t = _samples(x)
            x_ptr, y_ptr = _ptr(x), _ptr(labels)
        idx = np.arange(n) if order is None else np.asarray(order)
        if idx.ndim != 1:
            raise ValueError(f"order must be a 1-D integer array, got shape {list(idx.shape)}")
        idx = c_ints("order index", idx, "int32", 0, n - 1, f"{n} samples")
        batch_size = c_int("batch_size", batch_size, lo=1)
        loss = ctypes.c_float()
        clib.call(
            _lib().ft_train_epoch,
            self._ctx,
            x_ptr,
            y_ptr,
            n,
            c,
            t,
            _ptr(idx),
            c_int("order length", idx.size),
            batch_size,
            ctypes.byref(loss),
            detail=f"x shape [{n}, {c}, {t}], order length {idx.size}, batch_size {batch_size}",
        )
        return float(loss.value)

    def store_samples(self, x: np.ndarray, y: Any, first: int = 0) -> None:
        """Copies ``x [N, C, T]``, ``y [N]`` into the arena's stored-sample slots ``first..``
        (``first + N`` must not exceed ``n_stored_samples``).

        :meth:`train_epoch` with ``x=None, y=None`` then trains on slots ``0..`` up to the
        highest slot written.
        """
        x = self._x("x", x)
        labels = _as_labels("y", y, x.shape[0], self.n_classes)
        slots = self._cfg.n_stored_samples
        if x.shape[0] > slots:
            raise ValueError(
                f"x has {x.shape[0]} samples, more than the {slots} stored-sample slots "
                "(n_stored_samples)"
            )
        first = c_int("first", first, lo=0, hi=slots - x.shape[0], why=f"{slots} slots")
        clib.call(
            _lib().ft_store_samples,
            self._ctx,
            _ptr(x),
            _ptr(labels),
            *_samples(x),
            first,
            detail=f"x shape {list(x.shape)} at slot {first} of {slots}",
        )
        self._n_stored = max(self._n_stored, first + x.shape[0])

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Forward pass of ``x [N, C, T]`` -> logits ``[N, K]`` float32 (one C call)."""
        x = self._x("x", x)
        out = np.empty((x.shape[0], self.n_classes), dtype=np.float32)
        clib.call(
            _lib().ft_logits,
            self._ctx,
            _ptr(x),
            *_samples(x),
            _ptr(out),
            detail=f"x shape {list(x.shape)}",
        )
        return out

    # -- accounting -----------------------------------------------------------------------

    def _row_names(self) -> list[str]:
        return [layer.name for layer in self.spec.layers]

    def counts(self) -> dict[str, dict[str, OpCounts]]:
        """Operations since the last reset: ``{layer name or "loss": {phase: OpCounts}}``.

        Phases: ``forward``, ``backward_input``, ``backward_weights``, ``update``.
        """
        rows = (self.n_layers + 1) * len(PHASES)
        buf = (clib.COpCounts * rows)()
        clib.call(_lib().ft_get_counts, self._ctx, buf, rows, detail=f"{rows} rows")
        out: dict[str, dict[str, OpCounts]] = {}
        for r, name in enumerate([*self._row_names(), LOSS]):
            out[name] = {
                phase: buf[r * len(PHASES) + p].to_op_counts() for p, phase in enumerate(PHASES)
            }
        return out

    def reset_counts(self) -> None:
        """Zeroes every operation counter."""
        clib.call(_lib().ft_reset_counts, self._ctx)

    def memory(self) -> dict[str, Any]:
        """Arena peak bytes.

        Returns a dict with one int per category of :data:`CATEGORIES` (peak bytes over the
        context's life), ``total`` (their sum), ``per_layer`` (``{layer name or "shared":
        {category: bytes}}``), ``control_bytes`` (context and tables, not in ``total``) and
        ``arena_bytes`` (the arena's capacity).
        """
        rows = self.n_layers + 1
        n = rows * len(CATEGORIES)
        peak = np.zeros(n, dtype=np.int64)
        ctl, cap = ctypes.c_int64(), ctypes.c_int64()
        clib.call(
            _lib().ft_get_memory,
            self._ctx,
            _ptr(peak),
            n,
            ctypes.byref(ctl),
            ctypes.byref(cap),
            detail=f"{n} entries",
        )
        table = peak.reshape(rows, len(CATEGORIES))
        per_layer = {
            name: {cat: int(table[r, j]) for j, cat in enumerate(CATEGORIES)}
            for r, name in enumerate([*self._row_names(), SHARED])
        }
        by_cat = {cat: int(table[:, j].sum()) for j, cat in enumerate(CATEGORIES)}
        return {
            **by_cat,
            "total": sum(by_cat.values()),
            "per_layer": per_layer,
            "control_bytes": ctl.value,
            "arena_bytes": cap.value,
        }


def fold_batchnorm(
    conv_weight: np.ndarray,
    conv_bias: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray]:
    """Folds an eval-mode BatchNorm1d into the preceding Conv1d (C ``ft_batchnorm1d_fold``).

    Args: conv weight ``[F, C, K]``, bias ``[F]``; gamma, beta, running mean/var ``[F]``.
    Returns new float32 ``(weight [F, C, K], bias [F])``; the inputs are not modified.
    """
    w = np.array(conv_weight, dtype=np.float32, order="C", copy=True)
    if w.ndim != 3:
        raise ValueError(f"conv_weight must be [F, C, K], got {list(w.shape)}")
    f = c_int("conv_weight F", w.shape[0])
    ck = c_int("conv_weight C * K", w.shape[1] * w.shape[2])
    b = np.array(conv_bias, dtype=np.float32, copy=True)
    vecs = [
        np.ascontiguousarray(v, dtype=np.float32) for v in (gamma, beta, running_mean, running_var)
    ]
    for name, v in zip(
        ("conv_bias", "gamma", "beta", "running_mean", "running_var"), [b, *vecs], strict=True
    ):
        if v.shape != (f,):
            raise ValueError(f"{name} must have shape [{f}], got {list(v.shape)}")
    clib.call(
        _lib().ft_batchnorm1d_fold,
        _ptr(w),
        _ptr(b),
        f,
        ck,
        *(_ptr(v) for v in vecs),
        eps,
        detail=f"conv weight {list(w.shape)}",
    )
    return w, b
