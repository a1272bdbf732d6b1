"""`evbridge ems …`: the bridge's own EMS in the energy-guard role, for commissioning and tests.

    evbridge ems ski                          the EMS tool's own SKI (trust it on the bridge)
    evbridge ems discover [--seconds 3]       SHIP devices found by mDNS, with SKI
    evbridge ems read SKI [--host H --port P] use cases, LPC state, measurements
    evbridge ems limit SKI WATTS [--duration S] [--once]
    evbridge ems failsafe SKI --watts W --duration H

Without --host/--port the device is looked up by its SKI via mDNS.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import anyio

from bridge.clock import SystemClock
from bridge.eebus.ems.client import EMS_DEVICE_ID, EmsConnection, ems_connection
from bridge.eebus.ship import Identity, normalize_ski
from bridge.eebus.ship.connection import ShipConnectionClosed
from bridge.eebus.spine.link import RequestFailed
from bridge.errors import BridgeError
from bridge.runtime.statestore import default_state_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, help="where the EMS tool keeps its identity (default: per user)")
    sub = parser.add_subparsers(dest="ems_command", required=True, metavar="ACTION")
    sub.add_parser("ski", help="print the EMS tool's own SKI")
    discover = sub.add_parser("discover", help="list SHIP devices found by mDNS")
    discover.add_argument("--seconds", type=float, default=3.0)
    discover.add_argument("--interface", help="IP address of the interface to browse on")
    for name, text in (
        ("read", "read use cases, LPC state and measurements"),
        ("limit", "write an LPC limit and keep the heartbeat going until Ctrl-C"),
        ("failsafe", "write the failsafe values"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("ski", help="SKI of the device (any case, spaces/colons allowed)")
        p.add_argument("--host", help="device address (default: find by mDNS)")
        p.add_argument("--port", type=int, help="device SHIP port")
        p.add_argument("--interface", help="IP address of the interface to look the device up on by mDNS")
        if name == "limit":
            p.add_argument("watts", type=float)
            p.add_argument("--duration", type=float, help="seconds until the limit ends by itself")
            p.add_argument("--once", action="store_true", help="write and exit (the device falls into failsafe later)")
        if name == "failsafe":
            p.add_argument("--watts", type=float, required=True)
            p.add_argument("--duration", type=float, required=True, help="hours (2–24)")


def run(args: argparse.Namespace) -> int:
    state_dir = args.state_dir or (default_state_dir() / "ems-tool")
    if args.ems_command == "ski":
        print(Identity.load_or_create(state_dir, EMS_DEVICE_ID).ski)
        return 0
    try:
        return anyio.run(_main, args, state_dir, backend="asyncio")
    except _EXPECTED as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BaseExceptionGroup as group:  # why: the connection's task group wraps the device's answer
        expected, rest = group.split(_EXPECTED)
        if rest is not None or expected is None:
            raise
        for exc in _leaves(expected):
            print(f"error: {exc}", file=sys.stderr)
        return 1


_EXPECTED = (BridgeError, RequestFailed, ShipConnectionClosed, OSError, TimeoutError, ValueError)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return out


async def _main(args: argparse.Namespace, state_dir: Path) -> int:
    if args.ems_command == "discover":
        for service in await _browse(args.seconds, args.interface):
            print(
                f"{service.ski}  {service.host}:{service.port}  {service.brand} {service.model} {service.device_type}"
            )
        return 0
    ski = normalize_ski(args.ski)
    host, port = args.host, args.port
    if host is None or port is None:
        found = [s for s in await _browse(3.0, args.interface) if s.ski == ski]
        if not found:
            print(f"error: no SHIP device with SKI {ski} found by mDNS; give --host and --port", file=sys.stderr)
            return 1
        host, port = host or found[0].addresses[0], port or found[0].port
    own = Identity.load_or_create(state_dir, EMS_DEVICE_ID).ski
    print(f"EMS tool SKI {own} (the bridge must trust it: evbridge trust add {own})", file=sys.stderr)
    async with ems_connection(SystemClock(), state_dir, host, port, ski) as ems:
        if args.ems_command == "read":
            print(json.dumps(await _read_all(ems), indent=2))
        elif args.ems_command == "failsafe":
            await ems.failsafe(watts=args.watts, duration_s=args.duration * 3600)
            print(f"failsafe: {args.watts:.0f} W for at least {args.duration:g} h accepted")
        else:
            await ems.limit(args.watts, args.duration)
            print(f"limit {args.watts:.0f} W accepted" + (f" for {args.duration:g} s" if args.duration else ""))
            if not args.once:
                await _follow(ems)
    return 0


async def _read_all(ems: EmsConnection) -> dict[str, Any]:
    use_cases = [
        {"actor": i["actor"], **{k: u[k] for k in ("useCaseName", "useCaseVersion", "scenarioSupport")}}
        for i in ems.use_cases.get("useCaseInformation", [])
        for u in i.get("useCaseSupport", [])
    ]
    out: dict[str, Any] = {
        "use_cases": use_cases,
        "lpc": await ems.lpc_state(),
        "measurements": await ems.measurements(),
    }
    if "DeviceClassification" in ems.features:
        out["manufacturer"] = await ems.read("DeviceClassification", "deviceClassificationManufacturerData")
    return out


async def _follow(ems: EmsConnection) -> None:
    """Keep the heartbeat going and print live measurements until Ctrl-C."""
    print("sending heartbeats; Ctrl-C to stop", file=sys.stderr)
    while True:
        values = await ems.measurements()
        power = values.get("acPowerTotal")
        print(
            f"power {power if power is not None else '?'} W, "
            + ", ".join(f"{k}={v:g}" for k, v in sorted(values.items()) if k != "acPowerTotal")
        )
        await anyio.sleep(5)


async def _browse(seconds: float, interface: str | None) -> list[Any]:
    from zeroconf import IPVersion
    from zeroconf.asyncio import AsyncZeroconf

    from bridge.eebus.ship.mdns import MdnsBrowser, ShipService

    found: dict[str, ShipService] = {}
    azc = AsyncZeroconf(interfaces=[interface] if interface else None, ip_version=IPVersion.V4Only)
    try:
        browser = MdnsBrowser(azc, "", lambda s: found.__setitem__(s.ski, s))
        with anyio.move_on_after(seconds):
            await browser.run()
    finally:
        await azc.async_close()
    return sorted(found.values(), key=lambda s: s.ski)
