"""Small trained variable-width networks shared by the adaptive tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedhar.adaptive.slim import SlimNet, build_slim, train
from fedhar.models.spec import daghero_cnn


def toy_data(n: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``x [n, 3, 32]`` float32 windows whose class shifts channel 0; ``y [n]`` in 0..3."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.normal(size=(n, 3, 32)).astype(np.float32)
    x[:, 0, :] += 1.5 * y[:, None]
    return x, y


@pytest.fixture(scope="session")
def trained() -> tuple[SlimNet, np.ndarray, np.ndarray]:
    """A jointly trained (0.25, 0.5, 1.0)-width network with a hidden dense layer, and data.
    Trained on one thread, as ``fedhar adaptive`` does, so that the weights are reproducible."""
    torch.set_num_threads(1)
    spec = daghero_cnn(3, 32, 4, channels=(8, 16, 16), kernels=(7, 7, 15), hidden=8)
    net = build_slim(spec, (0.25, 0.5, 1.0), seed=1)
    x, y = toy_data()
    train(net, x, y, epochs=4, batch_size=32, lr=0.01, seed=0)
    return net, x, y
