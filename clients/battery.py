"""A client's battery-powered wearable: one federation round is one simulated period.

With the scenario's ``battery:`` section, each ``train`` reply also advances the user's
simulated wearable (:mod:`fedhar.wearable`) to the end of the round, from the state the server
sent with the message, and replies with its new state (:mod:`fedhar.wearable.federation`).
The battery is the user's own (``battery.capacities_mah``,
:func:`fedhar.wearable.devices.assign_devices`). A client the server did not choose lives the
round without a download or a job. The wearable's personalization job is priced by what the
C library measured for that mode in this very round (its counted operations priced by the
node's MCU profile): a job of ``warmup_epochs + epochs`` epochs, each costing the job's energy
(J) and MCU time (s) divided by that number. A mode the scenario does not run keeps the
``battery:`` section's price of its whole job. The radio moves the bytes this round's messages
put on the wire: the model received (the section's ``payload_bytes`` is not used) and, after a
job, the update the client sent back (the same record for a TL or a Full job; 0 bytes when it
sends none, in place of the section's ``update_bytes``).
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Mapping
from pathlib import Path

from clients.task import LocalUser
from fedhar.enums import WEARABLE_JOBS, Mode
from fedhar.results.record import BatteryRecord, ModeRecord
from fedhar.schema.scenario import BatteryConfig
from fedhar.wearable.build import build_wearable_config
from fedhar.wearable.federation import run_round
from fedhar.wearable.loads import PersonalizationCost
from fedhar.wearable.simulation import WearableConfig
from fedhar.wire.protocol import TrainConfig


def wearable_config(
    section: BatteryConfig,
    base_dir: Path,
    user: str,
    seed: int,
    results: Mapping[Mode, ModeRecord],
    job_epochs: int,
    transfer_bytes: tuple[int, int],
    capacity_mah: float,
) -> WearableConfig:
    """The wearable of ``user``: the ``battery:`` section at ``capacity_mah`` mAh, with its
    personalization costs replaced by the measured jobs in ``results`` (each ``job_epochs``
    epochs long), and its radio's bytes by ``transfer_bytes``, the bytes on the wire of the
    model received and of the update sent (0: none). The charging habit's seed mixes the
    scenario's ``seed`` with the user id, so users differ and runs repeat."""
    config = build_wearable_config(
        section,
        base_dir,
        capacity_mah=capacity_mah,
        charging=section.charging,
        personalization=section.personalization,
        threshold=section.threshold,
        seed=seed * 1_000_003 + zlib.crc32(user.encode()),
    )
    down, up = transfer_bytes
    config = dataclasses.replace(
        config, payload_bytes=down, update_bytes={mode.value: up for mode in WEARABLE_JOBS}
    )
    measured = {
        mode.value: PersonalizationCost(
            joules_per_epoch=results[mode].energy_j / job_epochs,
            seconds_per_epoch=results[mode].seconds / job_epochs,
        )
        for mode in WEARABLE_JOBS
        if mode in results and results[mode].seconds > 0
    }
    if not measured:
        return config
    # An unmeasured mode keeps its whole job's cost (the section's ``epochs`` epochs), spread
    # over the measured jobs' ``job_epochs`` epochs.
    share = section.epochs / job_epochs
    personalization = {
        mode: PersonalizationCost(cost.joules_per_epoch * share, cost.seconds_per_epoch * share)
        for mode, cost in config.costs.personalization.items()
    }
    personalization.update(measured)
    sources = {
        **config.costs.sources,
        "training": "C library op counts of this round's jobs priced by the node's MCU profile",
    }
    costs = dataclasses.replace(config.costs, personalization=personalization, sources=sources)
    return dataclasses.replace(config, costs=costs, epochs=job_epochs)


def battery_round(
    state: str,
    local: LocalUser,
    config: TrainConfig,
    results: Mapping[Mode, ModeRecord],
    transfer_bytes: tuple[int, int],
) -> tuple[BatteryRecord, str]:
    """Advances ``local``'s wearable from ``state`` (its JSON text at the end of its last
    round, ``""``: fresh) to the end of round ``config.round`` (``battery.round_s`` s per
    round); ``transfer_bytes`` are the bytes on the wire of the model received and of the
    update sent back (0: none).

    Returns:
        The round's battery figures and the device's state at its end (JSON text).
    """
    section = local.battery
    assert section is not None
    job_epochs = config.warmup_epochs + config.epochs
    wearable = wearable_config(
        section, local.scenario_dir, local.user, local.seed, results, job_epochs,
        transfer_bytes, local.capacity_mah,
    )  # fmt: skip
    report, after = run_round(
        state, wearable, config.round, section.round_s, participate=config.participate
    )
    first = json.loads(after)["first_depletion_s"]
    record = BatteryRecord(
        soc_end=float(report.soc_end),
        energy_j_by_load={load: float(j) for load, j in report.energy_j.items()},
        jobs={Mode.FULL.value: int(report.full_jobs), Mode.TL.value: int(report.tl_jobs)},
        dead_s=float(report.dead_s),
        alive=bool(report.alive),
        capacity_mah=float(local.capacity_mah),
        first_depletion_s=None if first is None else float(first),
    )
    return record, after
