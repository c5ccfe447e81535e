"""The guard of ``fedhar run`` (``personalization.guard_holdout_every``): a job's model is
deployed only if it beats the received model on held-out TR_i windows."""

from __future__ import annotations

import numpy as np
import pytest

from clients.deploy import Deployment
from clients.personalize import NormalizedData, run_mode
from fedhar.enums import Mode
from fedhar.mcu import load_profile
from fedhar.models.spec import cnn3
from fedhar.models.torch_model import build_torch
from fedhar.wire.protocol import TrainConfig


def _config(lr: float, every: int) -> TrainConfig:
    return TrainConfig(
        round=1,
        user="u",
        fold="f",
        modes=[Mode.NONE, Mode.FULL],
        epochs=10,
        lr=lr,
        batch_size=16,
        momentum=0.9,
        warmup_epochs=1,
        tl_layers=2,
        seed=0,
        norm_mean=[0.0] * 3,
        norm_std=[1.0] * 3,
        guard_holdout_every=every,
    )


@pytest.fixture(scope="module")
def setup():
    spec = cnn3(3, 40, 4)
    received = {k: v.numpy() for k, v in build_torch(spec, seed=0).spec_state_dict().items()}
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 120)
    x = (rng.standard_normal((120, 3, 40)) + y[:, None, None]).astype(np.float32)
    data = NormalizedData(x[:80], y[:80], x[80:], y[80:], 4)
    return Deployment(spec, received, "int8"), received, data, load_profile("stm32l496zg")


@pytest.mark.parametrize("lr", [1e-9, 0.01])
def test_the_guard_deploys_only_a_better_model(setup, lr: float) -> None:
    deployment, received, data, profile = setup
    none, _ = run_mode(deployment, Mode.NONE, data, _config(lr, 4), profile)
    full, state = run_mode(deployment, Mode.FULL, data, _config(lr, 4), profile)
    g = full.guard
    assert g["n_holdout"] == 20  # every 4th of 80
    assert bool(g["deployed"]) == (g["candidate_f1"] > g["received_f1"])
    if not g["deployed"]:
        assert full.f1 == none.f1  # the device kept the received model
        assert all(np.array_equal(state[k], received[k]) for k in received)
    if lr == 1e-9:  # a job that cannot learn never beats the model it started from
        assert not g["deployed"]
    else:  # this data is easy: the job's model wins, and is what the record scores
        assert g["deployed"] and full.f1 > none.f1


def test_without_the_guard_every_window_trains(setup) -> None:
    deployment, received, data, profile = setup
    full, _ = run_mode(deployment, Mode.FULL, data, _config(0.01, 0), profile)
    assert full.guard == {}
