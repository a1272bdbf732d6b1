"""`evbridge ems` as a separate process against a running bridge over loopback TLS.

The bridge runs in the test's event loop on a FakeClock (its timers do not
move by themselves); the EMS tool is a real `evbridge` process with its own
identity, trusted by the bridge's configuration as `evbridge trust add` would.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import anyio
import pytest

from bridge.clock import FakeClock
from bridge.config import load_config_text
from bridge.core.coordinator import CoordinatorSettings
from bridge.eebus.ship import Identity
from bridge.runtime.app import Bridge
from bridge.runtime.eebus_wiring import run_eebus
from tests.eebus_stack import advance, free_port, until

pytestmark = pytest.mark.anyio


async def evbridge(*args: str) -> tuple[int, str, str]:
    with anyio.fail_after(30):
        done = await anyio.run_process(
            [sys.executable, "-m", "bridge.cli", "--log-level", "WARNING", *args], check=False
        )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_ems_cli_reads_writes_and_reports_denials(tmp_path: Path) -> None:
    bridge_state, ems_state = tmp_path / "bridge", tmp_path / "ems"
    code, out, _ = await evbridge("ems", "--state-dir", str(ems_state), "ski")
    assert code == 0
    ems_ski = out.strip()
    assert ems_ski == Identity.load_or_create(ems_state, "ems").ski
    device_ski = Identity.load_or_create(bridge_state, "garage").ski
    port = free_port()
    config = f"""
chargers:
  - id: garage
    adapter: {{type: sim, phases: 3, max_current_a: 16, ramp_a_per_s: 100}}
    eebus: {{port: {port}}}
eebus:
  bind: 127.0.0.1
  mdns: {{enabled: false}}
  trusted_skis: [{ems_ski}]
"""
    clock = FakeClock()
    bridge = Bridge(
        load_config_text(config, "cli.yaml"), clock, bridge_state, coordinator_settings=CoordinatorSettings(1)
    )
    target = ["--host", "127.0.0.1", "--port", str(port)]
    async with anyio.create_task_group() as tg:
        await tg.start(lambda task_status: bridge.run(extra_services=[run_eebus], task_status=task_status))
        await advance(clock, 2)
        physics = bridge.chargers["garage"].charger.physics  # type: ignore[attr-defined]

        # read: use cases, LPC state, measurements, manufacturer data as JSON
        code, out, err = await evbridge("ems", "--state-dir", str(ems_state), "read", device_ski, *target)
        assert code == 0, err
        data = json.loads(out)
        assert {"actor": "ControllableSystem", "useCaseName": "limitationOfPowerConsumption"}.items() <= next(
            u for u in data["use_cases"] if u["actor"] == "ControllableSystem"
        ).items()
        assert data["lpc"]["active"] is False and data["lpc"]["failsafe_limit_w"] == 4200
        assert "acPowerTotal" in data["measurements"]
        assert f"evbridge trust add {ems_ski}" in err

        # limit --once: accepted, and the charger gets floor(4200 / (3 * 230)) = 6 A
        code, out, err = await evbridge(
            "ems", "--state-dir", str(ems_state), "limit", device_ski, "4200", "--once", *target
        )
        assert code == 0, err
        assert "limit 4200 W accepted" in out
        await until(lambda: physics.setpoint_a == 6, clock)

        # a denied write: exit 1 with the device's reason, never a traceback
        code, out, err = await evbridge(
            "ems", "--state-dir", str(ems_state), "failsafe", device_ski, "--watts", "3000", "--duration", "1", *target
        )
        assert code == 1 and "error 7" in err and "PT2H" in err and "Traceback" not in err
        code, out, err = await evbridge(
            "ems", "--state-dir", str(ems_state), "failsafe", device_ski, "--watts", "3000", "--duration", "3", *target
        )
        assert code == 0, err
        assert bridge.devices["garage"].lpc.failsafe.consumption_limit_w == 3000

        # without --once: heartbeats and live measurements until Ctrl-C, then a clean exit
        command = [sys.executable, "-m", "bridge.cli", "--log-level", "WARNING", "ems", "--state-dir", str(ems_state)]
        async with await anyio.open_process([*command, "limit", device_ski, "5000", *target]) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            seen = ""
            with anyio.fail_after(20):
                while "power " not in seen:
                    seen += (await proc.stdout.receive()).decode()
            assert "limit 5000 W accepted" in seen
            assert bridge.devices["garage"].lpc.limit.value_w == 5000
            proc.send_signal(signal.SIGINT)
            with anyio.fail_after(10):
                code = await proc.wait()
            err = b""
            with anyio.move_on_after(2):
                async for chunk in proc.stderr:
                    err += chunk
        assert code == 130 and b"Traceback" not in err, err.decode()
        tg.cancel_scope.cancel()


async def test_ems_cli_discovers_the_device_by_mdns_and_reads_it_by_ski(tmp_path: Path) -> None:
    bridge_state, ems_state = tmp_path / "bridge", tmp_path / "ems"
    ems_ski = Identity.load_or_create(ems_state, "ems").ski
    device_ski = Identity.load_or_create(bridge_state, "garage").ski
    port = free_port()
    config = f"""
chargers:
  - id: garage
    adapter: {{type: sim, phases: 3, max_current_a: 16}}
    eebus: {{port: {port}}}
eebus:
  bind: 127.0.0.1
  mdns: {{enabled: true, interface: 127.0.0.1}}
  trusted_skis: [{ems_ski}]
"""
    clock = FakeClock()
    bridge = Bridge(
        load_config_text(config, "mdns.yaml"), clock, bridge_state, coordinator_settings=CoordinatorSettings(1)
    )
    async with anyio.create_task_group() as tg:
        await tg.start(lambda task_status: bridge.run(extra_services=[run_eebus], task_status=task_status))
        await advance(clock, 2)
        state = ["ems", "--state-dir", str(ems_state)]
        code, out, err = await evbridge(*state, "discover", "--interface", "127.0.0.1", "--seconds", "4")
        assert code == 0, err
        (line,) = [row for row in out.splitlines() if row.startswith(device_ski)]
        assert f":{port}" in line and "ChargingStation" in line
        code, out, err = await evbridge(*state, "read", device_ski.upper(), "--interface", "127.0.0.1")
        assert code == 0, err
        assert json.loads(out)["lpc"]["failsafe_limit_w"] == 4200
        tg.cancel_scope.cancel()
