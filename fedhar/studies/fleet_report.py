"""Figures, ``users.csv`` and ``report.html`` of a fleet study (with
:mod:`fedhar.studies.battery_report`'s state-of-charge, Pareto and energy plots)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from fedhar.files import write_atomic
from fedhar.results.figures import plt, save_figure
from fedhar.results.html import heading, image, paragraph, table, write_page
from fedhar.schema.fleet import FleetScenario
from fedhar.studies.battery_report import plot_energy, plot_pareto, plot_soc, policy_table

USERS_COLUMNS = [
    "user",
    "policy",
    "configs",
    "mean_f1",
    "f1_effective",
    "f1_general",
    "f1_final",
    "harmed_configs",
    "jobs",
    "rejected_jobs",
]


def write_users_csv(users_table: Sequence[Mapping[str, object]], path: Path) -> None:
    """One line per user and policy (means over capacities and charging habits)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=USERS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in users_table:
        writer.writerow({k: "" if row[k] is None else row[k] for k in USERS_COLUMNS})
    write_atomic(path, buf.getvalue())


def plot_f1_days(
    rows: Sequence[Mapping[str, object]],
    users: Sequence[str],
    capacity_mah: float,
    charging: str,
    threshold: str,
    path: Path,
) -> None:
    """Measured F1 of each day's windows, one panel per user, one line per personalization
    policy (solid: guard off, dashed: guard on), at one capacity, habit and threshold policy."""
    n = max(1, len(users))
    cols = min(3, n)
    nrows = (n + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 2.8 * nrows + 0.9), squeeze=False)
    colors: dict[str, str] = {}
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, user in zip(axes.ravel(), users, strict=False):
        for r in rows:
            if (r["user"], r["capacity_mah"], r["charging"], r["threshold"]) != (
                user,
                capacity_mah,
                charging,
                threshold,
            ):
                continue
            p = str(r["personalization"])
            color = colors.setdefault(p, palette[len(colors) % len(palette)])
            f1 = [float("nan") if v is None else v for v in r["f1_by_day"]]  # type: ignore[union-attr]
            ax.plot(
                range(1, len(f1) + 1),
                f1,
                color=color,
                ls="--" if r["guard"] else "-",
                lw=1.1,
                label=f"{p}{' + guard' if r['guard'] else ''}",
            )
        ax.set_title(f"user {user}", fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("day", fontsize=8)
        ax.set_ylabel("F1 of the day", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(5, max(1, len(labels))), fontsize=7)
    fig.suptitle(
        f"Measured F1 over days ({capacity_mah:g} mAh, charging: {charging}, threshold: "
        f"{threshold})",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    save_figure(fig, path)


def write_fleet_report(
    scenario: FleetScenario,
    points: Sequence[object],
    result: Mapping[str, object],
    traces: Sequence[list[list[float]]],
    winner_lines: Sequence[str],
    memo: Mapping[str, int],
    out: Path,
) -> None:
    """Writes ``users.csv``, ``f1_days.png``, ``soc.png``, ``pareto.png``, ``energy.png`` and
    ``report.html`` into ``out``."""
    study = scenario.study
    rows: list[Mapping[str, object]] = result["rows"]  # type: ignore[assignment]
    summary: dict = result["summary"]  # type: ignore[assignment]
    users: list[str] = result["users"]  # type: ignore[assignment]
    capacity = study.plot_capacity_mah or study.capacity_mah[0]
    charging = study.plot_charging or next(iter(study.charging))
    threshold = next(iter(study.threshold))
    write_users_csv(result["users_table"], out / "users.csv")  # type: ignore[arg-type]
    plot_f1_days(
        rows, users[: study.plot_users], capacity, charging, threshold, out / "f1_days.png"
    )
    plot_soc(points, traces, capacity, charging, study.round_s, out / "soc.png")  # type: ignore[arg-type]
    plot_pareto(summary, out / "pareto.png")
    plot_energy(summary, out / "energy.png")

    policies = summary["policies"]
    harm: Mapping[str, Mapping[str, object]] = result["harm"]  # type: ignore[assignment]
    policy_header, policy_rows = policy_table(
        policies,
        ("harmed users", "harmed configs"),
        lambda name: [
            len(harm[name]["harmed_users"]),  # type: ignore[arg-type]
            f"{harm[name]['harmed_configs']} / {harm[name]['configs']}",
        ],
    )
    users_header = ["user", "policy", "mean_f1", "f1_general", "f1_final", "harmed", "jobs"]
    users_rows = [
        [
            u["user"],
            u["policy"],
            u["mean_f1"],
            u["f1_general"],
            u["f1_final"],
            f"{u['harmed_configs']} / {u['configs']}",
            f"{u['jobs']} ({u['rejected_jobs']} rejected)",
        ]
        for u in result["users_table"]  # type: ignore[union-attr]
    ]
    device: Mapping[str, int] = result["device"]  # type: ignore[assignment]
    fl = scenario.fleet
    parts = [
        paragraph(scenario.description),
        paragraph(
            f"{len(users)} users, {len(rows)} configurations, {study.days} days each. Accuracy "
            "source: measured. Every F1 and easy share is the device's own: its user's held-out "
            "TS_i windows, replayed along the daily schedule, classified by the adaptive model "
            "the device holds at the threshold its policy chose."
        ),
        paragraph(
            f"Data arrives as sensed: one labelled window every {fl.label_every_s:g} s. Jobs "
            f"({fl.job.epochs} epochs, C library, both widths) train on the windows stored so far; "
            f"with the guard, every {fl.holdout_every}th stored window is held out and a job's "
            "model is deployed only if it beats the deployed one there. Harmed: the model held "
            "at the end scores below the general model on all of TS_i."
        ),
        paragraph(
            f"Costs: counted operations priced by MCU profile {fl.profile}. A Full job's arenas "
            f"need {device['full']} B of SRAM, a TL job's {device['tl']} B; the two-width model "
            f"is {device['model_bytes']} B. This run trained {memo['jobs_trained']} epochs and "
            f"answered {memo['jobs_shared']} epoch requests from the shared memo."
        ),
        *(paragraph(f"{line}.") for line in winner_lines),
        heading("Policies (means over users, capacities and charging habits)"),
        table(policy_header, policy_rows, number=".4g"),
    ]
    for title, name in (
        ("Measured F1 over days", "f1_days.png"),
        ("State of charge over time", "soc.png"),
        ("F1 against battery life", "pareto.png"),
        ("Energy by load", "energy.png"),
    ):
        parts += [heading(title), image(out / name, title)]
    parts += [
        heading("Users (means over capacities and charging habits)"),
        table(users_header, users_rows, number=".3f"),
    ]
    write_page(out / "report.html", f"fedhar fleet study: {scenario.name}", parts)
