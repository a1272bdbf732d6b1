"""`evbridge probe modbus` recognises simulated boxes and explains unreachable ones."""

from __future__ import annotations

import argparse

import anyio
import pytest

from adapters.modbus.mapping import load_mapping
from adapters.modbus.probe import _probe, add_arguments
from adapters.sim.modbus_server import ModbusWallboxSim
from bridge.clock import FakeClock

pytestmark = pytest.mark.anyio


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize("name", ["alfen-eve", "keba-p30", "webasto-next"])
async def test_probe_names_the_right_map_first(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    async with ModbusWallboxSim(load_mapping(name), FakeClock()) as sim:
        code = await _probe(args(f"127.0.0.1:{sim.port}", "--timeout", "1"))
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0].startswith(f"{name}:")
    assert f"mapping: {name}, host: 127.0.0.1, port: {sim.port}" in out


async def test_probe_reports_refused_connection(capsys: pytest.CaptureFixture[str]) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nothing listens there now
    code = await _probe(args(f"127.0.0.1:{port}", "--timeout", "1"))
    assert code == 1
    assert "connection refused" in capsys.readouterr().err
