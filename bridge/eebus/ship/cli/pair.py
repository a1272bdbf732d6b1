"""`evbridge pair`: open a pairing window in the running bridge, list and accept pending EMSs.

evbridge pair --minutes 5        unknown EMSs that connect now wait in the pending list
evbridge pair                    show the window and the pending list
evbridge pair --accept SKI       trust it (persisted) and let its connection continue
evbridge pair --reject SKI       refuse it
evbridge pair --close            close the window (pending peers are refused)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bridge.eebus.ship.cli import add_common_arguments, load_config, state_dir
from bridge.eebus.ship.control import ControlUnavailable, control_path, request
from bridge.eebus.ship.ski import normalize_ski
from bridge.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--minutes", type=float, help="open the pairing window for this long")
    group.add_argument("--accept", metavar="SKI", help="accept a pending EMS")
    group.add_argument("--reject", metavar="SKI", help="refuse a pending EMS")
    group.add_argument("--close", action="store_true", help="close the pairing window")
    add_common_arguments(parser)


def _message(args: argparse.Namespace) -> dict[str, Any]:
    if args.minutes is not None:
        return {"cmd": "pair.open", "seconds": args.minutes * 60}
    if args.accept:
        return {"cmd": "pair.accept", "ski": normalize_ski(args.accept)}
    if args.reject:
        return {"cmd": "pair.reject", "ski": normalize_ski(args.reject)}
    if args.close:
        return {"cmd": "pair.close"}
    return {"cmd": "pair.list"}


def run(args: argparse.Namespace) -> int:
    try:
        message = _message(args)
        root = state_dir(args, load_config(args))
    except ConfigError as exc:
        print(f"evbridge pair: {exc}", file=sys.stderr)
        return 2
    try:
        reply = request(control_path(root), message)
    except (ControlUnavailable, OSError) as exc:
        print(f"evbridge pair: {exc}; start the bridge first", file=sys.stderr)
        return 1
    if not reply.get("ok"):
        print(f"evbridge pair: {reply.get('error')}", file=sys.stderr)
        return 1
    if "released" in reply:
        print(f"accepted {reply['ski']} ({reply['released']} waiting connection(s) continue)")
    elif "refused" in reply:
        print(f"refused {reply['ski']} ({reply['refused']} waiting connection(s) closed)")
    state = "open, {:.0f} s left".format(reply["remaining_s"]) if reply.get("window_open") else "closed"
    print(f"pairing window {state}")
    for peer in reply.get("pending", []):
        print(f"pending: {peer['ski']} from {peer['address']} (device {peer['device']})")
    return 0
