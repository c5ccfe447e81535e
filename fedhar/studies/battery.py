"""Battery-policy studies: a grid of personalization policy × threshold policy × battery
capacity × charging habit, each configuration a simulated device living ``days`` days of
one-day federation rounds.

Without a ``replay:`` section, F1 and the easy share of each row come from the modes tables
(``accuracy_source: "modes_table"``). With one, every configuration runs once per replayed
user: the device replays that user's real test windows along the section's daily schedule
through the real adaptive classifier (general model, then the personalized one), and F1 and
the easy share are measured (``accuracy_source: "replay"``; see
:mod:`fedhar.studies.replay_data`).

``run_study`` writes into ``DIR``:

- ``rows.jsonl``: a journal (:class:`fedhar.results.journal.Journal`) of one finished
  configuration per line, appended as it finishes; resume reads it and skips what is done, and
  refuses a journal of another scenario. ``traces/`` holds each configuration's state of
  charge;
- ``study.json`` and ``study.csv``: one row per configuration, and a per-policy summary;
- ``soc.png``, ``pareto.png``, ``energy.png`` and ``report.html`` (see
  :mod:`fedhar.studies.battery_report`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from fedhar.files import atomic_open, write_atomic
from fedhar.metrics import score
from fedhar.results.journal import Journal, identity_sha256
from fedhar.schema.base import SchemaError, load_yaml_model
from fedhar.schema.study import StudyScenario
from fedhar.studies.battery_grid import GridPoint, StudyRow, grid
from fedhar.studies.battery_report import write_plots_and_report
from fedhar.studies.replay_data import (
    UserReplay,
    check_adaptive_dir,
    load_user_replays,
    resolve_adaptive_dir,
)
from fedhar.wearable.build import build_wearable_config, device_costs
from fedhar.wearable.loads import LOADS
from fedhar.wearable.simulation import Wearable

ROWS_FILE = "rows.jsonl"


def replay_modes_csv(
    scenario: StudyScenario, base_dir: Path, adaptive_dir: str | None
) -> Path | None:
    """With a ``replay:`` section, the adaptive run's ``modes.csv`` (the general modes table
    when ``battery.modes`` names none); ``None`` without one. Raises ``ValueError`` naming the
    missing file and the fix."""
    if scenario.replay is None:
        return None
    directory = resolve_adaptive_dir(scenario.replay, base_dir, adaptive_dir)
    check_adaptive_dir(directory)
    return directory / "modes.csv"


def load_study_scenario(path: str | Path, adaptive_dir: str | None = None) -> StudyScenario:
    """Reads and validates a study scenario (:class:`fedhar.schema.study.StudyScenario`), then
    checks that its device can be built: the files it names (parts, modes table, the adaptive
    run of a ``replay:`` section) exist and parse. ``adaptive_dir`` overrides the ``replay:``
    section's ``adaptive_dir``.

    Raises:
        SchemaError: every problem of the file, one line each.
    """
    path = Path(path)
    scenario = load_yaml_model(path, StudyScenario)
    study = scenario.study
    try:
        build_wearable_config(
            scenario.battery,
            path.parent,
            capacity_mah=study.capacity_mah[0],
            charging=next(iter(study.charging.values())),
            personalization=next(iter(study.personalization.values())),
            threshold=next(iter(study.threshold.values())),
            seed=study.seed,
            modes_csv=replay_modes_csv(scenario, path.parent, adaptive_dir),
        )
    except OSError as exc:
        raise SchemaError(
            [f"{path}: battery: cannot read {exc.filename}: {exc.strerror}"]
        ) from None
    except ValueError as exc:
        raise SchemaError([f"{path}: {exc}"]) from None
    return scenario


def measured_f1(confusion: np.ndarray) -> float | None:
    """Macro F1 (:func:`fedhar.metrics.score`) of the windows counted in a ``[K, K]``
    (true, predicted) confusion; ``None`` when it counts none."""
    k = confusion.shape[0]
    counts = confusion.ravel()
    if counts.sum() == 0:
        return None
    cells = np.repeat(np.arange(k * k), counts)
    return score(cells // k, cells % k, k).macro_f1


def finite_or_none(value: float) -> float | None:
    """``value``, or None when it is NaN or infinite (JSON has neither)."""
    return value if np.isfinite(value) else None


def device_fields(device: Wearable, days: int, round_s: float, measured: bool) -> dict:
    """A simulated device's :class:`StudyRow` figures after ``days`` rounds of ``round_s``
    s: battery life, dead time, F1 (``measured``: macro F1 of its replayed windows; else the
    modes table's, averaged over windows), easy share, energy and jobs."""
    st, totals = device.state, device.state.totals
    n = totals.inferences
    if measured:
        mean_f1 = measured_f1(np.array(totals.confusion))
    else:
        mean_f1 = totals.f1_sum / n if n else None
    dead = totals.dead_s / (days * round_s)
    socs = [s for _, s in st.trace] + [device.battery.soc]
    return {
        "days": days,
        "days_to_first_depletion": (
            None if st.first_depletion_s is None else st.first_depletion_s / round_s
        ),
        "fraction_time_dead": dead,
        "mean_f1": mean_f1,
        "f1_effective": None if mean_f1 is None else mean_f1 * (1.0 - dead),
        "easy_share": totals.easy / n if n else None,
        "energy_j": dict(totals.energy_j),
        "charged_j": totals.charged_j,
        "full_jobs": totals.full_jobs,
        "tl_jobs": totals.tl_jobs,
        "epochs_lost": totals.epochs_lost,
        "depletions": totals.depletions,
        "soc_min": min(socs),
        "soc_end": socs[-1],
    }


def run_point(
    scenario: StudyScenario,
    base_dir: Path,
    point: GridPoint,
    replay: UserReplay | None = None,
    modes_csv: Path | None = None,
) -> tuple[StudyRow, list[list[float]]]:
    """Simulates one configuration, replaying ``replay``'s windows when given (``modes_csv``:
    the general modes table when the scenario names none); returns its row and its
    ``[t_s, soc]`` trace."""
    study = scenario.study
    config = build_wearable_config(
        scenario.battery,
        base_dir,
        capacity_mah=point.capacity_mah,
        charging=study.charging[point.charging],
        personalization=study.personalization[point.personalization],
        threshold=study.threshold[point.threshold],
        seed=study.seed,
        modes_csv=modes_csv,
    )
    device = Wearable(config, replay=None if replay is None else replay.replay)
    reports = [device.advance(day * study.round_s) for day in range(1, study.days + 1)]
    fields = device_fields(device, study.days, study.round_s, measured=replay is not None)
    row = StudyRow(
        key=point.key,
        policy=point.policy,
        personalization=point.personalization,
        threshold=point.threshold,
        capacity_mah=point.capacity_mah,
        charging=point.charging,
        **fields,
    )
    if replay is not None:
        row.accuracy_source = "replay"
        row.user = replay.user
        row.replay_models = dict(replay.models)
        row.f1_by_day = [finite_or_none(r.f1) for r in reports]
        row.easy_share_by_day = [finite_or_none(r.easy_share) for r in reports]
    return row, device.state.trace


def summarize(rows: list[StudyRow]) -> dict[str, object]:
    """Per-policy means over the grid, and the winners on F1 and on battery life.

    Battery life per row is the days to the first cut-off, or the whole study (censored)
    when there was none.
    """
    by_policy: dict[str, list[StudyRow]] = {}
    for row in rows:
        by_policy.setdefault(row.policy, []).append(row)
    policies = {}
    for policy, group in by_policy.items():
        f1s = [r.mean_f1 for r in group if r.mean_f1 is not None]
        eff = [r.f1_effective for r in group if r.f1_effective is not None]
        life = [
            r.days if r.days_to_first_depletion is None else r.days_to_first_depletion
            for r in group
        ]
        policies[policy] = {
            "configs": len(group),
            "mean_f1": sum(f1s) / len(f1s) if f1s else None,
            "f1_effective": sum(eff) / len(eff) if eff else None,
            "battery_life_days": sum(life) / len(life),
            "fraction_time_dead": sum(r.fraction_time_dead for r in group) / len(group),
            "never_depleted": sum(r.days_to_first_depletion is None for r in group),
            "energy_j_per_day": {
                load: sum(r.energy_j[load] / r.days for r in group) / len(group) for load in LOADS
            },
            "full_jobs": sum(r.full_jobs for r in group) / len(group),
            "tl_jobs": sum(r.tl_jobs for r in group) / len(group),
        }
    summary: dict[str, object] = {"policies": policies}
    if len(policies) < 2:
        return summary
    for metric in ("mean_f1", "f1_effective"):
        ranked = sorted(policies, key=lambda p, m=metric: -(policies[p][m] or 0.0))
        best, second = ranked[:2]
        summary[f"{metric}_winner"] = {
            "policy": best,
            metric: policies[best][metric],
            "runner_up": second,
            "margin": (policies[best][metric] or 0.0) - (policies[second][metric] or 0.0),
        }
    personalizing = [p for p in policies if policies[p]["full_jobs"] + policies[p]["tl_jobs"] > 0]
    for name, pool in (
        ("battery_winner", list(policies)),
        ("battery_winner_personalizing", personalizing),
    ):
        if len(pool) < 2:
            continue
        ranked = sorted(
            pool,
            key=lambda p: (policies[p]["fraction_time_dead"], -policies[p]["battery_life_days"]),
        )
        best, second = ranked[:2]
        summary[name] = {
            "policy": best,
            "battery_life_days": policies[best]["battery_life_days"],
            "fraction_time_dead": policies[best]["fraction_time_dead"],
            "runner_up": second,
            "life_margin_days": policies[best]["battery_life_days"]
            - policies[second]["battery_life_days"],
            "dead_margin": policies[second]["fraction_time_dead"]
            - policies[best]["fraction_time_dead"],
        }
    return summary


def winner_lines(summary: dict[str, object]) -> list[str]:
    """The winners on F1 and on battery life, and by how much, as sentences."""
    lines = []
    for metric, label in (("mean_f1", "mean F1"), ("f1_effective", "effective F1")):
        w = summary.get(f"{metric}_winner")
        if isinstance(w, dict):
            lines.append(
                f"{label}: {w['policy']} wins with {w[metric]:.4f}, "
                f"{w['margin']:+.4f} over {w['runner_up']}"
            )
    for key, label in (
        ("battery_winner", "battery life"),
        ("battery_winner_personalizing", "battery life among personalizing policies"),
    ):
        w = summary.get(key)
        if isinstance(w, dict):
            lines.append(
                f"{label}: {w['policy']} wins: dead {w['fraction_time_dead']:.2%} of the time, "
                f"mean life {w['battery_life_days']:.1f} days ({w['life_margin_days']:+.1f} days "
                f"and {w['dead_margin']:.2%} less dead time than {w['runner_up']})"
            )
    return lines


CSV_COLUMNS = [
    "key",
    "policy",
    "personalization",
    "threshold",
    "capacity_mah",
    "charging",
    "days",
    "days_to_first_depletion",
    "fraction_time_dead",
    "mean_f1",
    "f1_effective",
    "easy_share",
    *[f"energy_j_{load}" for load in LOADS],
    "charged_j",
    "full_jobs",
    "tl_jobs",
    "epochs_lost",
    "depletions",
    "soc_min",
    "soc_end",
    "accuracy_source",
    "user",
]


def write_csv(rows: list[StudyRow], path: Path) -> None:
    """One line per configuration; energy by load as ``energy_j_<load>`` columns."""
    with atomic_open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            flat = asdict(row)
            energy = flat.pop("energy_j")
            for key in ("replay_models", "f1_by_day", "easy_share_by_day"):
                flat.pop(key)
            flat.update({f"energy_j_{load}": energy[load] for load in LOADS})
            writer.writerow({k: "" if v is None else v for k, v in flat.items()})


def study_identity(scenario: StudyScenario, adaptive_dir: Path | None) -> dict[str, object]:
    """What a resumed ``rows.jsonl`` must have been written for: the sha256 of the validated
    scenario, its seed and the adaptive run whose models it replays (None without one)."""
    return {
        "scenario_sha256": identity_sha256(scenario.model_dump(mode="json")),
        "seed": scenario.study.seed,
        "adaptive_dir": None if adaptive_dir is None else str(adaptive_dir.resolve()),
    }


def _trace_file(out: Path, index: int) -> Path:
    return out / "traces" / f"{index:04d}.json"


def run_study(
    scenario_path: str | Path,
    out: str | Path,
    resume: bool = False,
    log: Callable[[str], None] = print,
    adaptive_dir: str | None = None,
    data_dir: str | None = None,
) -> dict[str, object]:
    """Runs (or resumes) the study and writes every output file; returns ``study.json``'s
    content. ``adaptive_dir`` and ``data_dir`` override the ``replay:`` section's (the data
    directory is not part of the study's identity: the same data may sit elsewhere). Raises
    :class:`SchemaError` on an invalid scenario (or missing adaptive models) and
    :class:`~fedhar.results.journal.JournalError` when ``out`` holds an earlier study and
    ``resume`` is off, or one of another scenario."""
    scenario_path = Path(scenario_path)
    scenario = load_study_scenario(scenario_path, adaptive_dir)
    base_dir = scenario_path.parent
    replays: dict[str, UserReplay] = {}
    directory = modes_csv = None
    if scenario.replay is not None:
        try:
            directory = resolve_adaptive_dir(scenario.replay, base_dir, adaptive_dir)
            section = scenario.replay
            if data_dir is not None:
                section = section.model_copy(update={"data_dir": data_dir})
            replays = {r.user: r for r in load_user_replays(section, base_dir, directory)}
        except ValueError as exc:
            raise SchemaError([f"{scenario_path}: {exc}"]) from None
        modes_csv = directory / "modes.csv"
        for r in replays.values():
            log(f"replay: user {r.user}, {r.n_windows} test windows, models {r.models}")
    out = Path(out)
    journal = Journal(out / ROWS_FILE, study_identity(scenario, directory), resume=resume)
    (out / "traces").mkdir(parents=True, exist_ok=True)
    done = {r["key"]: StudyRow(**r) for r in journal.rows}
    points = grid(scenario.study, list(replays) or None)
    for index, point in enumerate(points):
        if point.key in done and _trace_file(out, index).exists():
            continue
        replay = None if point.user is None else replays[point.user]
        row, trace = run_point(scenario, base_dir, point, replay, modes_csv)
        write_atomic(_trace_file(out, index), json.dumps(trace))
        journal.append(asdict(row))
        done[row.key] = row
        log(f"[{index + 1}/{len(points)}] {point.key}: {_brief(row)}")
    rows = [done[p.key] for p in points]
    traces = [json.loads(_trace_file(out, i).read_text()) for i in range(len(points))]
    costs, _ = device_costs(scenario.battery, base_dir, modes_csv)
    result = {
        "scenario": str(scenario_path),
        "description": scenario.description,
        "cost_sources": dict(costs.sources),
        "rows": [asdict(r) for r in rows],
        "summary": summarize(rows),
    }
    write_atomic(out / "study.json", json.dumps(result, indent=2, allow_nan=False) + "\n")
    write_csv(rows, out / "study.csv")
    summary = result["summary"]
    write_plots_and_report(
        scenario, points, rows, traces, summary, winner_lines(summary), out, costs.sources
    )
    return result


def _brief(row: StudyRow) -> str:
    life = (
        f"first cut-off day {row.days_to_first_depletion:.1f}"
        if row.days_to_first_depletion is not None
        else "never cut off"
    )
    f1 = "n/a" if row.mean_f1 is None else f"{row.mean_f1:.3f}"
    return f"F1 {f1}, {life}, dead {row.fraction_time_dead:.1%}"
