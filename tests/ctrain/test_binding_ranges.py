"""Every integer that the bindings hand to C is range-checked before it is narrowed, and every C
entry point's error record names the argument that failed, the value found and the range it
accepts (checked here by calling the raw C functions with invalid values)."""

from __future__ import annotations

import ctypes
import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fedhar.models.spec import cnn3
from fedhar.ondevice import clib, ctrain, slim_infer
from fedhar.ondevice.cint import c_int, c_ints
from fedhar.ondevice.clib import CError, CLibError, Status
from fedhar.ondevice.ctrain import Trainer
from fedhar.ondevice.slim_format import ConvF32, ConvS8, DenseF32, DenseS8, SlimF32, SlimS8
from fedhar.ondevice.slim_infer import SlimNetC, score_margin

SPEC = cnn3(3, 20, 6)
HUGE = [2**31, 2**32, 2**63]
"""Values past int32 (and int64): ctypes and astype would narrow them silently."""


def _x(n: int = 4) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 3, 20)).astype(np.float32)


def _slim_f32() -> SlimF32:
    conv = ConvF32(
        np.ones((4, 3, 3), np.float32), 3, 4, 2, np.ones(4, np.float32), np.zeros(4, np.float32)
    )
    dense = DenseF32(np.ones((2, 4), np.float32), np.zeros(2, np.float32), 4, 2, False)
    return SlimF32(1.0, 3, 8, (conv,), (dense,))


def _slim_s8(rshift: Any = None) -> SlimS8:
    shifts = np.full(4, 8, np.int64) if rshift is None else np.array(rshift, dtype=object)
    one = np.ones(4, np.int32)
    conv = ConvS8(np.ones((4, 3, 3), np.int8), 3, 4, 2, one * 0, one * 2**20, shifts, 0.1)
    empty = np.zeros(0, np.int32)
    dense = DenseS8(
        np.ones((2, 4), np.int8),
        4,
        2,
        False,
        np.zeros(2, np.int32),
        empty,
        empty,
        np.ones(2, np.float32),
        1.0,
    )
    return SlimS8(1.0, 3, 8, 0.1, (conv,), (dense,))


# -- the narrowing helper -------------------------------------------------------------------


@pytest.mark.parametrize("value", [*HUGE, -(2**31) - 1])
def test_c_int_refuses_what_int32_cannot_hold(value: int) -> None:
    with pytest.raises(
        ValueError, match=rf"^n {value}: expected -2147483648 <= n <= 2147483647 \(int32\)$"
    ):
        c_int("n", value)


def test_c_int_bounds_types_and_notes() -> None:
    assert c_int("n", np.int64(7), lo=0, hi=7) == 7
    assert c_int("step", 2**63 - 1, "int64") == 2**63 - 1
    with pytest.raises(ValueError, match=r"^step 9223372036854775808: expected 0 <= step"):
        c_int("step", 2**63, "int64", lo=0)
    with pytest.raises(ValueError, match=r"^flag -1: expected 0 <= flag <= 255 \(uint8\)$"):
        c_int("flag", -1, "uint8")
    with pytest.raises(ValueError, match=r"^k 9: expected 0 <= k <= 5 \(6 classes\)$"):
        c_int("k", 9, lo=0, hi=5, why="6 classes")
    for bad in (True, 3.0, "3", None):
        with pytest.raises(TypeError, match="k must be an integer"):
            c_int("k", bad)


@pytest.mark.parametrize(
    "values",
    [
        np.array([0, 1, 2, 2**32], np.int64),
        np.array([0, 1, 2, 2**64 - 1], np.uint64),
        [0, 1, 2, 2**70],  # Python ints past int64: an object array
        np.array([0, 1, 2, -1], np.int8),
    ],
)
def test_c_ints_names_the_first_bad_element(values: Any) -> None:
    bad = int(np.asarray(values, dtype=object)[3])
    with pytest.raises(
        ValueError, match=rf"^label {bad} at index 3: expected 0 <= label <= 5 \(6 classes\)$"
    ):
        c_ints("label", values, "int32", 0, 5, "6 classes")


def test_c_ints_keeps_good_arrays_and_refuses_non_integers() -> None:
    a = np.arange(6, dtype=np.int32)
    assert c_ints("i", a) is a  # no copy when nothing changes
    assert c_ints("i", np.arange(3, dtype=np.uint64)).dtype == np.int32
    for bad in (np.zeros(3), np.zeros(3, bool), [1, 2.5], np.array([True, 0], object)):
        with pytest.raises(TypeError, match="i values must be integers"):
            c_ints("i", bad)


# -- every Python entry point checks before C ------------------------------------------------

Case = tuple[str, Callable[[Trainer, int], Any], str]
"""(id, call with the bad value, the message that names the parameter)."""


def _labels(v: int) -> np.ndarray:
    return np.array([0, 1, 2, v, 3], dtype=object)


TRAINER_CASES: list[Case] = [
    ("train_batch label", lambda t, v: t.train_batch(_x(5), _labels(v)), r"label {v} at index 3"),
    (
        "train_epoch label",
        lambda t, v: t.train_epoch(_x(5), _labels(v), 2),
        r"label {v} at index 3",
    ),
    (
        "store_samples label",
        lambda t, v: t.store_samples(_x(5), _labels(v)),
        r"label {v} at index 3",
    ),
    (
        "train_epoch order",
        lambda t, v: t.train_epoch(_x(5), np.zeros(5, int), 2, _labels(v)),
        r"order index {v} at index 3: expected 0 <= order index <= 4 \(5 samples\)",
    ),
    (
        "train_epoch batch_size",
        lambda t, v: t.train_epoch(_x(5), np.zeros(5, int), v),
        r"batch_size {v}: expected 1 <= batch_size <= 2147483647",
    ),
    (
        "store_samples first",
        lambda t, v: t.store_samples(_x(2), np.zeros(2, int), v),
        r"first {v}: expected 0 <= first <= 6 \(8 slots\)",
    ),
    (
        "load_optimizer_state step",
        lambda t, v: t.load_optimizer_state({**t.optimizer_state(), "step": v}),
        r"optimizer state step {v}: expected 0 <= optimizer state step <= 9223372036854775807",
    ),
]
BAD_INTS = [*HUGE, -1, -(2**31) - 1]


@pytest.mark.parametrize("value", BAD_INTS)
@pytest.mark.parametrize("case", TRAINER_CASES, ids=[c[0] for c in TRAINER_CASES])
def test_trainer_refuses_out_of_range_integers_and_changes_nothing(case: Case, value: int) -> None:
    name, call, message = case
    trainer = Trainer(SPEC, momentum=0.9, n_stored_samples=8)
    start = trainer.state_dict()
    if name == "load_optimizer_state step" and 0 <= value < 2**63:
        pytest.skip("2**31 and 2**32 are valid int64 steps")
    with pytest.raises(ValueError, match="^" + message.format(v=value)):
        call(trainer, value)
    after = trainer.state_dict()
    assert all(np.array_equal(after[k], start[k]) for k in start)
    assert np.isfinite(trainer.train_batch(_x(), np.arange(4)))


@pytest.mark.parametrize("label", [6, 7, 2**31 - 1])
def test_labels_are_checked_against_the_class_count(label: int) -> None:
    trainer = Trainer(SPEC)
    with pytest.raises(
        ValueError, match=rf"^label {label} at index 1: expected 0 <= label <= 5 \(6 classes\)$"
    ):
        trainer.train_batch(_x(2), np.array([0, label]))


@pytest.mark.parametrize("value", [*HUGE, -1])
def test_n_stored_samples_is_checked(value: int) -> None:
    with pytest.raises(
        ValueError, match=rf"^n_stored_samples {value}: expected 0 <= n_stored_samples"
    ):
        Trainer(SPEC, n_stored_samples=value)


@pytest.mark.parametrize("value", [2**63, 2**64, -1])  # 2**31 bytes would be a valid arena
def test_arena_bytes_is_checked(value: int) -> None:
    with pytest.raises(
        ValueError,
        match=rf"^arena_bytes {value}: expected 0 <= arena_bytes <= 9223372036854775807 \(int64\)$",
    ):
        Trainer(SPEC, arena_bytes=value)


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize("field", ["kernel", "stride", "in_shape", "out_shape"])
def test_layer_fields_are_checked(field: str, value: int) -> None:
    conv = SPEC.layers[0]
    new = (value, conv.in_shape[1]) if field == "in_shape" else (value, conv.out_shape[1])
    layer = dataclasses.replace(conv, **{field: new if field.endswith("shape") else value})
    spec = dataclasses.replace(SPEC, layers=(layer, *SPEC.layers[1:]))
    key = {"in_shape": "in_c", "out_shape": "out_c"}.get(field, field)
    with pytest.raises(ValueError, match=rf"^layer 'conv1' {key} {value}: expected"):
        ctrain.layer_descs(spec)


@pytest.mark.parametrize("value", [*HUGE, -(2**31) - 1])
@pytest.mark.parametrize("field", ["c_in", "c_out", "pool"])
def test_slim_dims_are_checked(field: str, value: int) -> None:
    m = _slim_f32()
    broken = dataclasses.replace(m, convs=(dataclasses.replace(m.convs[0], **{field: value}),))
    with pytest.raises(ValueError, match=rf"^conv 0 {field} {value}: expected"):
        SlimNetC(broken)


@pytest.mark.parametrize("value", [*HUGE, -(2**31) - 1])
def test_slim_int32_tensors_are_checked(value: int) -> None:
    with pytest.raises(ValueError, match=rf"^rshift {value} at index 2: expected"):
        SlimNetC(_slim_s8([8, 8, value, 8]))


# -- C statuses name the argument (raw calls, Python checks bypassed) --------------------------

P = ctypes.c_void_p


def _record(fn: Any, *args: Any) -> tuple[int, CError]:
    err = CError()
    return fn(*args, ctypes.byref(err)), err


@pytest.fixture(scope="module")
def trainer() -> Trainer:
    return Trainer(SPEC, momentum=0.9, n_stored_samples=4)


def _raw_cases(
    t: Trainer,
) -> list[tuple[str, Callable[[], tuple[int, CError]], Status, int, str, float]]:
    """(entry point, raw call, status, argument number, argument, value found)."""
    lib, ctx = ctrain._lib(), t._ctx
    x = _x(4)
    y = np.array([0, 7, 1, 2], np.int32)
    y_ok = np.zeros(4, np.int32)
    f = ctypes.c_float()
    xp, yp, okp, fp = x.ctypes.data, y.ctypes.data, y_ok.ctypes.data, ctypes.byref(f)
    order = np.array([0, 9], np.int32)
    w = np.ones(64 * 3 * 5, np.float32)
    nan_w = np.full(6, np.nan, np.float32)
    descs = ctrain.layer_descs(SPEC)
    bad_kernel = ctrain.layer_descs(SPEC)
    bad_kernel[0].kernel = 0
    cfg = ctrain.train_config(0.01, 0.9, 0.0, 4)
    other_cfg = ctrain.train_config(0.01, 0.9, 0.0, 5)
    flags = ctrain._flags_array(t.trainable)
    arena = np.zeros(1 << 20, np.uint8)
    out = P()
    step = ctypes.c_int64()
    keep.extend([x, y, y_ok, order, w, nan_w, descs, bad_kernel, cfg, other_cfg, flags, arena])
    c = ctypes.byref
    return [
        (
            "ft_train_batch",
            lambda: _record(lib.ft_train_batch, ctx, xp, yp, 4, 3, 20, fp),
            Status.ERR_ARG,
            3,
            "y[1]",
            7,
        ),
        (
            "ft_train_batch",
            lambda: _record(lib.ft_train_batch, ctx, xp, okp, -1, 3, 20, fp),
            Status.ERR_SHAPE,
            4,
            "n",
            -1,
        ),
        (
            "ft_train_batch",
            lambda: _record(lib.ft_train_batch, ctx, xp, okp, 4, 4, 20, fp),
            Status.ERR_SHAPE,
            5,
            "c",
            4,
        ),
        (
            "ft_train_epoch",
            lambda: _record(
                lib.ft_train_epoch, ctx, xp, okp, 4, 3, 20, order.ctypes.data, 2, 1, fp
            ),
            Status.ERR_ARG,
            7,
            "order[1]",
            9,
        ),
        (
            "ft_train_epoch",
            lambda: _record(
                lib.ft_train_epoch, ctx, xp, yp, 4, 3, 20, order.ctypes.data, 1, -3, fp
            ),
            Status.ERR_ARG,
            9,
            "batch_size",
            -3,
        ),
        (
            "ft_train_epoch",
            lambda: _record(
                lib.ft_train_epoch, ctx, xp, okp, 4, 3, 20, order.ctypes.data, -2, 1, fp
            ),
            Status.ERR_ARG,
            8,
            "n_order",
            -2,
        ),
        (
            "ft_store_samples",
            lambda: _record(lib.ft_store_samples, ctx, xp, okp, 4, 3, 20, -(2**31)),
            Status.ERR_ARG,
            7,
            "first",
            -(2**31),
        ),
        (
            "ft_store_samples",
            lambda: _record(lib.ft_store_samples, ctx, xp, yp, 4, 3, 20, 0),
            Status.ERR_ARG,
            3,
            "y[1]",
            7,
        ),
        (
            "ft_logits",
            lambda: _record(lib.ft_logits, ctx, xp, 4, 3, 2**31 - 1, xp),
            Status.ERR_SHAPE,
            5,
            "t",
            2**31 - 1,
        ),
        (
            "ft_set_param",
            lambda: _record(lib.ft_set_param, ctx, 99, 0, w.ctypes.data, 1),
            Status.ERR_ARG,
            2,
            "layer",
            99,
        ),
        (
            "ft_set_param",
            lambda: _record(lib.ft_set_param, ctx, 0, 42, w.ctypes.data, 1),
            Status.ERR_ARG,
            3,
            "param",
            42,
        ),
        (
            "ft_get_param",
            lambda: _record(lib.ft_get_param, ctx, 0, 0, w.ctypes.data, 7),
            Status.ERR_SHAPE,
            5,
            "n",
            7,
        ),
        (
            "ft_get_param",
            lambda: _record(lib.ft_get_param, ctx, -1, 0, w.ctypes.data, 1),
            Status.ERR_ARG,
            2,
            "layer",
            -1,
        ),
        (
            "ft_set_step",
            lambda: _record(lib.ft_set_step, ctx, -(2**63)),
            Status.ERR_ARG,
            2,
            "step",
            -(2**63),
        ),
        (
            "ft_get_step",
            lambda: _record(lib.ft_get_step, ctx, None),
            Status.ERR_NULL,
            2,
            "step",
            math.nan,
        ),
        (
            "ft_set_class_weights",
            lambda: _record(lib.ft_set_class_weights, ctx, nan_w.ctypes.data, 7),
            Status.ERR_SHAPE,
            3,
            "n_classes",
            7,
        ),
        (
            "ft_set_class_weights",
            lambda: _record(lib.ft_set_class_weights, ctx, nan_w.ctypes.data, 6),
            Status.ERR_ARG,
            2,
            "w[0]",
            math.nan,
        ),
        ("ft_set_lr", lambda: _record(lib.ft_set_lr, ctx, -1.0), Status.ERR_ARG, 2, "lr", -1),
        (
            "ft_get_counts",
            lambda: _record(lib.ft_get_counts, ctx, w.ctypes.data, 3),
            Status.ERR_SHAPE,
            3,
            "n_out",
            3,
        ),
        (
            "ft_reset_counts",
            lambda: _record(lib.ft_reset_counts, None),
            Status.ERR_NULL,
            1,
            "ctx",
            math.nan,
        ),
        (
            "ft_get_memory",
            lambda: _record(lib.ft_get_memory, ctx, w.ctypes.data, 2**40, None, None),
            Status.ERR_SHAPE,
            3,
            "n_out",
            2**40,
        ),
        (
            "ft_context_configure",
            lambda: _record(lib.ft_context_configure, ctx, c(other_cfg), flags),
            Status.ERR_ARG,
            2,
            "cfg->n_stored_samples",
            5,
        ),
        (
            "ft_context_get_buffer_size",
            lambda: _record(
                lib.ft_context_get_buffer_size,
                bad_kernel,
                len(SPEC.layers),
                c(cfg),
                flags,
                c(step),
                None,
            ),
            Status.ERR_ARG,
            1,
            "layers[0].kernel",
            0,
        ),
        (
            "ft_context_get_buffer_size",
            lambda: _record(
                lib.ft_context_get_buffer_size, descs, -7, c(cfg), flags, c(step), None
            ),
            Status.ERR_ARG,
            2,
            "n_layers",
            -7,
        ),
        (
            "ft_context_init",
            lambda: _record(
                lib.ft_context_init,
                arena.ctypes.data,
                -5,
                descs,
                len(SPEC.layers),
                c(cfg),
                flags,
                c(out),
            ),
            Status.ERR_ARG,
            2,
            "arena_bytes",
            -5,
        ),
        (
            "ft_context_init",
            lambda: _record(
                lib.ft_context_init,
                arena.ctypes.data,
                64,
                descs,
                len(SPEC.layers),
                c(cfg),
                flags,
                c(out),
            ),
            Status.ERR_ARENA_TOO_SMALL,
            2,
            "arena_bytes",
            64,
        ),
        (
            "ft_batchnorm1d_fold",
            lambda: _record(
                lib.ft_batchnorm1d_fold, *[w.ctypes.data] * 2, 0, 1, *[w.ctypes.data] * 4, 1e-5
            ),
            Status.ERR_SHAPE,
            3,
            "f",
            0,
        ),
        (
            "ft_batchnorm1d_fold",
            lambda: _record(
                lib.ft_batchnorm1d_fold, *[w.ctypes.data] * 2, 1, 1, *[w.ctypes.data] * 4, -1.0
            ),
            Status.ERR_ARG,
            9,
            "eps",
            -1,
        ),
    ]


keep: list[Any] = []
"""Arrays the raw calls point into, alive until the module's tests end."""


def _slim_raw_cases() -> list[
    tuple[str, Callable[[], tuple[int, CError]], Status, int, str, float]
]:
    lib = slim_infer._lib()
    f32, s8 = SlimNetC(_slim_f32()), SlimNetC(_slim_s8())
    broken = SlimNetC(_slim_f32())
    broken._structs[0][0].dims.c_in = 2
    shifted = SlimNetC(_slim_s8())
    shifted._structs[0][0].rshift[1] = 70
    x = np.zeros((2, 3, 8), np.float32)
    xq = np.zeros((2, 3, 8), np.int8)
    logits = np.zeros((2, 2), np.float32)
    buf = np.zeros(4096, np.uint8)
    ops = clib.COpCounts()
    size = ctypes.c_int32()
    margin, argmax, easy = np.zeros(2, np.float32), np.zeros(2, np.int32), np.zeros(2, np.uint8)
    keep.extend([f32, s8, broken, shifted, x, xq, logits, buf, ops, margin, argmax, easy])
    c = ctypes.byref
    fwd = (logits.ctypes.data, buf.ctypes.data)
    pol = (margin.ctypes.data, argmax.ctypes.data, easy.ctypes.data, c(ops))
    return [
        (
            "fh_slim_f32_get_buffer_size",
            lambda: _record(lib.fh_slim_f32_get_buffer_size, c(broken._net), c(size)),
            Status.ERR_SHAPE,
            1,
            "net->conv[0].dims.c_in",
            2,
        ),
        (
            "fh_slim_s8_get_buffer_size",
            lambda: _record(lib.fh_slim_s8_get_buffer_size, c(s8._net), None),
            Status.ERR_NULL,
            2,
            "bytes",
            math.nan,
        ),
        (
            "fh_slim_forward_f32",
            lambda: _record(
                lib.fh_slim_forward_f32, c(f32._net), x.ctypes.data, -(2**31), *fwd, 4096, c(ops)
            ),
            Status.ERR_ARG,
            3,
            "n",
            -(2**31),
        ),
        (
            "fh_slim_forward_f32",
            lambda: _record(
                lib.fh_slim_forward_f32, c(f32._net), x.ctypes.data, 2, *fwd, 8, c(ops)
            ),
            Status.ERR_ARENA_TOO_SMALL,
            6,
            "buffer_bytes",
            8,
        ),
        (
            "fh_slim_forward_s8",
            lambda: _record(
                lib.fh_slim_forward_s8, c(shifted._net), xq.ctypes.data, 2, *fwd, 4096, c(ops)
            ),
            Status.ERR_ARG,
            1,
            "net->conv[0].rshift",
            70,
        ),
        (
            "fh_slim_score_margin",
            lambda: _record(lib.fh_slim_score_margin, logits.ctypes.data, 2, 1, 0.5, *pol),
            Status.ERR_ARG,
            3,
            "n_classes",
            1,
        ),
        (
            "fh_slim_score_margin",
            lambda: _record(lib.fh_slim_score_margin, logits.ctypes.data, 2, 2, 1.5, *pol),
            Status.ERR_ARG,
            4,
            "th",
            1.5,
        ),
    ]


def test_c_records_name_the_failing_argument(trainer: Trainer) -> None:
    cases = _raw_cases(trainer) + _slim_raw_cases()
    for entry, run, status, arg, argument, value in cases:
        code, err = run()
        where = f"{entry}: {argument}"
        assert code == status and err.status == status, where
        assert (err.arg, err.argument()) == (arg, argument), where
        assert math.isnan(value) and math.isnan(err.value) or err.value == value, where
        if status != Status.ERR_NULL and not math.isnan(err.lo):
            inside = err.lo <= value <= err.hi
            assert not inside or err.open, where  # the value found is outside the range given
    exported = {*ctrain._SIGNATURES, "fh_slim_score_margin"}
    exported |= {k.buffer_size for k in (slim_infer._F32, slim_infer._S8)}
    exported |= {k.forward for k in (slim_infer._F32, slim_infer._S8)}
    assert {c[0] for c in cases} == exported  # every bound entry point has a case
    assert np.isfinite(trainer.train_batch(_x(), np.arange(4)))  # the context still works


def test_the_record_reports_success_and_n_layers() -> None:
    t = Trainer(SPEC)
    lib = clib.bind({"ft_get_n_layers": (P, P)})
    n = ctypes.c_int32()
    code, err = _record(lib.ft_get_n_layers, t._ctx, ctypes.byref(n))
    assert (code, err.status, err.arg, err.argument(), n.value) == (0, 0, 0, "", len(SPEC.layers))
    code, err = _record(lib.ft_get_n_layers, t._ctx, None)
    assert (code, err.arg, err.argument(), err.describe()) == (
        Status.ERR_NULL,
        2,
        "n_layers",
        "n_layers is NULL",
    )


def test_binding_messages_carry_the_record() -> None:
    with pytest.raises(CLibError) as e:
        Trainer(SPEC, class_weights=[1, 1, -1, 1, 1, 1])
    assert e.value.argument == "w[2]" and e.value.arg == 2 and e.value.value == -1
    assert str(e.value).startswith(
        "ft_set_class_weights: FT_ERR_ARG: w[2] = -1, expected 0 <= w[2] <="
    )
    need = Trainer.required_arena_bytes(SPEC)
    with pytest.raises(
        CLibError, match=rf"arena_bytes = {need - 8}, expected {need} <= arena_bytes;"
    ):
        Trainer(SPEC, arena_bytes=need - 8)
    layers = list(SPEC.layers)
    layers[1] = dataclasses.replace(
        layers[1], in_shape=(layers[1].in_shape[0] + 1, *layers[1].in_shape[1:])
    )
    with pytest.raises(
        CLibError, match=r"FT_ERR_SHAPE: layers\[1\]\.(in|out)_c = \d+, expected \d+"
    ):
        Trainer(dataclasses.replace(SPEC, layers=tuple(layers)))
    with pytest.raises(
        CLibError, match=r"fh_slim_score_margin: FT_ERR_ARG: th = 2, expected 0 <= th <= 1"
    ):
        score_margin(np.zeros((2, 3), np.float32), 2.0)
    t = Trainer(SPEC)
    x = _x(3)
    t.set_class_weights([0, 1, 1, 1, 1, 1])
    with pytest.raises(CLibError, match=r"FT_ERR_NUMERIC: sum of the batch's class weights = 0"):
        t.train_batch(x, np.zeros(3, int))
