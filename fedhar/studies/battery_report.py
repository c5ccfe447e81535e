"""Plots and the HTML report of a battery-policy study (with :mod:`fedhar.results.figures`
and :mod:`fedhar.results.html`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from fedhar.results.figures import plt, save_figure
from fedhar.results.html import heading, image, paragraph, table, write_page
from fedhar.schema.study import StudyScenario
from fedhar.studies.battery_grid import GridPoint, StudyRow
from fedhar.wearable.loads import LOADS


def plot_soc(
    points: Sequence[GridPoint],
    traces: Sequence[list[list[float]]],
    capacity_mah: float,
    charging: str,
    round_s: float,
    path: Path,
) -> None:
    """State of charge over time, one line per policy, at one capacity and habit (and, when
    real windows are replayed, for the first replayed user)."""
    fig, ax = plt.subplots(figsize=(10, 4.5))
    user = points[0].user if points else None
    for point, trace in zip(points, traces, strict=True):
        if point.capacity_mah != capacity_mah or point.charging != charging or not trace:
            continue
        if point.user != user:
            continue
        t = [s[0] / round_s for s in trace]
        ax.plot(t, [s[1] for s in trace], lw=1.0, label=point.policy)
    ax.set_xlabel("day")
    ax.set_ylabel("state of charge")
    ax.set_ylim(-0.02, 1.02)
    who = "" if user is None else f", user {user}"
    ax.set_title(f"State of charge per policy ({capacity_mah:g} mAh, charging: {charging}{who})")
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    fig.tight_layout()
    save_figure(fig, path)


def plot_pareto(summary: dict, path: Path) -> None:
    """Mean F1 against mean battery life per policy; the Pareto front is joined."""
    policies = summary["policies"]
    names = [p for p in policies if policies[p]["mean_f1"] is not None]
    life = [policies[p]["battery_life_days"] for p in names]
    f1 = [policies[p]["mean_f1"] for p in names]
    front = [
        i
        for i in range(len(names))
        if not any(
            life[j] >= life[i] and f1[j] >= f1[i] and (life[j], f1[j]) != (life[i], f1[i])
            for j in range(len(names))
        )
    ]
    front.sort(key=lambda i: life[i])
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.scatter(life, f1, c="tab:blue")
    ax.plot([life[i] for i in front], [f1[i] for i in front], "r--", lw=1, label="Pareto front")
    for name, x, y in zip(names, life, f1, strict=True):
        ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("battery life: days to first cut-off (study length when none), mean over grid")
    ax.set_ylabel("mean F1 (windows classified)")
    ax.set_title("F1 against battery life")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def plot_energy(summary: dict, path: Path) -> None:
    """Energy per day by load, stacked, per policy (mean over the grid)."""
    policies = summary["policies"]
    names = list(policies)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    bottom = [0.0] * len(names)
    for load in LOADS:
        values = [policies[p]["energy_j_per_day"][load] for p in names]
        ax.bar(names, values, bottom=bottom, label=load)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("energy per day (J)")
    ax.set_title("Energy by load")
    ax.tick_params(axis="x", labelrotation=40, labelsize=7)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def policy_table(
    policies: Mapping[str, Mapping],
    extra_header: Sequence[str] = (),
    extra: Callable[[str], list] = lambda name: [],
) -> tuple[list[str], list[list]]:
    """The header and rows of the per-policy table of a summary, with ``extra`` columns."""
    header = [
        "policy",
        "mean_f1",
        "f1_effective",
        "battery_life_days",
        "fraction_time_dead",
        "never_depleted",
        "full_jobs",
        "tl_jobs",
        "J/day",
        *extra_header,
    ]
    rows = [
        [
            name,
            p["mean_f1"],
            p["f1_effective"],
            p["battery_life_days"],
            p["fraction_time_dead"],
            p["never_depleted"],
            p["full_jobs"],
            p["tl_jobs"],
            sum(p["energy_j_per_day"].values()),
            *extra(name),
        ]
        for name, p in policies.items()
    ]
    return header, rows


def write_plots_and_report(
    scenario: StudyScenario,
    points: Sequence[GridPoint],
    rows: Sequence[StudyRow],
    traces: Sequence[list[list[float]]],
    summary: dict,
    winner_lines: Sequence[str],
    out: Path,
    cost_sources: Mapping[str, str],
) -> None:
    """Writes ``soc.png``, ``pareto.png``, ``energy.png`` and ``report.html`` into ``out``;
    ``cost_sources`` names where each load's cost comes from (the page names the training's)."""
    study = scenario.study
    capacity = study.plot_capacity_mah or study.capacity_mah[0]
    charging = study.plot_charging or next(iter(study.charging))
    plot_soc(points, traces, capacity, charging, study.round_s, out / "soc.png")
    plot_pareto(summary, out / "pareto.png")
    plot_energy(summary, out / "energy.png")

    policy_header, policy_rows = policy_table(summary["policies"])
    row_header = [
        "policy",
        "capacity_mah",
        "charging",
        "days_to_first_depletion",
        "fraction_time_dead",
        "mean_f1",
        "f1_effective",
        *[f"{load} J" for load in LOADS],
        "full_jobs",
        "tl_jobs",
        "epochs_lost",
    ]
    config_rows = [
        [
            r.policy,
            r.capacity_mah,
            r.charging,
            r.days_to_first_depletion,
            r.fraction_time_dead,
            r.mean_f1,
            r.f1_effective,
            *[r.energy_j[load] for load in LOADS],
            r.full_jobs,
            r.tl_jobs,
            r.epochs_lost,
        ]
        for r in rows
    ]
    parts = [
        paragraph(scenario.description),
        paragraph(
            f"{len(rows)} configurations, {study.days} days each (rounds of {study.round_s:g} s)."
        ),
        *(paragraph(f"{line}.") for line in winner_lines),
        paragraph(f"Personalization cost: {cost_sources['training']}."),
        heading("Policies (means over capacity × charging)"),
        table(policy_header, policy_rows, number=".4g"),
    ]
    for title, name in (
        ("State of charge over time", "soc.png"),
        ("F1 against battery life", "pareto.png"),
        ("Energy by load", "energy.png"),
    ):
        parts += [heading(title), image(out / name, title)]
    parts += [heading("All configurations"), table(row_header, config_rows, number=".4g")]
    write_page(out / "report.html", "fedhar battery-policy study", parts)
