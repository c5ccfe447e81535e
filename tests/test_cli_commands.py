"""The CLI's own surface: help that never imports the heavy libraries, one name and metavar
for the shared options, ``fedhar scenario``, shipped scenarios by name, ``fedhar compare`` and
log lines that do not break progress bars."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from tqdm import tqdm

from fedhar.cli import COMMANDS, build_parser, main
from fedhar.commands.scenario import KIND_NAMES
from fedhar.progress import say
from fedhar.schema.kinds import KINDS
from fedhar.schema.shipped import resolve_scenario, shipped_scenarios

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "flwr", "matplotlib", "scipy", "sklearn")
PROBE = """\
import sys
from fedhar.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(",".join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""
TINY = (REPO / "tests" / "test_cli_run.py").read_text().split('TINY = """\\\n')[1].split('"""')[0]


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], ["data", "info", "--help"], ["scenario", "validate", "--help"]]
    + [[name, "--help"] for name in COMMANDS],
    ids=" ".join,
)
def test_help_imports_no_heavy_library(argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "usage: fedhar" in proc.stdout or "fedhar " in proc.stdout
    assert proc.stderr.strip().splitlines()[-1:] in ([], [""]), proc.stderr


def _options(parser: argparse.ArgumentParser, path: str = "fedhar") -> dict[str, argparse.Action]:
    """Every option of every (sub-)parser, keyed ``"<command path> <option>"``."""
    found: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= _options(sub, f"{path} {name}")
        for option in action.option_strings:
            found[f"{path} {option}"] = action
    return found


def test_shared_options_have_one_metavar() -> None:
    options = _options(build_parser())
    for key, action in options.items():
        if key.endswith((" --out", " --data-dir", " --adaptive-dir")):
            assert action.metavar == "DIR", key
        if key.endswith((" --jobs", " --threads")):
            assert action.metavar == "N", key
    readers = {k.rsplit(" ", 1)[0] for k in options if k.endswith(" --data-dir")}
    assert readers == {
        "fedhar run", "fedhar adaptive", "fedhar compress", "fedhar study", "fedhar export",
        "fedhar data info",
    }  # fmt: skip


def test_scenario_validate_ok_and_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "validate", "quickstart"]) == 0
    assert capsys.readouterr().out == "ok: quickstart (run)\n"
    assert main(["scenario", "validate", str(REPO / "scenarios" / "fleet_wisdm2019.yaml")]) == 0
    assert capsys.readouterr().out.startswith("ok: ")
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "scenarios" / "quickstart.yaml").read_text() + "\nwindw: 3\n")
    before = bad.read_bytes()
    assert main(["scenario", "validate", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert str(bad) in captured.err and "windw" in captured.err
    assert bad.read_bytes() == before


def test_scenario_schema_of_every_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert set(KIND_NAMES) == set(KINDS)
    for kind in KIND_NAMES:
        assert main(["scenario", "schema", "--kind", kind]) == 0
        schema = json.loads(capsys.readouterr().out)
        assert schema["type"] == "object" and schema["properties"]
    assert main(["scenario", "schema"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert {"name", "data", "federation"} <= set(run["properties"]) and "name" in run["required"]


def test_shipped_scenarios_satisfy_their_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    from fedhar.schema.kinds import json_schema, kind_of

    for name, path in shipped_scenarios().items():
        raw = _numbers(yaml.safe_load(path.read_text()))
        validator = jsonschema.Draft202012Validator(json_schema(kind_of(raw)))
        errors = [e.message for e in validator.iter_errors(raw)]
        assert not errors, (name, errors)
    wrong = {"name": "x", "data": {"dataset": "nope"}}
    assert list(jsonschema.Draft202012Validator(json_schema("run")).iter_errors(wrong))


def test_shipped_scenarios_listed_and_taken_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stems = sorted(p.stem for p in (REPO / "scenarios").glob("*.yaml"))
    assert sorted(shipped_scenarios()) == stems
    proc = subprocess.run(
        [sys.executable, "-m", "fedhar.cli", "run", "--list-scenarios"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert [line.split()[0] for line in proc.stdout.splitlines()] == stems
    shipped = Path(resolve_scenario("quickstart"))
    assert shipped.read_bytes() == (REPO / "scenarios" / "quickstart.yaml").read_bytes()
    assert resolve_scenario("quickstart.yaml") == str(shipped)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart").write_text("name: mine\n")
    assert resolve_scenario("quickstart") == "quickstart"  # a file of that name comes first
    assert resolve_scenario("no_such_scenario") == "no_such_scenario"


def _numbers(value: object) -> object:
    """``value`` with every number that YAML 1.1 reads as text (``205.1e6``) made a number, as
    fedhar reads it; the JSON Schema, stricter, wants numbers."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, str) and any(c.isdigit() for c in value):
        try:
            return float(value)
        except ValueError:
            return value
    return value


@pytest.mark.slow
def test_wheel_ships_scenarios_and_license(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("fedhar-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(Path(n).stem for n in names if n.startswith("fedhar/scenarios/"))
    assert shipped == sorted(p.stem for p in (REPO / "scenarios").glob("*.yaml"))
    assert any(n.endswith("licenses/LICENSE") or n.endswith("/LICENSE") for n in names)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two real runs of a tiny synthetic scenario (seeds 1 and 2), CI-style (no bars)."""
    root = tmp_path_factory.mktemp("runs")
    env_patch = pytest.MonkeyPatch()
    env_patch.setenv("FEDHAR_CACHE_DIR", str(root / "cache"))
    env_patch.setenv("CI", "1")
    runs = []
    for seed in (1, 2):
        scenario = root / f"tiny{seed}.yaml"
        scenario.write_text(TINY.replace("seed: 1", f"seed: {seed}"))
        out = root / f"seed{seed}"
        assert main(["run", str(scenario), "--out", str(out), "--jobs", "1"]) == 0
        runs.append(out)
    env_patch.undo()
    return runs


@pytest.mark.slow
def test_compare_real_runs(
    two_runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    assert main(["compare", *map(str, two_runs), "--out", str(out)]) == 0
    rows = (out / "compare.csv").read_text().splitlines()
    assert rows[0].startswith("run,scenario,mode,n_users,f1_mean,f1_min,")
    reports = [json.loads((r / "report.json").read_text()) for r in two_runs]
    expected = [
        (run.name, mode, s["mean"])
        for run, report in zip(two_runs, reports, strict=True)
        for mode, s in report["summary"].items()
    ]
    got = [(c[0], c[2], float(c[4])) for c in (r.split(",") for r in rows[1:])]
    assert sorted(got) == sorted(expected)
    for stem in ("compare_f1",):
        assert (out / f"{stem}.png").stat().st_size > 0 and (out / f"{stem}.svg").is_file()
    from PIL import Image

    dpi = Image.open(out / "compare_f1.png").info["dpi"]
    assert min(dpi) >= 149
    assert "| seed1 |" in (out / "compare.md").read_text()

    # A non-empty DIR is refused without --force; --force replaces only the comparison's files.
    mine = out / "notes.txt"
    mine.write_text("keep")
    before = (out / "compare.csv").read_bytes()
    (out / "compare.csv").write_text("old")
    capsys.readouterr()
    assert main(["compare", str(two_runs[0]), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--force" in err
    assert (out / "compare.csv").read_text() == "old"
    assert main(["compare", *map(str, two_runs), "--out", str(out), "--force"]) == 0
    assert (out / "compare.csv").read_bytes() == before and mine.read_text() == "keep"


def _client(user: str, f1: float, cycles: float) -> dict[str, object]:
    figures = {"f1": f1, "cycles": cycles, "seconds": 1.0, "energy_j": 0.5,
               "memory_bytes": {"total": 2000}}  # fmt: skip
    return {"user": user, "modes": {"none": {"f1": 0.5}, "tl": figures}}


def test_compare_reads_reports_that_keep_every_round(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A report holding each client's rounds is read at the last round, whatever the order
    of the keys; a summary-less report gets its F1 from the clients."""
    run = tmp_path / "rounds"
    run.mkdir()
    clients = []
    for user, last_f1 in (("1", 0.9), ("2", 0.7)):
        first, last = _client(user, 0.1, 1e6), _client(user, last_f1, 3e6)
        clients.append({"user": user, "rounds": [{**last, "last": True}, {**first, "round": 1}]})
    report = {"format": 3, "header": {"scenario": "r"}, "clients": clients}
    (run / "report.json").write_text(json.dumps(report))
    assert main(["compare", str(run), "--out", str(tmp_path / "o")]) == 0
    line = next(r for r in (tmp_path / "o" / "compare.csv").read_text().splitlines()
                if ",tl," in r)  # fmt: skip
    head, gain = line.rsplit(",", 1)
    assert head == "rounds,r,tl,2,0.8,0.7,2000.0,3000000.0,1.0,0.5"
    assert float(gain) == pytest.approx(0.3)  # users' TL minus None: 0.4 and 0.2


def test_compare_users_table_per_user_and_pretraining(tmp_path: Path) -> None:
    """``compare_users``: each user's None/TL/Full F1 per run, their means, and each run's
    pretraining (a report without a ``pretrain`` block was pretrained centrally)."""
    central, fed = tmp_path / "central", tmp_path / "fed"
    totals = {"rounds_run": 60, "mean_rounds_run_per_fold": 30.0, "bytes_down": 2_500_000,
              "bytes_up": 2_000_000}  # fmt: skip
    for run, f1s, block in (
        (central, (0.5, 0.7), None),
        (fed, (0.3, 0.9), {"method": "federated", "totals": totals}),
    ):
        run.mkdir()
        clients = [_client(u, f1, 1e6) for u, f1 in zip(("2", "10"), f1s, strict=True)]
        report = {"header": {"scenario": run.name}, "clients": clients}
        if block is not None:
            report["pretrain"] = block
        (run / "report.json").write_text(json.dumps(report))
    assert main(["compare", str(central), str(fed), "--out", str(tmp_path / "o")]) == 0
    rows = (tmp_path / "o" / "compare_users.csv").read_text().splitlines()
    assert rows == [
        "user,central:none,central:tl,central:full,fed:none,fed:tl,fed:full",
        "2,0.5,0.5,,0.5,0.3,",
        "10,0.5,0.7,,0.5,0.9,",
    ]
    md = (tmp_path / "o" / "compare_users.md").read_text()
    assert "| mean | 0.500 | 0.600 | - | 0.500 | 0.600 | - |" in md
    assert "| central | centralized | - | - | - | - |" in md
    assert "| fed | federated | 60 | 30.0 | 2.5 | 2.0 |" in md


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "no such file"),
        ("{not json", "unreadable"),
        ('{"sweep": [{"window": 20}], "clients": []}', "sweep"),
        ('{"clients": [], "summary": {}}', "found none"),
    ],
)
def test_compare_bad_run_dir_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, says: str
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    if content is not None:
        (run / "report.json").write_text(content)
    assert main(["compare", str(run), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and says in err and str(run) in err
    assert not (tmp_path / "o").exists()


def test_say_clears_the_bar_and_redraws_it(capsys: pytest.CaptureFixture[str]) -> None:
    with tqdm(total=3, desc="clients", file=sys.stderr, disable=False) as bar:
        bar.update()
        capsys.readouterr()
        say("user 1 done")
        captured = capsys.readouterr()
    assert captured.out == "user 1 done\n"
    cleared, _, redrawn = captured.err.rpartition("\r")
    assert cleared and "clients" not in cleared.split("\r")[-1]  # the bar was blanked first
    assert "clients" in redrawn  # and drawn again below the line
