"""`evbridge probe modbus` recognises simulated boxes and explains unreachable ones."""

from __future__ import annotations

import argparse

import anyio
import pytest

from adapters.modbus.mapping import load_mapping
from adapters.modbus.probe import _probe, add_arguments, run, split_address
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


async def test_probe_over_ipv6_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    async with ModbusWallboxSim(load_mapping("heidelberg-energy-control"), FakeClock(), host="::1") as sim:
        code = await _probe(args(f"[::1]:{sim.port}", "--timeout", "1"))
    out = capsys.readouterr().out
    assert code == 0 and out.splitlines()[0].startswith("heidelberg-energy-control:")
    assert f"host: '::1', port: {sim.port}" in out


def test_address_forms() -> None:
    assert split_address("192.0.2.10") == ("192.0.2.10", None)
    assert split_address("wallbox.local:1502") == ("wallbox.local", 1502)
    assert split_address("[fe80::1]:502") == ("fe80::1", 502)
    assert split_address("fe80::1") == ("fe80::1", None)
    for bad in ("host:port", "[::1]:99999", ":502"):
        with pytest.raises(ValueError):
            split_address(bad)
    assert run(args("host:notaport")) == 2


async def test_probe_reports_a_silent_box_as_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    async def silent(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await anyio.sleep(10)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, silent)
        with anyio.fail_after(20):
            code = await _probe(args(f"127.0.0.1:{port}", "--timeout", "0.3"))
        tg.cancel_scope.cancel()
    assert code == 1
    assert "no answer within 0.3 s" in capsys.readouterr().err


async def test_probe_reports_modbus_exceptions(capsys: pytest.CaptureFixture[str]) -> None:
    async with ModbusWallboxSim(load_mapping("keba-p30"), FakeClock()) as sim:
        sim.faults.exception_code = 2
        code = await _probe(args(f"127.0.0.1:{sim.port}", "--timeout", "1"))
    err = capsys.readouterr().err
    assert code == 1 and "exception 2 (illegal data address)" in err and "Traceback" not in err
