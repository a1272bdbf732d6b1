"""`evbridge ski [DEVICE]`: print each exposed device's SKI, SHIP port and SHIP ID (what the EMS needs)."""

from __future__ import annotations

import argparse
import json
import sys

from bridge.eebus.ship.cli import add_common_arguments, config_port_base, load_config, state_dir
from bridge.eebus.ship.identity import Identity, ship_dir, stable_port
from bridge.eebus.ship.mdns import MdnsInfo, qr_text
from bridge.eebus.ship.ski import format_ski_grouped
from bridge.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("device", nargs="?", help="device id (default: every device)")
    parser.add_argument("--json", action="store_true", help="one JSON object per device")
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args)
        root = state_dir(args, config)
        specs = {}
        if config is not None:
            from bridge.eebus.ship.hub import device_specs

            specs = {spec.device_id: spec for spec in device_specs(config)}
        devices = [args.device] if args.device else list(specs)
        if not devices:
            devices = sorted(p.name for p in (ship_dir(root) / "devices").glob("*") if p.is_dir())
        if not devices:
            print(f"no SHIP devices in {root} yet (name one: evbridge ski DEVICE)", file=sys.stderr)
            return 1
        for device in devices:
            identity = Identity.load_or_create(root, device)
            spec = specs.get(device)
            port = stable_port(root, device, spec.port if spec else None, base=config_port_base(config))
            qr = qr_text(spec.mdns if spec else MdnsInfo(), identity.ship_id, identity.ski)
            if args.json:
                row = {"device": device, "ski": identity.ski, "port": port, "ship_id": identity.ship_id, "qr": qr}
                print(json.dumps(row))
            else:
                print(f"{device}: SKI {identity.ski}  ({format_ski_grouped(identity.ski)})")
                print(f"    port {port}  SHIP ID {identity.ship_id}")
                print(f"    QR   {qr}")
    except ConfigError as exc:
        print(f"evbridge ski: {exc}", file=sys.stderr)
        return 2
    return 0
