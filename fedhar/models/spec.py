"""Plain-data model specification shared by the PyTorch reference and the C training library.

A :class:`ModelSpec` is an ordered list of :class:`LayerSpec`. Every tensor is laid out as in
PyTorch: activations are ``[N, C, T]`` (batch, channels, time) before the first flattening layer
and ``[N, F]`` after it. Parameter tensors use PyTorch's ``state_dict`` names and layouts:

=============  ==========================  ======================================
layer kind     state_dict keys             shapes
=============  ==========================  ======================================
``conv1d``     ``{name}.weight``, ``.bias``  ``[F, C, K]``, ``[F]``
``dense``      ``{name}.weight``, ``.bias``  ``[M, N]``, ``[M]``
``batchnorm``  ``{name}.weight``, ``.bias``, ``[C]`` each (γ, β, μ, σ²)
               ``.running_mean``,
               ``.running_var``
=============  ==========================  ======================================

Shapes below are per sample (no batch axis): ``(C, T)`` for sequences, ``(F,)`` for vectors.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

LayerKind = Literal[
    "conv1d", "dense", "relu", "avgpool1d", "maxpool1d", "gap1d", "flatten", "batchnorm1d"
]
LAYER_KINDS: tuple[str, ...] = (
    "conv1d",
    "dense",
    "relu",
    "avgpool1d",
    "maxpool1d",
    "gap1d",
    "flatten",
    "batchnorm1d",
)
TRAINABLE_KINDS: tuple[str, ...] = ("conv1d", "dense", "batchnorm1d")


@dataclass(frozen=True)
class LayerSpec:
    """One layer. Only the fields its ``kind`` uses are meaningful; the others stay 0.

    Attributes:
        kind: one of :data:`LAYER_KINDS`.
        name: unique name; prefix of the layer's ``state_dict`` keys.
        in_shape: per-sample input shape, ``(C, T)`` or ``(F,)``.
        out_shape: per-sample output shape.
        out_channels: conv1d filters F, or dense units M.
        kernel: conv1d kernel K, or pooling window size.
        stride: conv1d or pooling stride.
        padding: ``"valid"`` or ``"same"`` (conv1d only; ``same`` requires stride 1).
        eps: batchnorm epsilon.
    """

    kind: str
    name: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    out_channels: int = 0
    kernel: int = 0
    stride: int = 0
    padding: str = "valid"
    eps: float = 1e-5

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """``state_dict`` key → shape of this layer's tensors (trainable and buffers)."""
        if self.kind == "conv1d":
            c = self.in_shape[0]
            return {
                f"{self.name}.weight": (self.out_channels, c, self.kernel),
                f"{self.name}.bias": (self.out_channels,),
            }
        if self.kind == "dense":
            return {
                f"{self.name}.weight": (self.out_channels, self.in_shape[0]),
                f"{self.name}.bias": (self.out_channels,),
            }
        if self.kind == "batchnorm1d":
            c = self.in_shape[0]
            return {
                f"{self.name}.{k}": (c,) for k in ("weight", "bias", "running_mean", "running_var")
            }
        return {}

    def trainable_count(self) -> int:
        """Number of trainable scalars (BatchNorm: γ and β only; running stats are frozen)."""
        total = 0
        for key, shape in self.param_shapes().items():
            if key.endswith(("running_mean", "running_var")):
                continue
            n = 1
            for d in shape:
                n *= d
            total += n
        return total


@dataclass(frozen=True)
class ModelSpec:
    """A sequential 1D-CNN: input ``[N, C, T]`` → logits ``[N, n_classes]``."""

    name: str
    input_channels: int
    input_length: int
    n_classes: int
    layers: tuple[LayerSpec, ...] = field(default_factory=tuple)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Ordered ``state_dict`` key → shape for the whole model."""
        out: dict[str, tuple[int, ...]] = {}
        for layer in self.layers:
            out.update(layer.param_shapes())
        return out

    def trainable_count(self) -> int:
        """Total number of trainable scalars."""
        return sum(layer.trainable_count() for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        d = asdict(self)
        d["layers"] = [asdict(layer) for layer in self.layers]
        return d

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), stable across runs: usable in content hashes."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`."""
        layers = tuple(
            LayerSpec(
                **{
                    **layer,
                    "in_shape": tuple(layer["in_shape"]),
                    "out_shape": tuple(layer["out_shape"]),
                }
            )
            for layer in d["layers"]
        )
        return ModelSpec(
            name=d["name"],
            input_channels=int(d["input_channels"]),
            input_length=int(d["input_length"]),
            n_classes=int(d["n_classes"]),
            layers=layers,
        )


class SpecBuilder:
    """Appends layers while tracking the running per-sample shape, validating as it goes."""

    def __init__(self, input_channels: int, input_length: int) -> None:
        if input_channels < 1 or input_length < 1:
            raise ValueError(
                "input must be at least 1 channel x 1 sample, "
                f"got ({input_channels}, {input_length})"
            )
        self.input_channels = input_channels
        self.input_length = input_length
        self.shape: tuple[int, ...] = (input_channels, input_length)
        self.layers: list[LayerSpec] = []

    def _add(self, kind: str, name: str, out_shape: tuple[int, ...], **kw: Any) -> SpecBuilder:
        if any(layer.name == name for layer in self.layers):
            raise ValueError(f"duplicate layer name {name!r}")
        self.layers.append(LayerSpec(kind, name, self.shape, out_shape, **kw))
        self.shape = out_shape
        return self

    def _need_seq(self, what: str) -> tuple[int, int]:
        if len(self.shape) != 2:
            raise ValueError(f"{what} needs a [C, T] input, got shape {self.shape}")
        return self.shape  # type: ignore[return-value]

    def conv1d(
        self, name: str, filters: int, kernel: int, stride: int = 1, padding: str = "valid"
    ) -> SpecBuilder:
        c, t = self._need_seq(f"conv1d {name!r}")
        if padding not in ("valid", "same"):
            raise ValueError(f"conv1d {name!r}: padding must be 'valid' or 'same', got {padding!r}")
        if padding == "same" and stride != 1:
            raise ValueError(f"conv1d {name!r}: padding='same' requires stride 1, got {stride}")
        if filters < 1 or kernel < 1 or stride < 1:
            raise ValueError(f"conv1d {name!r}: filters, kernel and stride must be >= 1")
        t_out = t if padding == "same" else (t - kernel) // stride + 1
        if t_out < 1:
            raise ValueError(f"conv1d {name!r}: kernel {kernel} is longer than the input ({t})")
        return self._add(
            "conv1d",
            name,
            (filters, t_out),
            out_channels=filters,
            kernel=kernel,
            stride=stride,
            padding=padding,
        )

    def batchnorm1d(self, name: str, eps: float = 1e-5) -> SpecBuilder:
        c, _ = self._need_seq(f"batchnorm1d {name!r}")
        return self._add("batchnorm1d", name, self.shape, eps=eps)

    def relu(self, name: str) -> SpecBuilder:
        return self._add("relu", name, self.shape)

    def pool1d(self, kind: str, name: str, size: int, stride: int | None = None) -> SpecBuilder:
        c, t = self._need_seq(f"{kind} {name!r}")
        stride = size if stride is None else stride
        if size < 1 or stride < 1:
            raise ValueError(f"{kind} {name!r}: size and stride must be >= 1")
        t_out = (t - size) // stride + 1
        if t_out < 1:
            raise ValueError(f"{kind} {name!r}: window {size} is longer than the input ({t})")
        return self._add(kind, name, (c, t_out), kernel=size, stride=stride)

    def gap1d(self, name: str) -> SpecBuilder:
        c, _ = self._need_seq(f"gap1d {name!r}")
        return self._add("gap1d", name, (c,))

    def flatten(self, name: str) -> SpecBuilder:
        n = 1
        for d in self.shape:
            n *= d
        return self._add("flatten", name, (n,))

    def dense(self, name: str, units: int) -> SpecBuilder:
        if len(self.shape) != 1:
            raise ValueError(f"dense {name!r} needs a flat [F] input, got {self.shape}")
        if units < 1:
            raise ValueError(f"dense {name!r}: units must be >= 1")
        return self._add("dense", name, (units,), out_channels=units)

    def build(self, model_name: str) -> ModelSpec:
        if len(self.shape) != 1:
            raise ValueError(f"model {model_name!r} must end with a flat output, got {self.shape}")
        return ModelSpec(
            model_name, self.input_channels, self.input_length, self.shape[0], tuple(self.layers)
        )


def cnn3(input_channels: int, input_length: int, n_classes: int, pool: int = 2) -> ModelSpec:
    """The 1D-CNN of Craighero et al. 2023 §IV-A (about 10k parameters for 6 classes).

    Conv1D(32, k=3)+ReLU+AvgPool → Conv1D(64, k=3)+ReLU+AvgPool → GlobalAvgPool →
    Dense(50)+ReLU → Dense(n_classes). Input ``[N, C, T]``; the paper's inputs are
    ``(T, C) = (20..100, 3)``.
    """
    b = SpecBuilder(input_channels, input_length)
    b.conv1d("conv1", 32, 3).relu("relu1").pool1d("avgpool1d", "pool1", pool)
    b.conv1d("conv2", 64, 3).relu("relu2").pool1d("avgpool1d", "pool2", pool)
    b.gap1d("gap").dense("fc1", 50).relu("relu3").dense("fc2", n_classes)
    return b.build("cnn3")


def daghero_cnn(
    input_channels: int,
    input_length: int,
    n_classes: int,
    channels: tuple[int, ...] = (16, 32, 64),
    kernels: tuple[int, ...] = (7, 7, 7),
    pool: int = 2,
    hidden: int = 0,
) -> ModelSpec:
    """The Conv1D+BatchNorm+ReLU+MaxPool template of Daghero et al. 2022, Fig. 4a.

    One block per entry of ``channels``/``kernels`` (``same`` padding so that the time axis
    shrinks only in the pools), then GlobalAvgPool, an optional hidden Dense+ReLU, and the
    classifier Dense.
    """
    if len(channels) != len(kernels) or not channels:
        raise ValueError(
            f"channels and kernels must be non-empty and of equal length, got {channels}, {kernels}"
        )
    b = SpecBuilder(input_channels, input_length)
    for i, (c, k) in enumerate(zip(channels, kernels, strict=True), start=1):
        b.conv1d(f"conv{i}", c, k, padding="same").batchnorm1d(f"bn{i}").relu(f"relu{i}")
        if b.shape[1] >= 2 * pool:
            b.pool1d("maxpool1d", f"pool{i}", pool)
    b.gap1d("gap")
    if hidden:
        b.dense("fc1", hidden).relu("relu_fc1").dense("fc2", n_classes)
    else:
        b.dense("fc", n_classes)
    return b.build("daghero")


def contoli_cnn(
    input_channels: int,
    input_length: int,
    n_classes: int,
    filters: int = 4,
    kernel: int = 3,
    pool: int = 2,
    hidden: int = 100,
) -> ModelSpec:
    """The 1D_CNN of Contoli et al. 2023 Table 1 (C_3: ``4F 3K 100D``).

    Conv1D(filters, kernel)+ReLU → MaxPool(pool) → Flatten → Dense(hidden)+ReLU →
    Dense(n_classes). The paper's dropout after the conv acts only in training and is left out;
    its pool size is not given, ``pool = 2`` is the Keras default of its toolchain.
    """
    b = SpecBuilder(input_channels, input_length)
    b.conv1d("conv1", filters, kernel).relu("relu1").pool1d("maxpool1d", "pool1", pool)
    b.flatten("flatten").dense("fc1", hidden).relu("relu2").dense("fc2", n_classes)
    return b.build("contoli")


class ModelOptionError(ValueError):
    """A model option that cannot build a model; ``option`` names it (a ``model.options``
    key), ``message`` says what was expected and what was found."""

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        self.message = message
        super().__init__(f"{option}: {message}")


def _int_list(option: str, value: Any, low: int) -> list[int]:
    """``value`` as a list of integers >= ``low`` (YAML booleans are not integers)."""
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= low for v in value
    ):
        raise ModelOptionError(option, f"expected a list of integers >= {low}, got {value!r}")
    return list(value)


def _sensor_count(sensors: Any, input_channels: int) -> int:
    """How many input channels a ``nas`` model reads: ``sensors`` are distinct indices into
    the data view's ``input_channels`` channels, or distinct channel names (counted here; the
    data pipeline resolves them, :func:`sensor_indices`); None reads every channel."""
    if sensors is None:
        return input_channels
    if not isinstance(sensors, (list, tuple)) or not sensors:
        raise ModelOptionError("sensors", f"expected a non-empty list, got {sensors!r}")
    for s in sensors:
        is_index = isinstance(s, int) and not isinstance(s, bool)
        if not (is_index or isinstance(s, str)) or (is_index and not 0 <= s < input_channels):
            raise ModelOptionError(
                "sensors",
                f"expected channel names or indices 0..{input_channels - 1} of the data's "
                f"{input_channels} channels, got {s!r}",
            )
    if len(set(sensors)) != len(sensors):
        raise ModelOptionError("sensors", f"expected distinct channels, got {list(sensors)}")
    return len(sensors)


def sensor_indices(sensors: Any, channel_names: list[str]) -> list[int]:
    """The data-view indices of a ``nas`` model's ``sensors`` (names or indices, as
    :func:`nas_cnn` takes them) among ``channel_names``, in the given order; every channel
    when ``sensors`` is None."""
    if sensors is None:
        return list(range(len(channel_names)))
    _sensor_count(sensors, len(channel_names))
    unknown = [s for s in sensors if isinstance(s, str) and s not in channel_names]
    if unknown:
        raise ModelOptionError(
            "sensors",
            f"expected channels of the data ({', '.join(channel_names)}), got {', '.join(unknown)}",
        )
    indices = [channel_names.index(s) if isinstance(s, str) else s for s in sensors]
    if len(set(indices)) != len(indices):
        raise ModelOptionError("sensors", f"expected distinct channels, got {list(sensors)}")
    return indices


def nas_cnn(
    input_channels: int,
    input_length: int,
    n_classes: int,
    kernels: list[int] | None = None,
    filters: list[int] | None = None,
    strides: list[int] | None = None,
    hidden: int = 0,
    sensors: list[int | str] | None = None,
) -> ModelSpec:
    """A model found by zhou2024's search (:mod:`fedhar.compress.nas`) as a plain CNN, laid
    out as ``SuperNet.to_spec`` lays it out, from the fields of its ``Architecture``.

    Args:
        input_channels: channels C of the data view (the model reads ``sensors`` of them).
        input_length: window samples T.
        n_classes: classes K.
        kernels: per searched layer, its kernel, or 0 for the identity (the layer is left
            out).
        filters: per searched layer, its kept filters (0 for an identity layer).
        strides: per searched layer, its stride; a stride-1 layer is ``same`` padded, a wider
            stride ``valid`` (the supernet's rule; an identity layer has stride 1). Default:
            the supernet's 2, 1, 2, 1, ...
        hidden: units of the dense layer after global pooling (0: none).
        sensors: the kept sensor channels, indices into the view or channel names; the data
            pipeline feeds the model only these, in this order. Default: every channel.

    Conv → ReLU for every non-identity layer, global average pooling, then ``fc1`` (hidden,
    ReLU) and ``fc2``, or ``fc1`` alone as the classifier. Raises :class:`ModelOptionError`.
    """
    if kernels is None or filters is None:
        missing = "kernels" if kernels is None else "filters"
        raise ModelOptionError(missing, "expected a list with one entry per searched layer")
    kernels = _int_list("kernels", kernels, 0)
    filters = _int_list("filters", filters, 0)
    strides = [2 - i % 2 for i in range(len(kernels))] if strides is None else strides
    strides = _int_list("strides", strides, 1)
    for option, values in (("filters", filters), ("strides", strides)):
        if len(values) != len(kernels):
            raise ModelOptionError(
                option, f"expected {len(kernels)} entries (one per kernel), got {len(values)}"
            )
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 0:
        raise ModelOptionError("hidden", f"expected an integer >= 0, got {hidden!r}")
    b = SpecBuilder(_sensor_count(sensors, input_channels), input_length)
    n = 0
    for i, (k, f, s) in enumerate(zip(kernels, filters, strides, strict=True)):
        if (k == 0) != (f == 0):
            raise ModelOptionError(
                "filters", f"expected 0 exactly where kernels has 0 (identity), got {f} at {i}"
            )
        if k == 0:
            if s != 1:
                raise ModelOptionError("strides", f"expected 1 for an identity, got {s} at {i}")
            continue
        n += 1
        try:
            b.conv1d(f"conv{n}", f, k, s, "same" if s == 1 else "valid").relu(f"relu{n}")
        except ValueError as exc:
            raise ModelOptionError("kernels", str(exc)) from None
    b.gap1d("gap")
    if hidden:
        b.dense("fc1", hidden).relu("relu_fc1").dense("fc2", n_classes)
    else:
        b.dense("fc1", n_classes)
    return b.build("nas")


MODEL_BUILDERS = {"cnn3": cnn3, "daghero": daghero_cnn, "contoli": contoli_cnn, "nas": nas_cnn}


def model_options(name: str) -> list[str]:
    """The keyword options :func:`build_spec` accepts for model ``name`` (a scenario's
    ``model.options``), e.g. ``pool`` for ``cnn3``; none for an unknown name."""
    if name not in MODEL_BUILDERS:
        return []
    params = list(inspect.signature(MODEL_BUILDERS[name]).parameters)
    return params[3:]  # after input_channels, input_length, n_classes


def build_spec(
    name: str, input_channels: int, input_length: int, n_classes: int, **options: Any
) -> ModelSpec:
    """Builds a model spec by its scenario name (``cnn3``, ``daghero``, ``contoli`` or
    ``nas``)."""
    if name not in MODEL_BUILDERS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODEL_BUILDERS)}")
    return MODEL_BUILDERS[name](input_channels, input_length, n_classes, **options)
