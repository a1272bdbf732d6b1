"""Probe a Modbus wallbox: which of the known maps fit it, and a config snippet to start from.

    evbridge probe modbus 192.0.2.10[:502] [--unit 1]
    evbridge probe modbus --serial /dev/ttyUSB0 --unit 1 [--baudrate 19200 --parity E]

For every map, reads its status/identity points and counts what decodes to
something sensible (known enum values, plausible numbers).  Connection
refusals, timeouts and Modbus exceptions are reported in plain words.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from typing import Any

import anyio

from adapters.modbus import codec
from adapters.modbus.endpoint import EndpointKey, ModbusEndpoint
from adapters.modbus.mapping import PointName, available_mappings, load_mapping
from bridge.clock import SystemClock
from bridge.errors import ChargerRejected, ChargerUnreachable

PROBE_POINTS = (
    PointName.STATUS,
    PointName.PLUG,
    PointName.SERIAL,
    PointName.MODEL,
    PointName.FIRMWARE,
    PointName.POWER,
    PointName.ENERGY,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", nargs="?", help="HOST[:PORT] of a Modbus TCP box")
    parser.add_argument("--serial", help="serial device for RTU/ASCII")
    parser.add_argument("--unit", type=int, help="unit id (default: each map's own)")
    parser.add_argument("--baudrate", type=int, default=19200)
    parser.add_argument("--parity", choices=["N", "E", "O"], default="E")
    parser.add_argument("--framer", choices=["rtu", "ascii"], default="rtu")
    parser.add_argument("--timeout", type=float, default=2.0)


def split_address(text: str) -> tuple[str, int | None]:
    """HOST, HOST:PORT, [IPv6]:PORT or a bare IPv6 address → (host, port or None)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    if not host or (port and not (port.isdigit() and 1 <= int(port) <= 65535)):
        raise ValueError(f"not HOST[:PORT]: {text!r}")
    return host, int(port) if port else None


def run(args: argparse.Namespace) -> int:
    if bool(args.address) == bool(args.serial):
        print("error: give HOST[:PORT] or --serial DEVICE", file=sys.stderr)
        return 2
    if args.address:
        try:
            split_address(args.address)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    # The probe prints its own findings; connection chatter from pymodbus and the endpoint would bury them.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    logging.getLogger("adapters.modbus.endpoint").setLevel(logging.ERROR)
    return anyio.run(_probe, args, backend="asyncio")


async def _probe(args: argparse.Namespace) -> int:
    results: list[tuple[int, str, dict[str, Any]]] = []
    unreachable: str | None = None
    async with anyio.create_task_group() as tg:
        endpoints: dict[EndpointKey, ModbusEndpoint] = {}
        for name in available_mappings():
            mapping = load_mapping(name)
            if args.address:
                host, port = split_address(args.address)
                key = EndpointKey(host, port or mapping.connection.port, "socket")
            else:
                key = EndpointKey(args.serial, 0, args.framer)
            if key not in endpoints:
                endpoints[key] = ModbusEndpoint(
                    key,
                    SystemClock(),
                    timeout_s=args.timeout,
                    baudrate=args.baudrate,
                    parity=args.parity,
                    backoff_max_s=0.1,
                )
                tg.start_soon(endpoints[key].run)
            score, found, error = await _score(endpoints[key], mapping, args.unit)
            if error and unreachable is None and score == 0:
                unreachable = error
            results.append((score, name, found))
        tg.cancel_scope.cancel()
    matches = sorted((r for r in results if r[0] > 0), reverse=True)
    if not matches:
        reason = unreachable or "no map's registers decoded to plausible values"
        print(f"no known map matches: {reason}", file=sys.stderr)
        return 1
    for score, name, found in matches:
        print(f"{name}: {score} point(s) plausible " + ", ".join(f"{k}={v}" for k, v in found.items()))
    best = matches[0][1]
    if args.address:
        host, port = split_address(args.address)
        where = f"host: {host if ':' not in host else repr(host)}" + (f", port: {port}" if port else "")
    else:
        where = f"serial: {args.serial}, framer: {args.framer}"
    unit = f", unit_id: {args.unit}" if args.unit is not None else ""
    print(
        "\nconfig snippet:\n  - id: my-charger\n    adapter: {type: modbus, mapping: "
        + best
        + ", "
        + where
        + unit
        + "}"
    )
    return 0


async def _score(endpoint: ModbusEndpoint, mapping: Any, unit: int | None) -> tuple[int, dict[str, Any], str | None]:
    score, found, error = 0, {}, None
    for name in PROBE_POINTS:
        point = mapping.points.get(name)
        if point is None or not point.readable:
            continue
        uid = unit if unit is not None and point.unit_id is None else mapping.unit_of(point)
        try:
            words = await endpoint.read(uid, point.table, point.address, point.words)
        except ChargerUnreachable as exc:
            return 0, {}, str(exc)
        except ChargerRejected as exc:
            error = str(exc)
            continue
        value = codec.decode(mapping, point, words)
        if _plausible(name, value):
            score += 1
            found[name.value] = value
    return score, found, error


def _plausible(name: PointName, value: Any) -> bool:
    if value is None or (isinstance(value, str) and value.startswith("unknown:")):
        return False
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return False
    if name in (PointName.POWER, PointName.ENERGY):
        return isinstance(value, int | float) and 0 <= value < 1e10
    if name in (PointName.SERIAL, PointName.MODEL, PointName.FIRMWARE):
        return bool(str(value).strip()) and str(value) != "0"
    return True
