"""A checkpoint (parameters, optimizer moments, step count) restored into a fresh context
continues training exactly as the original context would: the fleet resumes cut-off jobs
this way."""

from __future__ import annotations

import numpy as np
import pytest

from fedhar.models.spec import daghero_cnn
from fedhar.models.torch_model import build_torch
from fedhar.ondevice.ctrain import Trainer


def _setup(optimizer: str, mode: str) -> tuple[dict, dict, np.ndarray, np.ndarray]:
    spec = daghero_cnn(3, 40, 4, channels=(8, 8, 16), kernels=(7, 7, 7))
    start = {k: v.numpy() for k, v in build_torch(spec, seed=3).spec_state_dict().items()}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((70, 3, 40)).astype(np.float32)
    y = rng.integers(0, 4, 70)
    options = {"mode": mode, "tl_layers": 1, "optimizer": optimizer, "lr": 0.01}
    options["momentum"] = 0.9 if optimizer == "sgd" else 0.0
    return {"spec": spec, **options}, start, x, y


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("mode", ["full", "tl"])
def test_restored_checkpoint_continues_bit_identically(optimizer: str, mode: str) -> None:
    options, start, x, y = _setup(optimizer, mode)
    spec = options.pop("spec")
    order = [np.random.default_rng(e).permutation(len(y)) for e in range(3)]

    straight = Trainer(spec, **options)
    straight.load_state_dict(start)
    for e in range(3):
        straight.train_epoch(x, y, 16, order[e])

    first = Trainer(spec, **options)
    first.load_state_dict(start)
    first.train_epoch(x, y, 16, order[0])
    params, opt = first.state_dict(), first.optimizer_state()
    assert opt["step"] == 5  # ceil(70 / 16) steps
    assert any(k.endswith(".moment1") for k in opt)
    assert any(k.endswith(".moment2") for k in opt) == (optimizer == "adam")
    for e in (1, 2):
        resumed = Trainer(spec, **options)
        resumed.load_state_dict(params)
        resumed.load_optimizer_state(opt)
        resumed.train_epoch(x, y, 16, order[e])
        params, opt = resumed.state_dict(), resumed.optimizer_state()

    final = straight.state_dict()
    assert all(np.array_equal(final[k], params[k]) for k in final)
    assert opt["step"] == straight.optimizer_state()["step"] == 15

    # Without the optimizer state, the resumed run differs: the moments matter.
    fresh = Trainer(spec, **options)
    fresh.load_state_dict(first.state_dict())
    fresh.train_epoch(x, y, 16, order[1])
    again = Trainer(spec, **options)
    again.load_state_dict(first.state_dict())
    again.load_optimizer_state(first.optimizer_state())
    again.train_epoch(x, y, 16, order[1])
    diff = max(float(np.abs(fresh.state_dict()[k] - again.state_dict()[k]).max()) for k in final)
    assert diff > 1e-6


def test_optimizer_state_is_checked() -> None:
    options, start, x, y = _setup("sgd", "full")
    spec = options.pop("spec")
    t = Trainer(spec, **options)
    state = t.optimizer_state()
    with pytest.raises(ValueError, match="expected keys"):
        t.load_optimizer_state({"step": 0})
    with pytest.raises(ValueError, match=r"step -1: expected 0 <= optimizer state step"):
        t.load_optimizer_state({**state, "step": -1})
    name = next(k for k in state if k != "step")
    with pytest.raises(ValueError, match="must have shape"):
        t.load_optimizer_state({**state, name: np.zeros(3, np.float32)})
    plain = Trainer(spec, mode="full", momentum=0.0)
    assert plain.optimizer_state() == {"step": 0}  # plain SGD keeps no moments
