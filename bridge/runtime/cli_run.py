"""`evbridge run [-c FILE]`: run the bridge until SIGINT/SIGTERM; without a file, the embedded demo."""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from pathlib import Path

import anyio
import yaml

from bridge.clock import SystemClock
from bridge.config import LoadedConfig, demo_config_path, load_config, load_config_text, resolve_state_dir
from bridge.errors import ConfigError
from bridge.runtime.app import Bridge

log = logging.getLogger("evbridge")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", type=Path, help="configuration file (default: the embedded demo)")
    parser.add_argument("--state-dir", type=Path, help="override the state directory")


def run(args: argparse.Namespace) -> int:
    path = args.config or demo_config_path()
    try:
        loaded = load_config(path) if args.config else _demo_config(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    state_dir = args.state_dir or resolve_state_dir(loaded.config)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: state directory {state_dir}: {exc.strerror}", file=sys.stderr)
        return 2
    log.info("evbridge starting: %s (%s), state in %s", loaded.config.site.name, path, state_dir)
    if args.config is None:
        log.info("no -c FILE given: running the embedded demo with simulated chargers")
    failures: list[BaseException] = []
    try:
        anyio.run(_main, loaded, state_dir, backend="asyncio")
    except* OSError as group:
        # A port in use, a missing serial device, …: say which, without a traceback.
        failures.extend(group.exceptions)
    for exc in _leaves(failures):
        print(f"error: cannot run: {exc}", file=sys.stderr)
    if failures:
        return 1
    log.info("evbridge stopped")
    return 0


DEMO_BROKER = ("127.0.0.1", 1883)


def _demo_config(path: Path) -> LoadedConfig:
    """The embedded demo; with an MQTT broker on 127.0.0.1:1883 it adds a go-e MQTT charger and publishes northbound."""
    host, port = DEMO_BROKER
    try:
        with socket.create_connection((host, port), timeout=0.5):
            pass
    except OSError:
        log.info("demo: no MQTT broker on %s:%d, so no MQTT charger (start mosquitto to get one)", host, port)
        return load_config(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["chargers"].append(
        {
            "id": "driveway",
            "name": "Driveway go-e over MQTT (simulated, via the local broker)",
            "adapter": {
                "type": "mqtt",
                "mapping": "goe",
                "variables": {"serial": "demo01"},
                "host": host,
                "port": port,
            },
        }
    )
    data.setdefault("simulators", []).append({"type": "mqtt", "host": host, "port": port, "serials": ["demo01"]})
    data.setdefault("mqtt", {"host": host, "port": port})
    log.info(
        "demo: MQTT broker found on %s:%d: adding a go-e MQTT charger and MQTT/Home Assistant publishing", host, port
    )
    return load_config_text(yaml.safe_dump(data, sort_keys=False), f"{path} (+ MQTT demo charger)")


async def _main(loaded, state_dir: Path) -> None:  # type: ignore[no-untyped-def]
    bridge = Bridge(loaded, SystemClock(), state_dir)
    services = []
    if loaded.config.eebus.enabled:
        from bridge.runtime.eebus_wiring import run_eebus

        services.append(run_eebus)
    if loaded.config.mqtt is not None:
        from bridge.api.mqtt_north import MqttNorthSettings, northbound_service

        node = "".join(c if c.isalnum() else "_" for c in loaded.config.site.name.lower())
        services.append(northbound_service(MqttNorthSettings.from_config(loaded.config.mqtt, node_id=node)))
    async with anyio.create_task_group() as tg:
        tg.start_soon(_stop_on_signal, bridge)
        await bridge.run(extra_services=services)
        tg.cancel_scope.cancel()


async def _stop_on_signal(bridge: Bridge) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("%s received: leaving chargers at their safe value and stopping", signal.Signals(signum).name)
            bridge.stop()
            return


def _leaves(errors: list[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in errors:
        out.extend(_leaves(list(exc.exceptions)) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out
