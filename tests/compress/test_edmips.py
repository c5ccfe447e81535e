"""EdMIPS mixed-precision search (fedhar.compress.edmips): the cost term, λ's effect on the
chosen bits, determinism and the sweep."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedhar.compress.edmips import LOGITS_A_BITS, build_search, search, sweep, weight_bits_cost
from fedhar.models.quantized import BITS


def _weight_bits(trained, bits) -> int:  # noqa: ANN001
    shapes = trained.folded.param_shapes()
    return sum(w * int(np.prod(shapes[f"{n}.weight"])) for n, (w, _) in bits.items())


def test_expected_cost_is_the_coefficient_weighted_table(daghero, data) -> None:  # noqa: ANN001
    net = build_search(daghero.folded, daghero.folded_state, data.x[:64])

    def cost(name: str, w_bits: int, a_bits: int) -> float:
        return (
            {"conv1": 1.0, "conv2": 10.0, "conv3": 100.0, "fc": 1000.0}[name]
            * w_bits
            * (a_bits + 1)
        )

    tables = net.cost_tables(cost)
    with torch.no_grad():  # uniform coefficients: the mean of each table
        assert float(net.expected_cost(tables)) == pytest.approx(
            sum(float(t.mean()) for t in tables.values())
        )
        net.alpha["conv2"][:] = torch.tensor([0.0, 0.0, 0.0, 50.0])  # weights at 8 bits
        net.beta["conv2"][:] = torch.tensor([50.0, 0.0, 0.0, 0.0])  # activations at 1 bit
        parts = {n: float(t.mean()) for n, t in tables.items() if n != "conv2"}
        expected = sum(parts.values()) + 10.0 * 8 * 2
        assert float(net.expected_cost(tables)) == pytest.approx(expected, rel=1e-6)
    assert tables["fc"].shape == (len(BITS),)
    assert float(tables["fc"][BITS.index(2)]) == 1000.0 * 2 * (LOGITS_A_BITS + 1)
    default = weight_bits_cost(daghero.folded)
    assert default("conv2", 4, 1) == 4 * 16 * 8 * 7


def test_a_large_lambda_picks_fewer_weight_bits_than_a_small_one(daghero, data) -> None:  # noqa: ANN001
    kwargs = dict(epochs=2, batch_size=64, seed=0, calib_x=data.x[:128])
    small = search(daghero.folded, daghero.folded_state, data.x, data.y, lam=1e-5, **kwargs)
    large = search(daghero.folded, daghero.folded_state, data.x, data.y, lam=1e-2, **kwargs)
    assert set(small) == set(large) == {"conv1", "conv2", "conv3", "fc"}
    assert _weight_bits(daghero, large) < 0.5 * _weight_bits(daghero, small)
    assert all(w in BITS and a in BITS for w, a in small.values())


def test_search_is_deterministic_by_seed(daghero, data) -> None:  # noqa: ANN001
    kwargs = dict(lam=3e-4, epochs=1, batch_size=64, calib_x=data.x[:128])
    runs = [
        search(daghero.folded, daghero.folded_state, data.x[::2], data.y[::2], seed=s, **kwargs)
        for s in (5, 5)
    ]
    assert runs[0] == runs[1]


def test_sweep_fine_tunes_each_chosen_assignment(daghero, data) -> None:  # noqa: ANN001
    points = sweep(
        daghero.folded,
        daghero.folded_state,
        data.x[::2],
        data.y[::2],
        [1e-4, 1e-2],
        search_epochs=1,
        finetune_epochs=1,
        batch_size=64,
        calib_x=data.x[:128],
    )
    assert [p.lam for p in points] == [1e-4, 1e-2]
    for p in points:
        assert p.net.bits == dict(p.bits)


def test_bad_search_arguments_are_refused(daghero, data) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="lam must be >= 0"):
        search(daghero.folded, daghero.folded_state, data.x, data.y, lam=-1.0)
    with pytest.raises(ValueError, match="must cost more than 0"):
        search(
            daghero.folded,
            daghero.folded_state,
            data.x[:8],
            data.y[:8],
            lam=1e-4,
            cost=lambda name, w, a: 0.0,
        )
