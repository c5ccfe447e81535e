"""A found architecture as a run scenario's ``model: {name: nas}``: the spec it builds is the
supernet's own re-instantiation, the data pipeline feeds it only the kept sensor channels, a
tiny LOSO run personalizes it end to end, and a bad option is one line naming its key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from fedhar.cli import main
from fedhar.compress.nas import SuperNet
from fedhar.models.spec import ModelOptionError, build_spec, sensor_indices
from fedhar.schema.scenario import Scenario
from fedhar.studies.found_model import model_section, model_yaml
from fedhar.studies.pipeline import prepare

NAMES = [f"{s}_{a}" for s in ("acc", "body_acc", "gyro") for a in "xyz"]
TINY = {
    "name": "tiny_nas",
    "seed": 1,
    "data": {
        "dataset": "synthetic",
        "options": {"n_users": 3, "seconds_per_activity": 20},
        "classes": ["walking", "sitting", "standing"],
        "window": 40,
        "stride": 20,
    },
    "model": {
        "name": "nas",
        "options": {
            "sensors": ["acc_z", "acc_x"],
            "kernels": [5, 0, 3, 1],
            "filters": [6, 0, 4, 5],
            "hidden": 8,
        },
    },
    "pretrain": {"epochs": 2, "batch_size": 32, "val_fraction": 0.0},
    "personalization": {
        "modes": ["none", "tl", "full"],
        "epochs": 1,
        "warmup_epochs": 1,
        "batch_size": 8,
    },
}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDHAR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CI", "1")


def _pruned_net() -> SuperNet:
    """A 9-channel supernet on a drawn path, some sensors and filters gated off."""
    net = SuperNet(9, 64, 6, filters=6, hidden=7, n_stride2=2, seed=3)
    with torch.no_grad():
        net.sensor_gate.v[[1, 4, 5, 8]] = 0.2
        for layer in net.layers:
            for gate in layer.gates:
                gate.v[::3] = 0.1
    for seed in range(20):  # a path with an identity layer
        net.generator.manual_seed(seed)
        net.sample(1.0)
        if 0 in net.architecture().kernels:
            return net
    raise AssertionError("no drawn path holds an identity")


def test_nas_option_builds_the_supernets_spec() -> None:
    net = _pruned_net()
    spec, state, sensors = net.to_spec()
    section = model_section(net, channel_names=NAMES)
    assert section["options"]["sensors"] == [NAMES[i] for i in sensors]
    assert 0 in section["options"]["kernels"] and len(sensors) == 5
    # Pasted as YAML and read back, with the sensor names resolved as the data pipeline does.
    options = yaml.safe_load(model_yaml(section))["model"]["options"]
    options["sensors"] = sensor_indices(options["sensors"], NAMES)
    assert options["sensors"] == sensors
    assert build_spec("nas", 9, 64, 6, **options) == spec
    # By index too, and the spec is the supernet's: its weights load into it unchanged.
    by_index = model_section(net)["options"]
    assert build_spec("nas", 9, 64, 6, **by_index) == spec
    assert set(state) == set(spec.param_shapes())
    assert all(tuple(state[k].shape) == s for k, s in spec.param_shapes().items())


@pytest.mark.parametrize(
    ("options", "option", "found"),
    [
        ({"filters": [4]}, "kernels", "one entry per searched layer"),
        ({"kernels": [3, 3], "filters": [4]}, "filters", "expected 2 entries"),
        ({"kernels": [3, 0], "filters": [4, 4]}, "filters", "0 exactly where kernels has 0"),
        ({"kernels": [3, 0], "filters": [4, 0], "strides": [1, 2]}, "strides", "identity"),
        ({"kernels": [3], "filters": [4], "sensors": [0, 0]}, "sensors", "distinct"),
        ({"kernels": [3], "filters": [4], "sensors": [9]}, "sensors", "0..8"),
        ({"kernels": [99], "filters": [4]}, "kernels", "longer than the input"),
        ({"kernels": [3], "filters": [True]}, "filters", "integers >= 0"),
        ({"kernels": [3], "filters": [4], "hidden": -1}, "hidden", ">= 0"),
    ],
)
def test_bad_nas_options_name_their_option(options: dict, option: str, found: str) -> None:
    with pytest.raises(ModelOptionError, match=found) as info:
        build_spec("nas", 9, 64, 6, **options)
    assert info.value.option == option


def test_unknown_sensor_name() -> None:
    with pytest.raises(ModelOptionError, match="expected channels of the data .* got gyro_w"):
        sensor_indices(["acc_x", "gyro_w"], NAMES)


def test_data_feeds_only_the_kept_channels() -> None:
    nas = prepare(Scenario.model_validate(TINY))
    plain = prepare(Scenario.model_validate({**TINY, "model": {"name": "cnn3"}}))
    assert plain.dataset.channels == ["acc_x", "acc_y", "acc_z"]
    assert nas.dataset.channels == ["acc_z", "acc_x"]
    assert nas.spec.input_channels == 2 and nas.windows.x.shape[1] == 2
    np.testing.assert_array_equal(nas.windows.x, plain.windows.x[:, [2, 0]])
    for user, data in nas.users.items():
        np.testing.assert_array_equal(data.test.x, plain.users[user].test.x[:, [2, 0]])


def test_tiny_loso_run_personalizes_the_found_model(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [c["user"] for c in report["clients"]] == ["1", "2", "3"]
    for client in report["clients"]:
        assert client["status"] == "ok"
        assert set(client["modes"]) == {"none", "tl", "full"}
        for mode in ("tl", "full"):
            job = client["modes"][mode]
            assert 0.0 <= job["f1"] <= 1.0 and job["cycles"] > 0
    # Full trains every layer of the 3-conv found model, TL only its two dense layers.
    mem = {m: report["summary"][m]["memory_bytes"] for m in ("tl", "full")}
    assert mem["full"]["gradients"] > mem["tl"]["gradients"] > 0


def test_bad_nas_option_in_a_scenario_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = json.loads(json.dumps(TINY))
    bad["model"]["options"]["sensors"] = ["acc_z", "gyro_x"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "bad.yaml: model.options.sensors: expected channels of the data" in err
    assert not (tmp_path / "out").exists()
