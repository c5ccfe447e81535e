"""The server's models: each user's general model, and which layers aggregation touches.

Each user's general model is the one of that user's fold (under LOSO: pretrained on every
other user), from the pipeline's cached pretraining, with the fold's normalizer, compressed
for the scenario's payload format (:func:`fedhar.studies.compression.compress_fold`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fedhar.data.preprocess import Normalizer
from fedhar.models.quantized import QNet
from fedhar.models.spec import ModelSpec
from fedhar.models.torch_model import build_torch
from fedhar.progress import progress
from fedhar.schema.scenario import Scenario
from fedhar.studies.compression import compress_fold
from fedhar.studies.pipeline import Prepared, evaluate, prepared, pretrain_folds


@dataclass(frozen=True)
class GeneralModel:
    """The model one user starts from.

    Attributes:
        user: user id.
        fold: fold name.
        spec: the spec of the payload's float state (folded for an integer network format).
        state: float32 ``state_dict`` (spec keys and shapes).
        norm_mean: ``[C]`` per-channel mean of the fold's normalizer.
        norm_std: ``[C]`` per-channel std of the fold's normalizer.
        net: the fold's deployed network, whose bits and activation scales every payload of
            this user keeps (None for a float format).
    """

    user: str
    fold: str
    spec: ModelSpec
    state: dict[str, np.ndarray]
    norm_mean: tuple[float, ...]
    norm_std: tuple[float, ...]
    net: QNet | None = None


def general_models(
    scenario: Scenario, scenario_path: str, data_dir: str | None, *, jobs: int = 1
) -> dict[str, GeneralModel]:
    """user → :class:`GeneralModel`, for every participating user, in dataset order; the
    uncached folds are pretrained in ``jobs`` processes."""
    data = prepared(scenario_path, data_dir)
    out: dict[str, GeneralModel] = {}
    models = pretrain_folds(data, data.folds, scenario, jobs=jobs)
    for fold, result in progress(models, desc="pretraining", total=len(data.folds)):
        model = compress_fold(data, fold, result, scenario)
        norm = result.normalizer.to_dict()
        for user in fold.test_users:
            out[user] = GeneralModel(
                user,
                fold.name,
                model.spec,
                model.state,
                tuple(norm["mean"]),
                tuple(norm["std"]),
                model.net,
            )
    return {u: out[u] for u in data.users}


def aggregated_keys(spec: ModelSpec, aggregation: str) -> list[str]:
    """``state_dict`` keys that aggregation averages: none, all, or the shared feature layers
    (every layer before the first dense layer)."""
    if aggregation == "none":
        return []
    if aggregation == "fedavg":
        return list(spec.param_shapes())
    keys: list[str] = []
    for layer in spec.layers:
        if layer.kind == "dense":
            break
        keys += list(layer.param_shapes())
    return keys


def global_f1(data: Prepared, model: GeneralModel, state: dict[str, np.ndarray]) -> float:
    """Macro-F1 on ``model.user``'s TS_i of the float model ``state`` the server holds for
    that user (``model.spec`` keys and shapes), standardized with the fold's normalizer: the
    model the server would send the user next, scored without a round trip."""
    net = build_torch(model.spec, seed=0)
    weights = {k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}
    net.load_state_dict(weights, strict=False)
    normalizer = Normalizer(np.asarray(model.norm_mean), np.asarray(model.norm_std))
    test = data.users[model.user].test
    return float(evaluate(net.eval(), normalizer, test, data.n_classes).macro_f1)
