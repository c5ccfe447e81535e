"""Bad input gives an error status and a Python exception, never a crash, and loses nothing."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from _ctrain_support import data, twins

from fedhar.models.spec import LayerSpec, ModelSpec, cnn3
from fedhar.ondevice import clib, ctrain
from fedhar.ondevice.clib import CLibError, Status
from fedhar.ondevice.ctrain import Trainer

SPEC = cnn3(3, 20, 6)


def _status(code: int) -> str:
    return clib.status_name(code)


def test_status_names() -> None:
    assert [_status(i) for i in range(7)] == [
        "FT_OK",
        "FT_ERR_NULL",
        "FT_ERR_SHAPE",
        "FT_ERR_ARENA_TOO_SMALL",
        "FT_ERR_ARG",
        "FT_ERR_NUMERIC",
        "FT_ERR_STATE",
    ]
    assert _status(99) == _status(-1) == "FT_UNKNOWN_STATUS"
    assert [f"FT_{s.name}" for s in Status] == [_status(s) for s in Status]


def test_too_small_arena() -> None:
    need = Trainer.required_arena_bytes(SPEC, "full")
    with pytest.raises(CLibError) as err:
        Trainer(SPEC, arena_bytes=need - 4)
    assert err.value.status == "FT_ERR_ARENA_TOO_SMALL"
    assert err.value.code == Status.ERR_ARENA_TOO_SMALL and err.value.entry == "ft_context_init"
    assert "ft_context_init" in str(err.value) and "3x20" in str(err.value)
    Trainer(SPEC, arena_bytes=need)


def test_mode_switch_that_does_not_fit_keeps_the_context_working() -> None:
    need_tl = Trainer.required_arena_bytes(SPEC, "tl")
    _, trainer = twins(SPEC, 0, mode="tl", arena_bytes=need_tl)
    x, y = data(8, 3, 20, 6, 0)
    with pytest.raises(CLibError, match="FT_ERR_ARENA_TOO_SMALL"):
        trainer.set_trainable(mode="full")
    assert trainer.trainable == ctrain.trainable_flags(SPEC, "tl")
    assert np.isfinite(trainer.train_batch(x, y))


def test_inconsistent_spec_shapes() -> None:
    bad = ModelSpec(
        "bad",
        3,
        20,
        6,
        (
            LayerSpec("conv1d", "c", (3, 20), (4, 17), out_channels=4, kernel=3, stride=1),
            LayerSpec("gap1d", "g", (4, 18), (4,)),
            LayerSpec("dense", "d", (4,), (6,), out_channels=6),
        ),
    )
    with pytest.raises(CLibError) as err:
        Trainer(bad)
    assert err.value.status == "FT_ERR_SHAPE"


def test_python_side_shape_and_dtype_checks() -> None:
    _, trainer = twins(SPEC, 0)
    x, y = data(4, 3, 20, 6, 0)
    with pytest.raises(ValueError, match=r"x must have shape \[\?, 3, 20\], got \[4, 3, 21\]"):
        trainer.train_batch(np.zeros((4, 3, 21), np.float32), y)
    with pytest.raises(TypeError, match="float32"):
        trainer.logits(x.astype(np.float64))
    with pytest.raises(ValueError, match="C-contiguous"):
        trainer.logits(np.asfortranarray(x))
    with pytest.raises(ValueError, match=r"y must have shape \[4\]"):
        trainer.train_batch(x, y[:3])
    with pytest.raises(ValueError, match="conv1.weight"):
        trainer.load_state_dict({**trainer.state_dict(), "conv1.weight": np.zeros((32, 3, 4))})


def test_c_side_validation_of_raw_calls() -> None:
    _, trainer = twins(SPEC, 0)
    lib, ctx = ctrain._lib(), trainer._ctx
    x, _ = data(2, 3, 20, 6, 0)
    y = np.array([0, 1], dtype=np.int32)
    loss = ctypes.c_float()
    p = ctypes.byref(loss)
    xp, yp = x.ctypes.data, y.ctypes.data
    assert _status(lib.ft_train_batch(ctx, None, yp, 2, 3, 20, p, None)) == "FT_ERR_NULL"
    assert _status(lib.ft_train_batch(ctx, xp, None, 2, 3, 20, p, None)) == "FT_ERR_NULL"
    assert _status(lib.ft_train_batch(None, xp, yp, 2, 3, 20, p, None)) == "FT_ERR_NULL"
    assert _status(lib.ft_train_batch(ctx, xp, yp, 2, 3, 19, p, None)) == "FT_ERR_SHAPE"
    assert _status(lib.ft_train_batch(ctx, xp, yp, 0, 3, 20, p, None)) == "FT_ERR_SHAPE"
    assert _status(lib.ft_logits(ctx, xp, 2, 4, 20, xp, None)) == "FT_ERR_SHAPE"
    assert _status(lib.ft_set_param(ctx, 0, 0, xp, 7, None)) == "FT_ERR_SHAPE"
    assert _status(lib.ft_set_param(ctx, 1, 0, xp, 1, None)) == "FT_ERR_ARG"  # relu has no weight
    assert _status(lib.ft_set_param(ctx, 99, 0, xp, 1, None)) == "FT_ERR_ARG"
    assert _status(lib.ft_get_counts(ctx, xp, 3, None)) == "FT_ERR_SHAPE"
    assert _status(lib.ft_get_memory(ctx, None, 3, None, None, None)) == "FT_ERR_NULL"
    assert _status(lib.ft_set_lr(ctx, 0.0, None)) == "FT_ERR_ARG"
    assert _status(lib.ft_set_lr(None, 0.1, None)) == "FT_ERR_NULL"
    bad = ctrain.train_config(0.01, 0.0, 0.0, 0, "adam")
    bad.eps = -1.0
    flags = ctrain._flags_array(trainer.trainable)
    assert _status(lib.ft_context_configure(ctx, ctypes.byref(bad), flags, None)) == "FT_ERR_ARG"
    bad = ctrain.train_config(0.01, 0.0, 0.0, 0)
    bad.optimizer = 7
    assert _status(lib.ft_context_configure(ctx, ctypes.byref(bad), flags, None)) == "FT_ERR_ARG"
    order = np.array([0, 5], dtype=np.int32)
    status = lib.ft_train_epoch(ctx, xp, yp, 2, 3, 20, order.ctypes.data, 2, 1, p, None)
    assert _status(status) == "FT_ERR_ARG"
    assert _status(
        lib.ft_train_epoch(ctx, None, None, 2, 3, 20, order.ctypes.data, 2, 1, p, None)
    ) == ("FT_ERR_SHAPE")


def test_bad_labels_order_and_batch_size() -> None:
    _, trainer = twins(SPEC, 0)
    x, y = data(4, 3, 20, 6, 0)
    start = trainer.state_dict()
    with pytest.raises(ValueError, match=r"label 6 at index 2: expected 0 <= label <= 5"):
        trainer.train_batch(x, np.array([0, 1, 6, 2]))
    with pytest.raises(ValueError, match=r"order index 4 at index 1: expected 0 <= order index"):
        trainer.train_epoch(x, y, 2, np.array([0, 4]))
    with pytest.raises(ValueError, match=r"batch_size 0: expected 1 <= batch_size"):
        trainer.train_epoch(x, y, 0)
    with pytest.raises(ValueError, match="more than the 0 stored-sample slots"):
        trainer.store_samples(x, y)
    after = trainer.state_dict()
    assert all(np.array_equal(after[k], start[k]) for k in start)


def test_nan_input_is_a_numeric_error_and_changes_nothing() -> None:
    _, trainer = twins(SPEC, 0, momentum=0.9)
    x, y = data(4, 3, 20, 6, 0)
    start = trainer.state_dict()
    x[2, 1, 5] = np.nan
    with pytest.raises(CLibError, match="FT_ERR_NUMERIC"):
        trainer.train_batch(x, y)
    with pytest.raises(CLibError, match="FT_ERR_NUMERIC"):
        trainer.logits(x)
    after = trainer.state_dict()
    assert all(np.array_equal(after[k], start[k]) for k in start)
    x[2, 1, 5] = 0.0
    assert np.isfinite(trainer.train_batch(x, y))


def test_invalid_hyper_parameters_and_weights() -> None:
    with pytest.raises(ValueError, match="momentum"):
        Trainer(SPEC, momentum=1.0)
    with pytest.raises(ValueError, match="mode"):
        Trainer(SPEC, mode="half")
    with pytest.raises(ValueError, match="tl_layers"):
        Trainer(SPEC, mode="tl", tl_layers=3)
    with pytest.raises(CLibError, match="FT_ERR_ARG"):
        Trainer(SPEC, class_weights=[1, 1, -1, 1, 1, 1])
    with pytest.raises(CLibError, match="FT_ERR_ARG"):
        Trainer(SPEC).set_trainable(flags=[True] * len(SPEC.layers))  # relu cannot train
    with pytest.raises(ValueError, match="Adam takes no momentum"):
        Trainer(SPEC, optimizer="adam", momentum=0.9)
    with pytest.raises(ValueError, match="betas"):
        Trainer(SPEC, optimizer="adam", betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="eps"):
        Trainer(SPEC, optimizer="adam", eps=0.0)
    with pytest.raises(ValueError, match="optimizer"):
        Trainer(SPEC, optimizer="rmsprop")
    with pytest.raises(ValueError, match="lr"):
        Trainer(SPEC).set_lr(float("nan"))
    _, trainer = twins(SPEC, 0, class_weights=[0, 1, 1, 1, 1, 1])
    x, _ = data(3, 3, 20, 6, 0)
    with pytest.raises(CLibError, match="FT_ERR_NUMERIC"):  # sum of batch weights is 0
        trainer.train_batch(x, np.zeros(3, dtype=np.int64))


def test_nothing_trainable_is_a_state_error() -> None:
    trainer = Trainer(SPEC)
    trainer.set_trainable(flags=[False] * len(SPEC.layers))
    x, y = data(2, 3, 20, 6, 0)
    with pytest.raises(CLibError, match="FT_ERR_STATE"):
        trainer.train_batch(x, y)
    assert trainer.logits(x).shape == (2, 6)


def test_many_contexts_are_independent() -> None:
    x, y = data(8, 3, 20, 6, 1)
    _, a = twins(SPEC, 0, momentum=0.9)
    _, b = twins(SPEC, 0, momentum=0.9)
    _, c = twins(SPEC, 0, momentum=0.9)
    a.train_batch(x, y)
    c.train_batch(x[:4], y[:4])
    b.train_batch(x, y)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert not all(np.array_equal(sa[k], sc[k]) for k in sa)
