"""The Flower ClientApp: one simulated microcontroller holding one user's data.

The node's ``partition-id`` (its node config) picks its user; the run config names the
scenario. The device is the scenario's MCU profile, or the node config's ``mcu-profile``.
State that lasts across rounds (rounds done, energy spent) lives in ``Context.state``; every
personalization job runs in its own C-library context.

``query`` answers who the node is. ``train`` decodes the model, runs each requested mode
(:mod:`clients.personalize`), and replies with the numbers and the personalized update. It
declines, with an ``Error`` of code :data:`~fedhar.wire.protocol.DECLINED`, when a mode does not fit
the device's SRAM or when the device's policy skips the round (fewer train windows than one
batch). Anything else that goes wrong raises, and Flower reports the client as failed. With the
scenario's battery section, the record also carries the round of the node's battery-powered
wearable (:mod:`clients.battery`), whose state lives in ``Context.state``.
"""

from __future__ import annotations

from flwr.app import Context, Error, Message, MetricRecord, RecordDict, UserConfig
from flwr.clientapp import ClientApp

from clients.battery import battery_round
from clients.personalize import DoesNotFit, check_fits, run_mode
from clients.task import Device, load_device
from fedhar.results.record import ClientRecord, to_flower
from fedhar.wire.codec import decode_model, encode_model, payload_bytes
from fedhar.wire.protocol import (
    CONFIG,
    DECLINED,
    INFO,
    METRICS,
    MODEL,
    NODE,
    UPDATE,
    NodeInfo,
    TrainConfig,
)

_STATE = "device"


def build_app(defaults: UserConfig | None = None) -> ClientApp:
    """A ClientApp whose run config falls back on ``defaults`` (for engines that pass no
    run config, as ``run_simulation``)."""
    client_app = ClientApp()

    def device(context: Context) -> Device:
        return load_device({**(defaults or {}), **context.run_config}, context.node_config)

    @client_app.query()
    def _query(msg: Message, context: Context) -> Message:
        return query(msg, device(context))

    @client_app.train()
    def _train(msg: Message, context: Context) -> Message:
        return train(msg, context, device(context))

    return client_app


def query(msg: Message, device: Device) -> Message:
    """Replies with the node's user, device and data sizes."""
    info = NodeInfo(
        user=device.user,
        profile=device.profile.name,
        sram_bytes=int(device.profile.sram_bytes),
        n_train=int(device.y_train.shape[0]),
        n_test=int(device.y_test.shape[0]),
    )
    return Message(RecordDict({NODE: info.to_record()}), reply_to=msg)


def train(msg: Message, context: Context, device: Device) -> Message:
    """Personalizes the received model in every requested mode and reports each one."""
    config = TrainConfig.from_record(msg.content.config_records[CONFIG])
    if config.user != device.user:
        raise ValueError(f"message for user {config.user!r} reached the node of {device.user!r}")
    n_train = int(device.y_train.shape[0])
    if n_train < config.batch_size:
        reason = (
            f"policy: user {device.user} has {n_train} train windows, fewer than one batch "
            f"of {config.batch_size}; skipping the round"
        )
        return Message(Error(code=DECLINED, reason=reason), reply_to=msg)
    try:
        check_fits(device.spec, config.modes, config, device.profile)
    except DoesNotFit as exc:
        return Message(Error(code=DECLINED, reason=f"does not fit: {exc}"), reply_to=msg)

    shapes = device.spec.param_shapes()
    record = msg.content.array_records[MODEL]
    received = decode_model(record, shapes)
    data = device.normalized(config.norm_mean, config.norm_std)
    results = {}
    update = None
    for mode in config.modes:
        results[mode], state = run_mode(device.spec, received, mode, data, config, device.profile)
        if mode == config.update_mode:
            kind = "int8" if "q8" in record else "float32"
            update = encode_model(state, shapes, kind)
    _remember(context, sum(r.energy_j for r in results.values()))
    battery = None
    if device.battery is not None:
        battery = battery_round(
            context, device.battery, device.scenario_dir, device.user, device.seed, config, results
        )
    result = ClientRecord(
        user=device.user,
        fold=config.fold,
        n_train=n_train,
        n_test=int(device.y_test.shape[0]),
        round=config.round,
        modes=results,
        payload_bytes_down=payload_bytes(record),
        payload_bytes_up=payload_bytes(update) if update is not None else 0,
        battery=battery,
    )
    metrics, info = to_flower(result)
    content = RecordDict({INFO: info, METRICS: metrics})
    if update is not None:
        content[UPDATE] = update
    return Message(content, reply_to=msg)


def _remember(context: Context, energy_j: float) -> None:
    """Counts rounds done and energy spent on this device, across rounds."""
    previous = context.state.metric_records.get(
        _STATE, MetricRecord({"rounds": 0, "energy_j": 0.0})
    )
    context.state[_STATE] = MetricRecord(
        {
            "rounds": int(previous["rounds"]) + 1,
            "energy_j": float(previous["energy_j"]) + float(energy_j),
        }
    )


app = build_app()
