"""Bad input, case by case: every case runs the real command line (:func:`fedhar.cli.main`) and
must exit 2 with exactly one line on stderr that names the file, key or flag at fault, print no
traceback, and leave what was in the output folder as it was.

:data:`CASES` is the table of ``docs/bad_inputs.md`` (``scripts/bad_inputs_table.py`` prints it
from these cases, with the messages as they are printed). A hypothesis test adds generated bad
scenarios and corrupted data files.
"""

# ruff: noqa: E501  (the table of cases keeps one case a line)

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedhar.cli import main

BASE = {
    "name": "bad",
    "data": {
        "dataset": "synthetic",
        "options": {"n_users": 3, "seconds_per_activity": 5},
        "window": 50,
        "stride": 25,
    },
    "pretrain": {"epochs": 1},
}
"""A tiny valid scenario; each case breaks one thing of it."""

RECORD = b"1600,A,90426708196641,7.091625,-0.5916671,8.195502;\n"
"""One line of a WISDM 2019 raw file."""


@dataclass(frozen=True)
class Case:
    """One bad input: ``setup(root)`` writes its files under ``root`` and returns the argv;
    ``names`` must appear in the stderr line."""

    name: str
    setup: Callable[[Path], list[str]]
    names: str


def _merge(base: dict, over: dict) -> dict:
    out = json.loads(json.dumps(base))
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def scenario(over: dict, *flags: str) -> Callable[[Path], list[str]]:
    """``fedhar run`` of BASE with ``over`` merged in."""

    def setup(root: Path) -> list[str]:
        path = root / "s.yaml"
        path.write_text(yaml.safe_dump(_merge(BASE, over)))
        return ["run", str(path), "--out", str(root / "out"), *flags]

    return setup


def compress_scenario(over: dict) -> Callable[[Path], list[str]]:
    """``fedhar compress`` of BASE with a ``compress`` section ``over``."""

    def setup(root: Path) -> list[str]:
        path = root / "s.yaml"
        path.write_text(yaml.safe_dump({**BASE, "compress": over}))
        return ["compress", str(path), "--out", str(root / "out")]

    return setup


def adaptive_scenario(over: dict) -> Callable[[Path], list[str]]:
    """``fedhar adaptive`` of BASE with an ``adaptive`` section ``over``."""

    def setup(root: Path) -> list[str]:
        path = root / "s.yaml"
        path.write_text(yaml.safe_dump({**BASE, "adaptive": over}))
        return ["adaptive", str(path), "--out", str(root / "out")]

    return setup


def raw_scenario(text: bytes | None) -> Callable[[Path], list[str]]:
    """``fedhar run`` of a scenario file holding ``text`` (None: a directory there)."""

    def setup(root: Path) -> list[str]:
        path = root / "s.yaml"
        if text is None:
            path.mkdir()
        else:
            path.write_bytes(text)
        return ["run", str(path), "--out", str(root / "out")]

    return setup


def wisdm2019_file(name: str, content: bytes | None) -> Callable[[Path], list[str]]:
    """``fedhar data info`` over a WISDM 2019 folder whose one raw file holds ``content``
    (None: a directory of that name)."""

    def setup(root: Path) -> list[str]:
        folder = root / "data" / "wisdm_2019" / "raw" / "phone" / "accel"
        folder.mkdir(parents=True)
        if content is None:
            (folder / name).mkdir()
        else:
            (folder / name).write_bytes(content)
        return ["data", "info", "--dataset", "wisdm2019", "--data-dir", str(root / "data")]

    return setup


def wisdm_v11_file(name: str, content: bytes) -> Callable[[Path], list[str]]:
    """``fedhar data info`` over a WISDM v1.1 folder holding ``name``."""

    def setup(root: Path) -> list[str]:
        folder = root / "data" / "wisdm_v1.1"
        folder.mkdir(parents=True)
        (folder / name).write_bytes(content)
        return ["data", "info", "--dataset", "wisdm", "--data-dir", str(root / "data")]

    return setup


def hapt_labels(content: bytes) -> Callable[[Path], list[str]]:
    """``fedhar data info`` over a HAPT folder whose ``labels.txt`` holds ``content``."""

    def setup(root: Path) -> list[str]:
        raw = root / "data" / "uci_har" / "RawData"
        raw.mkdir(parents=True)
        (raw / "labels.txt").write_bytes(content)
        (raw / "acc_exp01_user01.txt").write_bytes(b"0.1 0.2 0.3\n")
        (raw / "gyro_exp01_user01.txt").write_bytes(b"0.1 0.2 0.3\n")
        return ["data", "info", "--dataset", "hapt", "--data-dir", str(root / "data")]

    return setup


def bits_file(text: str) -> Callable[[Path], list[str]]:
    """``fedhar run`` of BASE with a mixed payload whose ``bits_from`` folder's ``bits.json``
    holds ``text``."""

    def setup(root: Path) -> list[str]:
        (root / "compressed").mkdir()
        (root / "compressed" / "bits.json").write_text(text)
        return scenario({"federation": {"payload": "mixed", "bits_from": "compressed"}})(root)

    return setup


CNN3_BITS = {"conv1": [8, 8], "conv2": [4, 4], "fc1": [2, 4], "fc2": [8, 8]}


def foreign_results(root: Path) -> list[str]:
    """``--out`` holds the journal of another scenario."""
    out = root / "out"
    header = {"scenario": "other", "scenario_sha256": "0" * 64, "seed": 7}
    line = json.dumps({"fedhar_journal": 1, "identity": header}) + "\n"
    (out / "clients.jsonl").write_text(line)
    return scenario({})(root)


def out_is_file(root: Path) -> list[str]:
    argv = scenario({})(root)
    (root / "taken").write_text("mine\n")
    return [*argv[:-1], str(root / "taken")]


def _tar_gz(member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
GOOD_GZ = gzip.compress(RECORD * 200, mtime=0)
V11 = b"33,Jogging,49105962326000,-0.6946377,12.680544,0.50395286;\n" * 50
RAW = "data_1600_accel_phone.txt"
MODES = {
    "clock_hz": 8e7,
    "rows": [{"th": 1, "f1": 0.9, "p_easy": 0.5, "cycles_avg": 1, "energy_uj_avg": 1}],
}

CASES = [
    # the scenario file itself
    Case("scenario file missing", lambda r: ["run", str(r / "none.yaml"), "--out", str(r / "out")], "none.yaml: file not found"),
    Case("scenario is a directory", raw_scenario(None), "s.yaml"),
    Case("scenario is not YAML", raw_scenario(b"name: [unclosed\n"), "s.yaml: line 2"),
    Case("scenario is not UTF-8", raw_scenario(b"name: \xff\xfe\n"), "not UTF-8"),
    Case("scenario is a list", raw_scenario(b"- 1\n- 2\n"), "top level"),
    Case("scenario is a PNG", raw_scenario(PNG), "s.yaml"),
    # values checked at load
    Case("unknown key", scenario({"data": {"windw": 50}}), "data.windw: unknown key"),
    Case("missing required key", raw_scenario(b"name: x\n"), "data: missing required key"),
    Case("lr not a number", scenario({"pretrain": {"lr": "fast"}}), "pretrain.lr"),
    Case("lr NaN", scenario({"personalization": {"lr": float("nan")}}), "personalization.lr: expected a finite number"),
    Case("lr infinite", scenario({"pretrain": {"lr": float("inf")}}), "pretrain.lr: expected a finite number"),
    Case("unknown pretraining method", scenario({"pretrain": {"method": "gossip"}}), "pretrain.method: expected one of"),
    Case("federated pretraining of no round", scenario({"pretrain": {"method": "federated", "federated": {"rounds": 0}}}), "pretrain.federated.rounds"),
    Case("federated pretraining in torch", scenario({"pretrain": {"method": "federated", "engine": "torch"}}), "pretrain.method: expected centralized"),
    Case("more clients per round than users", scenario({"pretrain": {"method": "federated", "federated": {"clients_per_round": 5}}}), "s.yaml: pretrain.federated.clients_per_round: expected at most the number of training users"),
    Case("window below range", scenario({"data": {"window": 10}}), "data.window"),
    Case("unknown dataset", scenario({"data": {"dataset": "mnist"}}), "data.dataset"),
    Case("unknown channel set", scenario({"data": {"channels": "gyro9"}}), "data.channels: expected one of"),
    Case("unknown MCU profile", scenario({"mcu": {"profile": "nope"}}), "mcu.profile: unknown MCU profile 'nope'"),
    Case("MCU profile file missing", scenario({"mcu": {"profile": "nowhere/p.yaml"}}), "mcu.profile"),
    Case("unknown mode", scenario({"personalization": {"modes": ["fast"]}}), "personalization.modes.0"),
    Case("unknown charging habit", scenario({"battery": {"capacity_mah": 100, "modes": MODES, "charging": {"name": "solar"}}}), "battery.charging.name"),
    Case("unknown policy parameter", scenario({"battery": {"capacity_mah": 100, "modes": MODES, "personalization": {"name": "energy_budget", "params": {"budget": 1}}}}), "battery.personalization.params.budget: unknown key"),
    Case("policy parameter out of range", scenario({"battery": {"capacity_mah": 100, "modes": MODES, "charging": {"name": "nightly", "params": {"probability": 2}}}}), "battery.charging.params.probability"),
    Case("unknown payload format", scenario({"federation": {"payload": "int4"}}), "federation.payload: expected one of"),
    Case("mixed payload without bits", scenario({"federation": {"payload": "mixed"}}), "federation.bits: expected [w_bits, a_bits]"),
    Case("bits for a fixed-bits payload", scenario({"federation": {"payload": "w4a4", "bits": CNN3_BITS}}), "federation.bits: expected no per-layer bits"),
    Case("bits and bits_from both", scenario({"federation": {"payload": "mixed", "bits": CNN3_BITS, "bits_from": "c"}}), "federation.bits_from: expected bits or bits_from"),
    Case("bit-width not 1, 2, 4 or 8", scenario({"federation": {"payload": "mixed", "bits": {**CNN3_BITS, "conv2": [3, 4]}}}), "federation.bits.conv2.0: expected one of 1, 2, 4, 8, got 3"),
    Case("bits_from folder without bits.json", scenario({"federation": {"payload": "mixed", "bits_from": "nowhere"}}), "federation.bits_from: expected a folder holding bits.json, found no"),
    Case("bits.json not JSON", bits_file('{"conv1": [8, 8],'), "bits.json: line 1, column 18: invalid JSON"),
    Case("bits.json bit-width out of range", bits_file(json.dumps({**CNN3_BITS, "fc2": [16, 8]})), "bits.json: fc2.0: expected one of 1, 2, 4, 8, got 16"),
    Case("battery capacity NaN", scenario({"battery": {"capacity_mah": float("nan"), "modes": MODES}}), "battery.capacity_mah"),
    Case("unknown selection strategy", scenario({"federation": {"selection": {"strategy": "greedy"}}}), "federation.selection.strategy: expected one of 'all', 'random'"),
    Case("random selection without k", scenario({"federation": {"selection": {"strategy": "random"}}}), "federation.selection.k: expected a number of clients per round for strategy random, got none"),
    Case("battery selection without a battery", scenario({"federation": {"selection": {"strategy": "soc_weighted", "k": 2}}}), "federation.selection.strategy: expected a battery: section for strategy soc_weighted"),
    Case("deadline not positive", scenario({"federation": {"deadline_s": 0}}), "federation.deadline_s"),
    Case("unknown straggler option", scenario({"federation": {"stragglers": "wait"}}), "federation.stragglers: expected one of 'drop', 'late'"),
    Case("unknown link", scenario({"federation": {"link": "wifi"}}), "federation.link: expected one of 'ble_1m'"),
    Case("battery capacity list with 0", scenario({"battery": {"capacity_mah": 100, "modes": MODES, "capacities_mah": [100, 0]}}), "battery.capacities_mah: expected capacities > 0 mAh, got 0"),
    Case("unknown device profile", scenario({"battery": {"capacity_mah": 100, "modes": MODES, "profiles": ["stm32l496zg", "nope"]}}), "battery.profiles.1: unknown MCU profile 'nope'"),
    Case("sweep of windows and strategies both", scenario({"sweep": {"window": [50], "selection": [{"strategy": "all"}]}}), "sweep.window: expected either window (window lengths) or selection (strategies), got both"),
    Case("sweep deadline without strategies", scenario({"sweep": {"window": [50], "deadline_s": [10]}}), "sweep.deadline_s: expected it with selection, got it without"),
    Case("sweep deadline not positive", scenario({"sweep": {"selection": [{"strategy": "all"}], "deadline_s": [None, -5]}}), "sweep.deadline_s: expected deadlines > 0 s or null, got -5"),
    # arguments and the output folder
    Case("--threads 0", scenario({}, "--threads", "0"), "--threads"),
    Case("--out is a regular file", out_is_file, "--out: expected a directory, found a file"),
    Case("--out holds another scenario's results", foreign_results, "--out holds the results of another run"),
    # impossible values, found after loading the data
    Case("window longer than every recording", scenario({"data": {"window": 150, "stride": 50}}), "data.window"),
    Case("class not in the data", scenario({"data": {"classes": ["flying"]}}), "data.classes"),
    Case("user not in the data", scenario({"federation": {"users": ["99"]}}), "federation.users"),
    Case("pool larger than the signal", scenario({"model": {"options": {"pool": 100}}}), "model.options"),
    Case("bits of a layer the model lacks", scenario({"federation": {"payload": "mixed", "bits": {**CNN3_BITS, "conv3": [4, 4]}}}), "federation.bits: expected [w_bits, a_bits] for each conv and dense layer of model cnn3 (conv1, conv2, fc1, fc2), got unknown conv3"),
    Case("bits.json lacks a layer of the model", bits_file(json.dumps({"conv1": [8, 8]})), "bits.json: expected [w_bits, a_bits] for each conv and dense layer of model cnn3 (conv1, conv2, fc1, fc2), got missing conv2, fc1, fc2"),
    Case("more folds than users", scenario({"split": {"method": "kfold", "k": 5}}), "split.k"),
    Case("unknown data option", scenario({"data": {"options": {"bogus": 1}}}), "data.options.bogus"),
    Case("unknown model option", scenario({"model": {"options": {"bogus": 1}}}), "model.options.bogus"),
    Case("found model without kernels", scenario({"model": {"name": "nas", "options": {"filters": [4]}}}), "model.options.kernels: expected a list"),
    Case("found model: filters and kernels disagree", scenario({"model": {"name": "nas", "options": {"kernels": [5, 3], "filters": [4]}}}), "model.options.filters: expected 2 entries"),
    Case("found model keeps a channel the data lacks", scenario({"model": {"name": "nas", "options": {"kernels": [5], "filters": [4], "sensors": ["acc_x", "gyro_x"]}}}), "model.options.sensors: expected channels of the data (acc_x, acc_y, acc_z), got gyro_x"),
    Case("one user only", scenario({"data": {"options": {"n_users": 1}}}), "s.yaml: data:"),
    # data files that cannot be read or decoded
    Case("dataset folder empty", lambda r: ["data", "info", "--dataset", "wisdm2019", "--data-dir", str(r)], "not found"),
    Case("truncated gzip", wisdm2019_file(RAW + ".gz", GOOD_GZ[: len(GOOD_GZ) // 2]), RAW + ".gz: expected gzip-compressed"),
    Case("text under a .gz name", wisdm2019_file(RAW + ".gz", RECORD), RAW + ".gz: expected gzip-compressed"),
    Case("PNG under a data file's name", wisdm2019_file(RAW, PNG), RAW + ": expected WISDM 2019 raw"),
    Case("directory under a data file's name", wisdm2019_file(RAW, None), RAW + ": expected WISDM 2019 raw accelerometer records (text), found a directory"),
    Case("truncated .tar.gz", wisdm_v11_file("WISDM_ar_latest.tar.gz", _tar_gz("WISDM_ar_v1.1/WISDM_ar_v1.1_raw.txt", V11)[:60]), "WISDM_ar_latest.tar.gz"),
    Case("archive without its member", wisdm_v11_file("WISDM_ar_latest.tar.gz", _tar_gz("other.txt", V11)), "expected an archive member"),
    Case("binary labels file", hapt_labels(bytes(range(256)) * 4), "labels.txt: expected HAPT label rows"),
    # the other sub-commands
    Case("estimate: unknown MCU profile", lambda r: ["estimate", "--mcu", "nope"], "nope"),
    Case("estimate: bad argument", lambda r: ["estimate", "--batch", "many"], "--batch"),
    Case("estimate: found model without options", lambda r: ["estimate", "--model", "nas"], "--model nas needs --model-options: kernels"),
    Case("estimate: bad found-model option", lambda r: ["estimate", "--model", "nas", "--model-options", "{kernels: [5], filters: [4], sensors: [3]}"], "--model-options sensors: expected channel names or indices 0..2"),
    Case("study: file missing", lambda r: ["study", str(r / "none.yaml"), "--out", str(r / "out")], "none.yaml"),
    Case("adaptive: file missing", lambda r: ["adaptive", str(r / "none.yaml"), "--out", str(r / "out")], "none.yaml"),
    Case("adaptive: unknown learning-rate schedule", adaptive_scenario({"schedule": "step"}), "s.yaml: adaptive.schedule"),
    Case("adaptive: grid channel value not a power of two", adaptive_scenario({"grid_channel_values": [4, 6]}), "s.yaml: adaptive.grid_channel_values"),
    Case("adaptive: replication factor 0", adaptive_scenario({"replicate": {"activity": "sitting", "factors": [1, 0]}}), "s.yaml: adaptive.replicate.factors"),
    Case("adaptive: replicated class not in the data", adaptive_scenario({"replicate": {"activity": "laying"}}), "s.yaml: adaptive.replicate.activity: expected one of the classes"),
    Case("adaptive: the range pool with the gain rule", adaptive_scenario({"large_pool": "range"}), "s.yaml: adaptive.large_pool: expected front with large_choice gain"),
    Case("adaptive: a seed given twice", lambda r: [*adaptive_scenario({})(r), "--seeds", "1", "1"], "--seeds: expected distinct seeds, got [1, 1]"),
    Case("adaptive: a negative seed", lambda r: [*adaptive_scenario({})(r), "--seeds", "-3"], "--seeds: expected a non-negative integer seed, got '-3'"),
    Case("compress: a bit-width of 3", compress_scenario({"bits": [8, 3]}), "s.yaml: compress.bits"),
    Case("compress: a grid channel count not a power of two", compress_scenario({"grid": {"channels": [[4, 6, 8]]}}), "compress.grid.channels.0"),
    Case("compress: unknown post-training format", compress_scenario({"ptq": ["int4"]}), "compress.ptq"),
    Case("compress: an unknown prune base", compress_scenario({"prune": {"bases": ["resnet"]}}), "s.yaml: compress.prune.bases.0: expected one of cnn"),
    Case("compress: a negative prune beta", compress_scenario({"prune": {"betas": [[0.1, -1.0]]}}), "compress.prune.betas.0"),
    Case("compress: prune with a quantization grid", compress_scenario({"prune": {}, "grid": {"channels": [[4, 8]]}}), "compress.grid: expected unset with prune"),
    Case("compress: a test user without windows", compress_scenario({"split": "users", "test_users": ["9"], "prune": {}}), "compress.test_users: users ['9'] have no windows"),
    Case("compress: file missing", lambda r: ["compress", str(r / "none.yaml"), "--out", str(r / "out")], "none.yaml"),
    Case("export: run folder missing", lambda r: ["export", str(r / "none"), "--user", "1", "--out", str(r / "out")], "none"),
]  # fmt: skip


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, by relative path, with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def run_case(case: Case, root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Runs ``case`` under ``root`` with a prior output in ``root/out``; returns the exit code
    and stderr, and checks that the prior output is unchanged."""
    out = root / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "keep.txt").write_text("a result of mine\n")
    argv = case.setup(root)
    before = snapshot(out)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert snapshot(out) == before, f"{case.name}: the prior output changed"
    return code, err


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDHAR_CACHE_DIR", str(tmp_path / "cache"))
    code, err = run_case(case, tmp_path, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert code == 2, err
    assert len(lines) == 1, err
    assert case.names in lines[0], lines[0]


def test_the_table_covers_every_class() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


_BAD_VALUES = st.sampled_from(
    [float("nan"), float("inf"), float("-inf"), -1, 0, "x", [], {}, None, True, 10**12]
)
_KEYS = st.sampled_from(
    [
        ("pretrain", "lr"),
        ("pretrain", "epochs"),
        ("personalization", "lr"),
        ("personalization", "momentum"),
        ("data", "train_fraction"),
        ("data", "window"),
        ("split", "k"),
        ("federation", "rounds"),
        ("mcu", "profile"),
    ]
)


def _rejected(section: str, key: str, value: object) -> bool:
    """Whether ``value`` is invalid at ``section.key`` (some generated values are valid)."""
    probe = _merge(BASE, {section: {key: value}})
    from fedhar.schema.base import SchemaError, validate_model
    from fedhar.schema.scenario import Scenario

    try:
        validate_model(probe, Scenario, "probe")
    except SchemaError:
        return True
    return False


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=_KEYS, value=_BAD_VALUES)
def test_generated_bad_scenarios(
    key: tuple[str, str], value: object, tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    if not _rejected(*key, value):
        return
    root = tmp_path_factory.mktemp("gen")
    case = Case("generated", scenario({key[0]: {key[1]: value}}), f"{key[0]}.{key[1]}")
    code, err = run_case(case, root, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert case.names in lines[0]


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(min_value=0, max_value=len(GOOD_GZ) - 1), junk=st.binary(max_size=64))
def test_corrupted_data_files(
    cut: int, junk: bytes, tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    root = tmp_path_factory.mktemp("corrupt")
    content = GOOD_GZ[:cut] + (b"\x00" + junk if junk else b"")
    case = Case("corrupted", wisdm2019_file(RAW + ".gz", content), RAW + ".gz")
    code, err = run_case(case, root, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert case.names in lines[0]
