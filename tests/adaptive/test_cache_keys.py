"""Cache keys of trained adaptive networks: options that cannot change a network's training
do not change its key (a grid model is read back under every distill/sandwich setting), and the
CPU kernels that do change it are part of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fedhar.adaptive.slim import TrainOptions, build_slim, train
from fedhar.models.spec import daghero_cnn
from fedhar.models.training import ISA_CAPS, numerical_environment
from fedhar.studies.adaptive_cache import data_digest, effective_options, net_key, trained_net

SPEC = daghero_cnn(3, 16, 3, channels=(4, 4, 8), kernels=(3, 3, 3))
PLAIN = TrainOptions(schedule="plateau", patience=2)
SLIM = TrainOptions(distill=True, sandwich=1, schedule="plateau", patience=2)


@pytest.fixture(scope="module")
def xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 3, 16)).astype(np.float32), rng.integers(0, 3, 40)


def test_single_width_training_ignores_distill_and_sandwich(xy) -> None:
    nets = []
    for options in (PLAIN, SLIM):
        net = build_slim(SPEC, (1.0,), seed=3)
        train(net, *xy, epochs=2, batch_size=16, lr=0.01, seed=3, options=options)
        nets.append(net.state_dict())
    for k in nets[0]:
        assert torch.equal(nets[0][k], nets[1][k]), k


def test_effective_options_keep_what_matters() -> None:
    assert effective_options(SLIM, (1.0,)) == PLAIN
    # Two widths: distillation applies, sandwich 1 never samples (2 + 1 >= 2 widths).
    assert effective_options(SLIM, (0.5, 1.0)) == TrainOptions(True, None, "plateau", 2)
    # Four widths: the sandwich rule samples one of the two middle widths.
    assert effective_options(SLIM, (0.25, 0.5, 0.75, 1.0)) == SLIM


def test_grid_model_is_a_cache_hit_under_slimmable_options(xy, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FEDHAR_CACHE_DIR", str(tmp_path))
    budget = {"epochs": 1, "batch_size": 16, "lr": 0.01, "seed": 0}
    _, key, hit = trained_net(SPEC, (1.0,), xy, options=PLAIN, **budget)
    assert not hit
    _, key_slim, hit_slim = trained_net(SPEC, (1.0,), xy, options=SLIM, **budget)
    assert hit_slim and key_slim == key
    _, key_two, _ = trained_net(SPEC, (0.5, 1.0), xy, options=PLAIN, **budget)
    _, key_two_distill, hit_two = trained_net(SPEC, (0.5, 1.0), xy, options=SLIM, **budget)
    assert not hit_two and key_two_distill != key_two


def test_key_follows_the_cpu_kernels_and_isa_caps(xy, monkeypatch) -> None:
    # The same seed trained on AVX-512 and AVX2 kernels gives other weights (README, issue 16),
    # so a cache shared by such machines must not hand one's networks to the other.
    for var in ISA_CAPS:
        monkeypatch.delenv(var, raising=False)
    args = (SPEC, (1.0,), data_digest(*xy), {"seed": 0}, None)
    plain = net_key(*args)
    assert net_key(*args) == plain
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    assert numerical_environment()["MKL_CBWR"] == "AVX2"
    assert net_key(*args) != plain
    monkeypatch.delenv("MKL_CBWR")
    other = "avx2" if torch.backends.cpu.get_cpu_capability() != "avx2" else "default"
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: other)
    assert numerical_environment()["cpu_capability"] == other
    assert net_key(*args) != plain
