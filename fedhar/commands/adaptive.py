"""``fedhar adaptive SCENARIO --out DIR [--resume]``: input-adaptive inference study (Daghero et
al. 2022).

Searches a static grid over the Fig. 4a template, turns the largest-gain model into a
variable-width network with switchable BatchNorm, sweeps the score-margin threshold and writes:
``grid.jsonl`` (each grid model as it is scored; ``--resume`` continues a run of the same
scenario in DIR, a DIR of another scenario is refused; trained networks are cached by content
in the user cache, so no run trains a network twice), ``modes.json``/``modes.csv`` (one row
per Th),
``summary.json`` (with the fronts compared per pricing), ``static_grid.csv``, ``fig11.png``
(static, cascade and variable-width fronts), ``fig12.png`` (with ``adaptive.replicate``),
``cascade_firsts.csv`` and ``cascade_firsts.png`` (with ``adaptive.cascade``: the cascade with
each grid model cheaper than M_l run first, its test saving against its memory),
``model.pt`` (for
``fedhar.adaptive.artifact.load_classifier``) and, per personalized held-out user,
``users/<id>/modes_before.*``, ``modes_after.*`` and its personalized ``model.pt``, with
``personalized.png``.

With ``--seeds K ...``, the study runs once per seed in place of the scenario's, each in
``DIR/seed-K`` with all of the files above, and ``DIR/seeds.json`` gains each seed's acceptance
numbers as it finishes, with their mean, standard deviation and range
(:mod:`fedhar.studies.adaptive_seeds`); under ``split: users``, also against the static front
of the grid models' seed-mean test scores. ``DIR/seeds.png`` draws every seed's fronts.
With ``adaptive.selection: across_seeds``, every seed's grid is trained first, one (M_l,
width) pair is chosen from all the seeds' validation results
(:mod:`fedhar.studies.adaptive_across`), and ``seeds.json`` ``selection`` gives it with every
candidate pair's pooled scores.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fedhar.commands import add_study_arguments

if TYPE_CHECKING:
    from fedhar.schema.adaptive import AdaptiveConfig
    from fedhar.schema.scenario import Scenario
    from fedhar.studies.adaptive import StudyResult

T = TypeVar("T")


def run(args: argparse.Namespace) -> int:
    """Runs the study and writes its files; returns the exit code (2 on bad input)."""
    # Imported here so that `fedhar adaptive --help` does not pay for torch.
    from fedhar.commands import print_error
    from fedhar.data.paths import DatasetMissingError
    from fedhar.files import write_atomic
    from fedhar.progress import say
    from fedhar.results.journal import Journal, JournalError
    from fedhar.schema.adaptive import load_adaptive_scenario
    from fedhar.schema.base import SchemaError
    from fedhar.studies.adaptive import GRID_FILE, grid_identity, run_study, train_grid
    from fedhar.studies.adaptive_across import choose_across, finish_across
    from fedhar.studies.adaptive_seeds import (
        SEEDS_FIGURE,
        SEEDS_FILE,
        against_mean_grid,
        grid_spread,
        plot_seeds,
        seed_row,
        spread,
        table,
    )

    try:
        scenario, cfg = load_adaptive_scenario(args.scenario)
    except SchemaError as exc:
        print_error(exc, "fedhar adaptive: error: ")
        return 2
    if args.seeds is not None and len(set(args.seeds)) < len(args.seeds):
        print_error(ValueError(f"--seeds: expected distinct seeds, got {args.seeds}"),
                    "fedhar adaptive: error: ")  # fmt: skip
        return 2
    out = Path(args.out)
    start = time.monotonic()

    def log(line: str) -> None:
        say(f"[{time.monotonic() - start:6.1f} s] {line}")

    def guarded(seed: int | None, step: Callable[[], T]) -> T | None:
        """``step()``, or None after printing the error of bad input (of seed ``seed``)."""
        try:
            return step()
        except (DatasetMissingError, JournalError, ValueError) as exc:
            # A key of the scenario that only the data can check names the file, as schema
            # errors do.
            named = str(exc).startswith("adaptive.")
            where_seed = f"seed {seed}: " if seed is not None else ""
            print_error(
                ValueError(f"{args.scenario}: {exc}") if named else exc,
                f"fedhar adaptive: error: {where_seed}",
            )
            return None

    def journal(seeded: Scenario, where: Path) -> Callable[[], Journal]:
        identity = grid_identity(seeded, cfg)
        return lambda: Journal(where / GRID_FILE, identity, resume=args.resume)

    def study(seeded: Scenario, where: Path) -> tuple[StudyResult, dict[str, Any]] | None:
        """Runs one study of ``seeded`` and writes its files in ``where``; returns it and its
        summary, or None after printing the error of bad input."""
        seed = seeded.seed if args.seeds is not None else None
        result = guarded(
            seed, lambda: run_study(seeded, cfg, args.data_dir, log, journal(seeded, where))
        )
        return None if result is None else (result, write_study(result, seeded, cfg, where))

    if args.seeds is None:
        done = study(scenario, out)
        if done is None:
            return 2
        log(f"wrote {out}")
        return 0
    rows: list[dict[str, Any]] = []
    results: list[StudyResult] = []
    record: dict[str, Any] = {}
    selection: dict[str, Any] = {"rule": cfg.selection}

    def seed_done(seed: int, result: StudyResult, done: dict[str, Any]) -> None:
        """Adds one finished seed to ``DIR/seeds.json``."""
        results.append(result)
        rows.append(seed_row(seed, done))
        if cfg.split == "users":  # every seed scores the same test users' windows
            for row, mean in zip(rows, against_mean_grid(results), strict=True):
                row.update(mean)
        record.update(
            scenario=scenario.name,
            seeds=args.seeds[: len(rows)],
            selection=selection,
            runs=rows,
            spread=spread(rows),
            grid_f1_test=grid_spread(results),
        )
        write_atomic(out / SEEDS_FILE, json.dumps(record, indent=1))

    seeded = {seed: scenario.model_copy(update={"seed": seed}) for seed in args.seeds}
    if cfg.selection == "per_seed":
        for seed in args.seeds:
            log(f"seed {seed}")
            done = study(seeded[seed], out / f"seed-{seed}")
            if done is None:
                return 2
            seed_done(seed, *done)
    else:
        grids = []
        for seed in args.seeds:
            log(f"seed {seed}: grid")
            where = out / f"seed-{seed}"
            grid = guarded(
                seed,
                lambda s=seed, w=where: train_grid(
                    seeded[s], cfg, args.data_dir, log, journal(seeded[s], w)
                ),
            )
            if grid is None:
                return 2
            grids.append(grid)

        across = guarded(None, lambda: choose_across(grids, cfg, log))
        if across is None:
            return 2
        selection["chosen"] = across.label(grids)
        selection["pairs"] = {
            f"{p.label} @{p.width}": {
                "mean_validation_gap": None if p.gap != p.gap else p.gap,
                "mean_relative_hypervolume": p.hypervolume,
            }
            for p in across.pairs
        }
        for seed, result in finish_across(grids, cfg, across, log):
            seed_done(seed, result, write_study(result, seeded[seed], cfg, out / f"seed-{seed}"))
    plot_seeds(args.seeds, results, out / SEEDS_FIGURE, mean=cfg.split == "users")
    for line in table(rows, record["spread"]):
        say(line)
    noise = record["grid_f1_test"]
    if noise["median_sd"] is not None:
        say(
            f"a grid model's test F1 across seeds: median sd {noise['median_sd']:.3f}, "
            f"largest {noise['max_sd']:.3f}"
        )
    log(f"wrote {out} ({len(rows)} seeds, {SEEDS_FILE})")
    return 0


def write_study(result: StudyResult, scenario: Scenario, cfg: AdaptiveConfig, out: Path) -> dict:
    """Writes one study's files in ``out`` (see the module's docstring); returns its summary."""
    from fedhar.adaptive.artifact import save_model
    from fedhar.files import write_atomic
    from fedhar.studies.adaptive_report import (
        cascade_first_rows,
        plot_cascade_firsts,
        plot_fig11,
        plot_fig12,
        plot_personalized,
        summary,
        write_cascade_firsts,
        write_grid,
        write_modes,
    )

    meta = {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "profile": cfg.profile,
        "small_width": result.small_width,
        "precision_priced": "float32",
    }
    write_modes(result.modes, out / "modes", meta)
    rows = cascade_first_rows(result)
    done = {"seed": scenario.seed, **summary(result, cfg.profile, rows)}
    write_atomic(out / "summary.json", json.dumps(done, indent=1))
    write_grid(result, out / "static_grid.csv")
    plot_fig11(result, out / "fig11.png")
    if result.replicated:
        plot_fig12(result, out / "fig12.png")
    if result.cascade is not None:
        write_cascade_firsts(rows, out / "cascade_firsts.csv")
        saving = done["cycles_saving_at_equal_f1"]
        if saving is not None:
            title = f"grid model → M_l {done['large_model']} ({done['priced_by']})"
            plot_cascade_firsts(rows, saving, title, out / "cascade_firsts.png")
    save_model(result.net, result.small_width, result.normalizer, out / "model.pt")
    for u in result.personalized:
        user_dir = out / "users" / u.user
        user_dir.mkdir(parents=True, exist_ok=True)
        write_modes(u.before, user_dir / "modes_before", {**meta, "user": u.user})
        write_modes(u.after, user_dir / "modes_after", {**meta, "user": u.user})
        save_model(u.net, result.small_width, result.normalizer, user_dir / "model.pt")
    if result.personalized:
        plot_personalized(result, out / "personalized.png")
    return done


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``adaptive`` sub-command to the fedhar CLI."""
    parser = subparsers.add_parser(
        "adaptive",
        help="variable-width adaptive inference: operating modes, costs and memory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_study_arguments(parser, "adaptive", "grid.jsonl")
    parser.add_argument(
        "--seeds",
        type=_seed,
        nargs="+",
        metavar="K",
        help="run the study once per seed K (in place of the scenario's seed), each in "
        "DIR/seed-K, and write the spread of their acceptance numbers to DIR/seeds.json",
    )
    parser.set_defaults(func=run)


def _seed(text: str) -> int:
    """A ``--seeds`` value: a non-negative integer."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer seed, got {text!r}")
    return value
