"""The `evbridge` command: one sub-command per module, each with `add_arguments` and `run`.

Sub-command modules are imported lazily, so `evbridge validate` does not pay
for the SHIP/TLS stack and a broken optional part cannot break the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bridge import __version__

# name -> (module, one-line help).  Each module has add_arguments(parser) and run(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {}
COMMANDS["run"] = ("bridge.runtime.cli_run", "run the bridge (no -c FILE: the embedded demo)")
COMMANDS["probe"] = ("bridge.probe_cli", "find out which mapping fits an unknown charger")
COMMANDS["validate"] = ("bridge.config.cli", "check a configuration file (file:line and field on error, exit 2)")
COMMANDS["schema"] = ("bridge.config.cli_schema", "print the JSON Schema of the configuration file")
COMMANDS["ems"] = ("bridge.eebus.ems.cli", "the bridge's own EMS: discover, read, limit, failsafe")
COMMANDS["ski"] = ("bridge.eebus.ship.cli.ski", "print each device's SHIP SKI, port and SHIP ID")
COMMANDS["trust"] = ("bridge.eebus.ship.cli.trust", "trust add|remove|list SKI: EMSs the bridge accepts")
COMMANDS["pair"] = ("bridge.eebus.ship.cli.pair", "open a pairing window, list and accept pending EMSs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evbridge", description="Legacy EV chargers as IEC 63380 / EEBus devices.")
    parser.add_argument("--version", action="version", version=f"evbridge {__version__}")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--log-format", default="text", choices=["text", "json"], help="json: one object per line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from bridge.logsetup import configure_logging

    configure_logging(args.log_level, args.log_format)
    try:
        code: int = args._module.run(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
