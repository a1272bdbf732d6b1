"""`evbridge probe KIND …`: ask an unknown charger what it is; each adapter registers its probe.

Probes are found through the `evbridge.probes` entry point group (`bridge`
never imports `adapters`); each provides `add_arguments(parser)` and
`run(args) -> int`.
"""

from __future__ import annotations

import argparse
from importlib.metadata import entry_points

GROUP = "evbridge.probes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="probe_kind", required=True, metavar="KIND")
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        probe = ep.load()
        p = sub.add_parser(ep.name, help=(probe.__doc__ or "").strip().splitlines()[0] if probe.__doc__ else None)
        probe.add_arguments(p)
        p.set_defaults(_probe=probe)


def run(args: argparse.Namespace) -> int:
    code: int = args._probe.run(args)
    return code
