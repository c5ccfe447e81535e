"""The model spec and the PyTorch network built from it agree on names, shapes and size."""

import pytest
import torch

from fedhar.models.spec import ModelSpec, build_spec, cnn3, daghero_cnn
from fedhar.models.torch_model import build_torch


@pytest.mark.parametrize("length", [20, 40, 60, 80, 100])
def test_cnn3_matches_paper_size_and_torch(length: int) -> None:
    spec = cnn3(3, length, 6)
    net = build_torch(spec, seed=0)
    # Craighero et al. 2023 §IV-A: "around 10000" trainable parameters for 6 classes.
    assert spec.trainable_count() == sum(p.numel() for p in net.parameters()) == 10084
    assert net(torch.zeros(4, 3, length)).shape == (4, 6)
    assert {k: tuple(v.shape) for k, v in net.spec_state_dict().items()} == spec.param_shapes()


def test_daghero_template_and_roundtrip() -> None:
    spec = daghero_cnn(3, 100, 5, channels=(8, 16), kernels=(7, 15))
    net = build_torch(spec, seed=1)
    assert net(torch.zeros(2, 3, 100)).shape == (2, 5)
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert {k: tuple(v.shape) for k, v in net.spec_state_dict().items()} == spec.param_shapes()


def test_same_seed_same_weights() -> None:
    a = build_torch(cnn3(3, 20, 6), seed=3).spec_state_dict()
    b = build_torch(cnn3(3, 20, 6), seed=3).spec_state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "resnet"}, "unknown model 'resnet'"),
        ({"name": "cnn3", "input_length": 4}, "longer than the input"),
    ],
)
def test_bad_specs_name_the_problem(kwargs: dict, message: str) -> None:
    args = {"name": "cnn3", "input_channels": 3, "input_length": 100, "n_classes": 6} | kwargs
    with pytest.raises(ValueError, match=message):
        build_spec(**args)
