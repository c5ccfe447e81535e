"""One user's personalized model of a finished run, as its report scored it.

With aggregation a run keeps each accepted update (``RUN_DIR/updates/round-<r>/<user>.npz``);
otherwise :func:`personalized_model` runs the user's personalization again through the app's
own ClientApp code (``clients.personalize.run_mode``) from the fold model and config the
ServerApp would send (``server``), loaded from the app directory as the engines load them.
The run is deterministic by seed, so the F1 must equal the report's; otherwise
:class:`ReplayError`. The firmware carries an int8 payload, so a run whose payload is an
integer network (``full_int8``, ``w4a4``, ...) cannot be exported yet (:class:`ReplayError`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fedhar.engines.app import load_component, load_project
from fedhar.enums import Mode
from fedhar.mcu import load_profile
from fedhar.results.journal import load_kept_update
from fedhar.results.report import FLOAT_DIGITS
from fedhar.schema.scenario import load_scenario
from fedhar.studies.pipeline import prepared
from fedhar.wire.codec import encode_model, roundtrip
from fedhar.wire.payload import is_network_format

__all__ = ["ReplayError", "personalized_model"]


class ReplayError(ValueError):
    """The run cannot give back the model (its report disagrees, or it kept no update)."""


def personalized_model(
    run_dir: Path, user: str, mode: str, row: dict[str, Any], data_dir: str | None
) -> tuple[Any, dict[str, np.ndarray], Any, Any]:
    """(spec, deployed float32 state, scenario, the user's normalized data) of ``user``'s
    ``mode`` model: the int8 payload of its personalized weights, as the report scored it."""
    project = load_project()
    run_mode = load_component("clients.personalize", project.directory).run_mode
    receive = load_component("clients.deploy", project.directory).receive
    local_user = load_component("clients.task", project.directory).LocalUser
    server_app = load_component("server.server_app", project.directory)
    general_models = load_component("server.task", project.directory).general_models
    train_config, update_mode = server_app.train_config, server_app.update_mode
    scenario_path = str(run_dir / "scenario.yaml")
    scenario = load_scenario(scenario_path)
    payload = scenario.federation.payload
    if is_network_format(payload):
        raise ReplayError(
            f"{run_dir}: the run's payload is {payload}; the firmware export carries int8 "
            "payloads only (runs with federation.payload int8 or float32)"
        )
    data = prepared(scenario_path, data_dir)
    spec, shapes = data.spec, data.spec.param_shapes()
    model = general_models(scenario, scenario_path, data_dir)[user]
    round_number = int(row["round"])
    config = train_config(scenario, round_number, model)
    profile = load_profile(scenario.mcu.profile)
    raw = data.users[user]
    local = local_user(user, spec, profile, raw.train.x, raw.train.y, raw.test.x, raw.test.y)
    norm = local.normalized(config.norm_mean, config.norm_std)
    kept = load_kept_update(run_dir, round_number, user)
    if kept is not None and update_mode(scenario) == mode:
        return spec, roundtrip(kept[1], shapes, "int8"), scenario, norm
    if scenario.federation.aggregation != "none" and round_number > 1:
        raise ReplayError(
            f"--user {user!r}: round {round_number} of this run started from an aggregated "
            f"model and RUN_DIR keeps no {mode} update for it; use --mode "
            f"{update_mode(scenario) or 'full'}"
        )
    deployment = receive(encode_model(model.state, shapes, payload), spec)
    record, state = run_mode(deployment, Mode(mode), norm, config, profile)
    reported = row["modes"][mode]
    again = (round(record.f1, FLOAT_DIGITS), round(record.f1_deployed, FLOAT_DIGITS))
    if again != (reported["f1"], reported["f1_deployed"]):
        raise ReplayError(
            f"{run_dir / 'report.json'}: user {user!r} {mode}: personalizing again gives F1 "
            f"{record.f1} (deployed {record.f1_deployed}), the report has {reported['f1']} "
            f"(deployed {reported['f1_deployed']}); was the run made by another fedhar build?"
        )
    return spec, roundtrip(state, shapes, "int8"), scenario, norm
