"""Integer network payloads: the packed network on the wire, its bytes, PTQ calibration, and
runs that send w4a4 and mixed networks end to end on the in-process engine."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from fedhar.cli import main
from fedhar.enums import Mode, Status
from fedhar.models.ptq import calibrate_scales, requantize
from fedhar.models.quantized import QNet, dequantize, fold_spec, fold_state, packed_bytes, quantize
from fedhar.models.spec import cnn3, daghero_cnn
from fedhar.models.torch_model import build_torch
from fedhar.results.journal import read_rows
from fedhar.results.record import ClientRecord
from fedhar.wire.codec import PayloadError, encode_model, payload_bytes
from fedhar.wire.payload import (
    NETWORK_FORMATS,
    decode_payload,
    encode_payload,
    layer_bits,
)
from fedhar.wire.qcodec import decode_qnet, encode_qnet, raw_bytes

from .conftest import REPO, write_scenario

MIXED = {"conv1": (8, 8), "conv2": (4, 2), "fc1": (1, 4), "fc2": (2, 8)}
MIXED_YAML = "{conv1: [8, 8], conv2: [4, 2], fc1: [1, 4], fc2: [2, 8]}"
FRAMING = 5 * 320
"""Flower's framing of the five arrays of a network record is at most this many bytes."""


def _trained_like(spec, seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights with BatchNorm statistics away from the identity, so folding matters."""
    rng = np.random.default_rng(seed)
    state = {k: v.numpy() for k, v in build_torch(spec, seed=seed).spec_state_dict().items()}
    for key in state:
        if key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 2.0, state[key].shape).astype(np.float32)
        elif key.endswith("running_mean"):
            state[key] = rng.normal(0, 0.3, state[key].shape).astype(np.float32)
    return state


def _network(spec, payload: str, seed: int = 0) -> tuple[object, dict[str, np.ndarray], QNet]:
    folded = fold_spec(spec)
    state = fold_state(spec, _trained_like(spec, seed))
    x = np.random.default_rng(seed + 1).normal(size=(32, 3, spec.input_length))
    bits = layer_bits(payload, folded, MIXED if payload == "mixed" else None)
    scales = calibrate_scales(folded, state, x.astype(np.float32), bits, percentile=99.9)
    return folded, state, quantize(folded, state, bits, scales.act, scales.input)


def _same(a: object, b: object) -> bool:
    """Field-by-field equality of two layers: arrays equal in dtype and value."""
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, np.ndarray):
            if not (isinstance(y, np.ndarray) and x.dtype == y.dtype and np.array_equal(x, y)):
                return False
        elif x != y or type(x) is not type(y):
            return False
    return True


SPECS = [cnn3(3, 100, 5), daghero_cnn(3, 64, 6, hidden=16)]


# The mixed mapping names cnn3's layers; daghero (with BatchNorm to fold) takes the fixed formats.
ROUND_TRIPS = [(SPECS[0], p) for p in NETWORK_FORMATS] + [
    (SPECS[1], p) for p in NETWORK_FORMATS if p != "mixed"
]


@pytest.mark.parametrize(
    ("spec", "payload"), ROUND_TRIPS, ids=[f"{s.name}-{p}" for s, p in ROUND_TRIPS]
)
def test_decoded_network_equals_the_sent_one_field_by_field(spec, payload: str) -> None:
    folded, _, net = _network(spec, payload)
    back = decode_qnet(encode_qnet(net), folded)
    assert (back.spec_name, back.in_channels, back.in_length, back.n_classes) == (
        net.spec_name, net.in_channels, net.in_length, net.n_classes,
    )  # fmt: skip
    assert back.in_scale == net.in_scale
    assert len(back.layers) == len(net.layers)
    for sent, got in zip(net.layers, back.layers, strict=True):
        assert type(sent) is type(got)
        assert _same(sent, got), sent.name


@pytest.mark.parametrize("payload", NETWORK_FORMATS)
def test_payload_bytes_are_the_packed_weights_and_scales(payload: str) -> None:
    spec = SPECS[0]
    _, _, net = _network(spec, payload)
    record = encode_qnet(net)
    linears = net.linears()
    packed = sum(packed_bytes(q.n_weights, q.w_bits) for q in linears)
    channels = sum(q.c_out for q in linears)
    assert raw_bytes(net) == packed + 4 * channels + 4 * channels + 4 * len(linears) + 2 * len(
        linears
    )
    assert sum(len(record[name].data) for name in record) == raw_bytes(net)
    assert raw_bytes(net) < payload_bytes(record) <= raw_bytes(net) + FRAMING


def test_fewer_bits_fewer_bytes() -> None:
    spec = SPECS[0]
    state = _trained_like(spec)
    sizes = {p: payload_bytes(encode_qnet(_network(spec, p)[2])) for p in NETWORK_FORMATS}
    float32 = payload_bytes(encode_model(state, spec.param_shapes(), "float32"))
    assert sizes["w1a1"] < sizes["w2a2"] < sizes["w4a4"] < sizes["full_int8"] < float32
    assert sizes["w4a4"] < 0.7 * payload_bytes(encode_model(state, spec.param_shapes(), "int8"))


def test_a_network_of_another_spec_or_format_is_refused() -> None:
    folded, _, net = _network(SPECS[0], "w4a4")
    record = encode_qnet(net)
    with pytest.raises(PayloadError, match="payload array 'qw' holds"):
        decode_qnet(record, fold_spec(cnn3(3, 100, 6)))
    with pytest.raises(PayloadError, match="payload bits hold"):
        decode_qnet(record, fold_spec(daghero_cnn(3, 64, 6, hidden=16)))
    with pytest.raises(PayloadError, match="float32 values"):
        encode_qnet(dataclasses.replace(net, in_scale=0.1))


def test_the_float_state_of_a_network_payload_is_its_dequantized_network() -> None:
    folded, state, net = _network(SPECS[0], "w2a2")
    record = encode_payload(state, folded, "w2a2", net)
    for key, value in decode_payload(record, folded).items():
        np.testing.assert_array_equal(value, dequantize(net)[key])
    with pytest.raises(PayloadError, match="needs the network"):
        encode_payload(state, folded, "w2a2")


def test_requantize_keeps_the_bits_and_activation_scales() -> None:
    folded, state, net = _network(SPECS[0], "mixed")
    moved = {k: v * 1.5 for k, v in state.items()}
    again = requantize(folded, moved, net)
    assert again.bits() == net.bits() and again.in_scale == net.in_scale
    for old, new in zip(net.linears(), again.linears(), strict=True):
        assert old.out_scale == new.out_scale
        assert np.allclose(new.w_scale, 1.5 * old.w_scale, rtol=1e-5)


@pytest.mark.parametrize("percentile", [100.0, 99.0])
def test_calibration_clips_relu_outputs_at_the_percentile(percentile: float) -> None:
    spec = fold_spec(SPECS[0])
    state = fold_state(SPECS[0], _trained_like(SPECS[0]))
    x = np.random.default_rng(3).normal(size=(40, 3, 100)).astype(np.float32)
    bits = layer_bits("mixed", spec, MIXED)
    scales = calibrate_scales(spec, state, x, bits, percentile=percentile)
    net = build_torch(spec)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    with torch.no_grad():
        relu1 = net.relu1(net.conv1(torch.from_numpy(x))).numpy()
    expected = np.percentile(relu1, percentile) / (2**8 - 1)
    assert scales.act["conv1"] == pytest.approx(expected, rel=1e-6)
    assert scales.input == pytest.approx(np.percentile(np.abs(x), percentile) / 127, rel=1e-6)
    assert set(scales.act) == {"conv1", "conv2", "fc1"}
    assert all(float(np.float32(s)) == s for s in [scales.input, *scales.act.values()])


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny run per payload (int8 for comparison), w4a4 twice."""
    root = tmp_path_factory.mktemp("qpayload")
    outs = {}
    for name, payload, bits in [
        ("int8", "int8", ""),
        ("w4a4", "w4a4", ""),
        ("w4a4_again", "w4a4", ""),
        ("mixed", "mixed", MIXED_YAML),
    ]:
        (root / name).mkdir()
        scenario = write_scenario(root / name, payload=payload, bits=bits)
        assert main(["run", str(scenario), "--out", str(root / name / "out"), "--jobs", "1"]) == 0
        outs[name] = root / name / "out"
    return outs


def test_network_runs_report_deployed_f1_and_packed_bytes(runs: dict[str, Path]) -> None:
    int8 = {c["user"]: c for c in _report(runs["int8"])["clients"]}
    for name in ("w4a4", "mixed"):
        report = _report(runs[name])
        assert report["format"] == 5
        assert report["header"]["payload"] == name
        assert report["header"]["compression"] == "ptq"
        expected_bits = MIXED if name == "mixed" else dict.fromkeys(MIXED, (4, 4))
        assert report["header"]["payload_bits"] == {k: list(v) for k, v in expected_bits.items()}
        for row in report["clients"]:
            c = ClientRecord.from_dict(row)
            assert c.status == Status.OK
            assert list(c.modes) == [Mode.NONE, Mode.TL, Mode.FULL]
            assert all(0.0 <= m.f1_deployed <= 1.0 for m in c.modes.values())
            assert c.payload_bytes_down < 0.7 * int8[c.user]["payload_bytes_down"]
        assert report["summary"]["full"]["mean_deployed"] is not None
    assert "mean_int8" not in _report(runs["int8"])["summary"]["full"]


def test_a_qat_payload_is_trained_for_its_bits_and_scores_better_deployed(tmp_path: Path) -> None:
    """QAT of the 2-bit network on the fold's pretraining windows, against PTQ of it: the
    received model scores higher as deployed (mean over the users of No Pers.), and the report
    says how it was compressed."""
    means = {}
    for compression in ("ptq", "qat"):
        (tmp_path / compression).mkdir()
        scenario = write_scenario(
            tmp_path / compression,
            modes="[none]",
            payload="w2a2",
            federation=f", compression: {compression}, qat_epochs: 3",
        )
        out = tmp_path / compression / "out"
        assert main(["run", str(scenario), "--out", str(out), "--jobs", "1"]) == 0
        report = _report(out)
        assert report["header"]["compression"] == compression
        means[compression] = report["summary"]["none"]["mean_deployed"]
    assert means["qat"] > means["ptq"]


def test_network_run_is_byte_identical(runs: dict[str, Path]) -> None:
    assert (runs["w4a4"] / "report.json").read_bytes() == (
        runs["w4a4_again"] / "report.json"
    ).read_bytes()


def test_fedavg_of_w4a4_runs_two_rounds(tmp_path: Path) -> None:
    scenario = write_scenario(
        tmp_path, modes="[none, full]", rounds=2, aggregation="fedavg", payload="w4a4"
    )
    out = tmp_path / "out"
    assert main(["run", str(scenario), "--out", str(out), "--jobs", "1"]) == 0
    rows = read_rows(out / "clients.jsonl")
    assert [(r["round"], r["status"]) for r in rows] == [(1, "ok")] * 3 + [(2, "ok")] * 3
    # Round 2 sends each user the aggregate of the others' updates, re-quantized at 4 bits:
    # same size on the wire, other weights.
    first = {r["user"]: r for r in rows if r["round"] == 1}
    second = {r["user"]: r for r in rows if r["round"] == 2}
    for user, row in second.items():
        assert row["payload_bytes_down"] == first[user]["payload_bytes_down"]
        assert row["payload_bytes_up"] == row["payload_bytes_down"]
    kept = np.load(out / "updates" / "round-1" / "1.npz")
    assert {k.split("/", 1)[1] for k in kept.files} == set(fold_spec(SPECS[0]).param_shapes())


def _battery_scenario(directory: Path, payload: str) -> Path:
    """quickstart_battery, smaller: 3 users, 1 round, a battery that never runs out."""
    raw = yaml.safe_load((REPO / "scenarios" / "quickstart_battery.yaml").read_text())
    raw["data"]["options"]["n_users"] = 3
    raw["pretrain"].update(epochs=2, patience=1, val_fraction=0.0)
    raw["personalization"] = {"modes": ["none", "full"], "epochs": 1}
    raw["federation"] = {"rounds": 1, "payload": payload}
    raw["battery"].update(capacity_mah=500, skip_below_soc=None)
    raw["battery"]["charging"] = {"name": "never"}
    directory.mkdir()
    path = directory / "battery.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_4_bit_payload_spends_less_radio_energy_than_int8(tmp_path: Path) -> None:
    radio, down = {}, {}
    for payload in ("int8", "w4a4"):
        scenario = _battery_scenario(tmp_path / payload, payload)
        out = tmp_path / payload / "out"
        assert main(["run", str(scenario), "--out", str(out), "--jobs", "1"]) == 0
        clients = [ClientRecord.from_dict(row) for row in read_rows(out / "clients.jsonl")]
        radio[payload] = {c.user: c.battery.energy_j_by_load["radio"] for c in clients}
        down[payload] = {c.user: c.payload_bytes_down for c in clients}
    for user in radio["int8"]:
        assert 0 < radio["w4a4"][user] < radio["int8"][user]
        # No update goes back without aggregation: the radio only receives the payload, so its
        # energy follows the bytes on the wire (not the section's payload_bytes: 30000). The
        # journal keeps the figures unrounded.
        ratio = down["w4a4"][user] / down["int8"][user]
        assert radio["w4a4"][user] / radio["int8"][user] == pytest.approx(ratio, rel=1e-6)
