"""`evbridge trust add|remove|list [SKI]`: the EMSs this bridge says `ready` to.

Edits `<state>/ship/trust.json`; a running bridge is told to reload through
its control socket, and a connection from that SKI that is waiting in the
pairing list continues at once.
"""

from __future__ import annotations

import argparse
import sys

from bridge.eebus.ship.cli import add_common_arguments, config_trusted_skis, load_config, state_dir
from bridge.eebus.ship.control import ControlUnavailable, control_path, request
from bridge.eebus.ship.trust import TrustStore
from bridge.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["add", "remove", "list"])
    parser.add_argument("ski", nargs="?", help="40 hex digits; spaces, colons, dashes and any case are fine")
    parser.add_argument("--note", default="", help="free text stored with the SKI (e.g. 'evcc in the garage')")
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args)
        root = state_dir(args, config)
        store = TrustStore.in_state_dir(root, static=config_trusted_skis(config))
        if args.action == "list":
            for entry in store.entries():
                note = f"  {entry.note}" if entry.note else ""
                print(f"{entry.ski}  {entry.source}{note}")
            return 0
        if not args.ski:
            print(f"evbridge trust {args.action}: SKI missing", file=sys.stderr)
            return 2
        if args.action == "add":
            changed = store.add(args.ski, note=args.note)
            print(("trusted " if changed else "already trusted ") + args.ski)
        else:
            changed = store.remove(args.ski)
            print(("removed " if changed else "not in the trust store: ") + args.ski)
    except ConfigError as exc:
        print(f"evbridge trust: {exc}", file=sys.stderr)
        return 2
    try:
        reply = request(control_path(root), {"cmd": "trust.reload"})
    except (ControlUnavailable, OSError):
        print("(no running bridge; it reads the trust store when it starts)")
        return 0
    if reply.get("ok"):
        released, closed = reply.get("released", 0), reply.get("closed", 0)
        print(f"running bridge reloaded the trust store ({released} waiting connection(s) released, {closed} closed)")
        return 0
    print(f"running bridge refused the reload: {reply.get('error')}", file=sys.stderr)
    return 1
