"""M_l and the width of M_s chosen once from several seeds' validation results
(``adaptive.selection: across_seeds``).

Under the ``users`` split every seed draws other validation users, another training set and
other initial weights, so one seed's validation modes are one noisy draw: on UCI HAPT a grid
model's validation and test macro-F1 correlate at 0.44-0.50 over the grid, and the pair one
seed's validation prefers can lie well below that seed's test front. Here every seed trains
its grid (:func:`fedhar.studies.adaptive.train_grid`); the M_l candidates are the models
whose seed-mean validation macro-F1 is within ``score_drop`` of the best seed-mean (the
paper's rule, on the pooled scores); every seed converts each of them
(:func:`fedhar.studies.adaptive.convert`), and the ``large_choice`` rule is applied to each
pair's mean over seeds of its validation gap and of its relative hypervolume (hypervolume
over the seed's largest, so that each seed counts the same). It is repeated random
sub-sampling validation over users: the test users take no part in it. Every seed is then
finished with its own network of the chosen pair.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterator
from dataclasses import dataclass

from fedhar.adaptive.slim import SlimNet
from fedhar.schema.adaptive import AdaptiveConfig
from fedhar.studies.adaptive import (
    Grid,
    Log,
    StudyResult,
    convert,
    finish_study,
    large_pool,
    pair_scores,
    prefer_pair,
)
from fedhar.studies.adaptive_search import Candidate

Pair = tuple[int, float]


@dataclass(frozen=True)
class PooledPair:
    """One candidate ``(M_l, width)`` pair scored over the seeds: ``gap``, the mean of its
    validation gaps (NaN when no seed's modes could be compared) and ``hypervolume``, the mean
    of its validation hypervolume over the largest of the same seed."""

    label: str
    width: float
    gap: float
    hypervolume: float


def mean_validation(grids: list[Grid]) -> list[Candidate]:
    """The first grid's candidates with ``f1_val`` replaced by its mean over ``grids``.

    Raises:
        ValueError: when the grids hold other models.
    """
    labels = [c.label for c in grids[0].candidates]
    if any([c.label for c in g.candidates] != labels for g in grids[1:]):
        raise ValueError("the seeds' studies have different grids")
    return [
        dataclasses.replace(c, f1_val=statistics.fmean(g.candidates[i].f1_val for g in grids))
        for i, c in enumerate(grids[0].candidates)
    ]


def pool_scores(
    volumes: list[dict[Pair, float]], gaps: list[dict[Pair, float]]
) -> tuple[dict[Pair, float], dict[Pair, float]]:
    """Per pair, over the seeds' ``volumes`` and ``gaps`` (one dict per seed, the same
    pairs): the mean of hypervolume over that seed's largest, and the mean of the gaps that
    are not NaN (NaN when all are)."""
    rel = [{k: v / max(vol.values()) for k, v in vol.items()} for vol in volumes]
    pooled_volume = {k: statistics.fmean(r[k] for r in rel) for k in volumes[0]}
    pooled_gap = {}
    for k in volumes[0]:
        known = [g[k] for g in gaps if not math.isnan(g[k])]
        pooled_gap[k] = statistics.fmean(known) if known else math.nan
    return pooled_volume, pooled_gap


@dataclass
class Across:
    """The choice over seeds: ``chosen`` ``(grid index, width)``; ``pairs``, every candidate's
    pooled scores; and per seed (in the grids' order) its two-width networks, their
    validation hypervolumes and gaps. ``gains``: the eq. (5) gains of the seed-mean front."""

    chosen: Pair
    pairs: list[PooledPair]
    nets: list[dict[Pair, SlimNet]]
    volumes: list[dict[Pair, float]]
    gaps: list[dict[Pair, float]]
    gains: dict[int, float]

    def label(self, grids: list[Grid]) -> str:
        """The chosen pair's name, e.g. ``C16-16-32 K7 @0.5``."""
        return f"{grids[0].candidates[self.chosen[0]].label} @{self.chosen[1]}"


def choose_across(grids: list[Grid], cfg: AdaptiveConfig, log: Log) -> Across:
    """Chooses M_l and the width of M_s once for every seed's ``grids`` (see the module's
    docstring), converting every candidate in every seed.

    Raises:
        ValueError: when the grids differ, or no model in range can host M_s.
    """
    pooled = mean_validation(grids)
    larges, gains = large_pool(pooled, cfg)
    log(f"M_l candidates over {len(grids)} seeds: {', '.join(pooled[i].label for i in larges)}")
    var_nets, volumes, gaps = [], [], []
    for grid in grids:
        log(f"seed {grid.scenario.seed}: variable-width networks")
        nets = convert(grid, cfg, larges, log)
        v, g = pair_scores(grid, cfg, nets)
        var_nets.append(nets)
        volumes.append(v)
        gaps.append(g)
    pooled_volume, pooled_gap = pool_scores(volumes, gaps)
    chosen = prefer_pair(pooled_volume, pooled_gap, cfg.large_choice)
    table = [
        PooledPair(pooled[i].label, w, pooled_gap[(i, w)], pooled_volume[(i, w)])
        for i, w in pooled_volume
    ]
    log(
        f"M_l = {pooled[chosen[0]].label}, M_s width {chosen[1]} over the seeds (mean "
        "validation gap / relative hypervolume: "
        + ", ".join(f"{p.label} @{p.width}: {p.gap:.3f} / {p.hypervolume:.3f}" for p in table)
        + ")"
    )
    return Across(chosen, table, var_nets, volumes, gaps, gains)


def finish_across(
    grids: list[Grid], cfg: AdaptiveConfig, across: Across, log: Log
) -> Iterator[tuple[int, StudyResult]]:
    """Each seed's finished study (:func:`fedhar.studies.adaptive.finish_study`) with its own
    network of the pair ``across`` chose, with its seed, one at a time."""
    seeds = [g.scenario.seed for g in grids]
    for k, grid in enumerate(grids):
        log(f"seed {seeds[k]}: test modes of the chosen pair")
        net = across.nets[k][across.chosen]
        scores = across.volumes[k], across.gaps[k]
        yield (
            seeds[k],
            finish_study(grid, cfg, net, across.chosen, scores, across.gains, seeds, log),
        )
