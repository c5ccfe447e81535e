"""The Flower ClientApp: each client is one user's simulated microcontroller.

A node holds one or more users (its node config's ``partition-id`` and ``num-partitions``,
:func:`clients.task.node_users`); the run config names the scenario. A client's MCU is the
scenario's profile (or the user's, ``battery.profiles``), or the node config's ``mcu-profile``.
Each user's battery-powered wearable arrives with each message as the state the server kept
from the client's last reply, and goes back with the reply (the node keeps nothing between
rounds); every personalization job runs in its own C-library context.

``query`` answers which users the node holds. ``train`` decodes the model (an integer network
payload into its dequantized, BatchNorm-folded float model: :mod:`clients.deploy`), runs each
requested mode (:mod:`clients.personalize`), and replies with the user's
:class:`~fedhar.results.record.ClientRecord` and the personalized update, in the format the
model came in (a network re-quantized at the received bits and activation scales). It declines, with
an ``Error`` of code :data:`~fedhar.wire.protocol.DECLINED`, when a mode does not fit the
MCU's SRAM or when the client's policy skips the round (fewer train windows than one batch).
Anything else that goes wrong raises, and Flower reports the client as failed. With the
scenario's ``battery:`` section, the record also carries the round of the user's wearable
(:mod:`clients.battery`); a client the server did not choose (``participate`` false) only
lives the round on its wearable and reports it.
"""

from __future__ import annotations

from flwr.app import ArrayRecord, ConfigRecord, Context, Error, Message, RecordDict, UserConfig
from flwr.clientapp import ClientApp

from clients.battery import battery_round
from clients.deploy import receive
from clients.personalize import DoesNotFit, check_fits, run_mode
from clients.task import LocalUser, load_user, node_profile, node_users
from fedhar.results.record import ClientRecord, to_flower
from fedhar.wire.codec import payload_bytes
from fedhar.wire.protocol import (
    CONFIG,
    DECLINED,
    DEVICE,
    INFO,
    METRICS,
    MODEL,
    NODE,
    UPDATE,
    NodeInfo,
    TrainConfig,
)


def build_app(defaults: UserConfig | None = None) -> ClientApp:
    """A ClientApp whose run config falls back on ``defaults`` (for engines that pass no
    run config, as ``run_simulation``)."""
    client_app = ClientApp()

    def run_config(context: Context) -> UserConfig:
        return {**(defaults or {}), **context.run_config}

    @client_app.query()
    def _query(msg: Message, context: Context) -> Message:
        users = node_users(run_config(context), context.node_config)
        profile = node_profile(run_config(context), context.node_config)
        info = NodeInfo(users=users, profile=profile.name, sram_bytes=int(profile.sram_bytes))
        return Message(RecordDict({NODE: info.to_record()}), reply_to=msg)

    @client_app.train()
    def _train(msg: Message, context: Context) -> Message:
        config = TrainConfig.from_record(msg.content.config_records[CONFIG])
        local = load_user(run_config(context), context.node_config, config.user)
        return train(msg, config, local)

    return client_app


def train(msg: Message, config: TrainConfig, local: LocalUser) -> Message:
    """Personalizes the received model in every requested mode and reports each one (or,
    not chosen for the round, lives the round on the wearable and reports that)."""
    n_train = int(local.y_train.shape[0])
    device = msg.content.config_records.get(DEVICE)
    wearable = str(device["state"]) if device is not None else ""
    if not config.participate:
        return _reply(msg, local, config, {}, None, (0, 0), wearable)
    if n_train < config.batch_size:
        reason = (
            f"policy: user {local.user} has {n_train} train windows, fewer than one batch "
            f"of {config.batch_size}; skipping the round"
        )
        return Message(Error(code=DECLINED, reason=reason), reply_to=msg)
    record = msg.content.array_records[MODEL]
    deployment = receive(record, local.spec)
    try:
        check_fits(deployment.spec, config.modes, config, local.profile)
    except DoesNotFit as exc:
        return Message(Error(code=DECLINED, reason=f"does not fit: {exc}"), reply_to=msg)

    data = local.normalized(config.norm_mean, config.norm_std)
    results = {}
    update = None
    for mode in config.modes:
        results[mode], state = run_mode(deployment, mode, data, config, local.profile)
        if mode == config.update_mode:
            update = deployment.update(state)
    up = payload_bytes(update) if update is not None else 0
    return _reply(msg, local, config, results, update, (payload_bytes(record), up), wearable)


def _reply(
    msg: Message,
    local: LocalUser,
    config: TrainConfig,
    results: dict,
    update: ArrayRecord | None,
    transfer_bytes: tuple[int, int],
    wearable: str,
) -> Message:
    """The reply: the client's record of the round (its wearable advanced from ``wearable``,
    its state's JSON text, with a battery), the update, and the device's new state."""
    battery = None
    content = RecordDict()
    if local.battery is not None:
        battery, after = battery_round(wearable, local, config, results, transfer_bytes)
        content[DEVICE] = ConfigRecord({"state": after})
    result = ClientRecord(
        user=local.user,
        fold=config.fold,
        n_train=int(local.y_train.shape[0]),
        n_test=int(local.y_test.shape[0]),
        round=config.round,
        modes_round=config.round,
        modes=results,
        payload_bytes_down=transfer_bytes[0],
        payload_bytes_up=transfer_bytes[1],
        battery=battery,
        profile=local.profile.name,
    )
    content[METRICS], content[INFO] = to_flower(result)
    if update is not None:
        content[UPDATE] = update
    return Message(content, reply_to=msg)


app = build_app()
