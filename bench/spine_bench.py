"""SPINE benchmark: LPC write → Command latency, and notifies per second per connection.

1. 1,000 LPC writes (alternating 5,000 W / 11,000 W) are fed as datagrams to
   a SPINE session of a running bridge (simulated charger, real event loop,
   system clock); the latency is from `session.receive()` of the write to
   the coordinator receiving the new `Command` (LPC decision, journal fsync,
   state file fsync, allocation).  Baseline in the same run: the same path
   without SPINE (`ExposedDevice.write_limit` called directly).
2. Notifies per second for one connection: a subscribed Measurement feature
   whose value changes before every round; each round produces a notify
   datagram that is also encoded to EEBus JSON bytes, as SHIP sends it.

Run: .venv/bin/python bench/spine_bench.py [--writes 1000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.clock import FakeClock, SystemClock
from bridge.config import load_config_text
from bridge.eebus.ship.eebus_json import to_eebus
from bridge.eebus.spine.device import FeatureAddress, LocalDevice
from bridge.eebus.spine.ems import limit_write
from bridge.eebus.spine.evse import EvseDevice, EvseSource
from bridge.eebus.spine.session import SpineSession
from bridge.runtime.app import Bridge

CONFIG = "chargers:\n  - id: garage\n    adapter: {type: sim}\n"
EG_LC = FeatureAddress("d:_n:EG", (1,), 1)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def write_latency(writes: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        bridge = Bridge(load_config_text(CONFIG, "bench.yaml"), SystemClock(), Path(tmp))
        async with anyio.create_task_group() as tg:
            await tg.start(bridge.run)
            device = bridge.devices["garage"]
            handle = bridge.chargers["garage"]
            evse = EvseDevice(
                "garage",
                EvseSource(lambda: bridge.snapshot("garage"), handle.charger.capabilities.characteristics, device),
                bridge.clock,
            )
            session = SpineSession(evse.device, bridge.clock, "bench")
            evse.device.bind(EG_LC, ((1,), 1), session.owner)
            got = anyio.Event()
            original = handle.coordinator.set_command
            seen: list[float] = []

            def set_command(command: Any) -> None:
                original(command)
                seen.append(time.perf_counter())
                got.set()

            handle.coordinator.set_command = set_command  # type: ignore[method-assign]
            device.heartbeat()

            async def measure(action: Any) -> list[float]:
                nonlocal got
                out = []
                for i in range(writes):
                    if i % 20 == 0:
                        device.heartbeat()
                    got = anyio.Event()
                    seen.clear()
                    start = time.perf_counter()
                    action(5000 if i % 2 else 11_000, i)
                    await got.wait()
                    out.append(seen[0] - start)
                return out

            def via_spine(watts: float, i: int) -> None:
                message = session.request(
                    "write",
                    ((1,), 1),
                    FeatureAddress(evse.device.address, (1,), 1),
                    limit_write(watts, True, None),
                    ack=True,
                )
                message["datagram"]["header"]["addressSource"] = EG_LC.to_json()
                (result,) = session.receive(message)[:1]
                assert result["datagram"]["payload"]["cmd"][0]["resultData"]["errorNumber"] == 0

            spine = await measure(via_spine)
            direct = await measure(lambda watts, i: device.write_limit(watts, True, None))
            tg.cancel_scope.cancel()
    return spine, direct


def notify_rate(seconds: float = 2.0) -> tuple[float, int]:
    clock = FakeClock()
    box = {"v": 0}
    device = LocalDevice("d:_n:dev", "ChargingStation")
    device.add_feature((0,), 0, "NodeManagement", "special")
    device.add_feature((1,), 6, "Measurement", "server").add(
        "measurementListData",
        lambda: {
            "measurementData": [
                {
                    "measurementId": i,
                    "valueType": "value",
                    "value": {"number": box["v"] + i, "scale": -1},
                    "valueSource": "measuredValue",
                }
                for i in range(12)
            ]
        },
    )
    session = SpineSession(device, clock, "bench")
    session._subscribe(FeatureAddress("d:_n:EMS", (1,), 6), ((1,), 6))
    count, size = 0, 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        box["v"] += 1
        clock.advance(1.0)
        for message in session.tick():
            size = len(json.dumps(to_eebus(message)).encode())
            count += 1
    return count / (time.perf_counter() - start), size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=1000)
    args = parser.parse_args()
    spine, direct = anyio.run(write_latency, args.writes, backend="asyncio")
    ms = 1000
    print(f"LPC write → Command over {args.writes} writes (SPINE datagram in, includes journal + state fsync):")
    for name, values in (("SPINE", spine), ("baseline (ExposedDevice.write_limit directly)", direct)):
        p50, p99, mean = percentile(values, 50) * ms, percentile(values, 99) * ms, statistics.mean(values) * ms
        print(f"  {name}: p50 {p50:.3f} ms  p99 {p99:.3f} ms  mean {mean:.3f} ms")
    print(f"  ratio p50 {percentile(spine, 50) / percentile(direct, 50):.2f}")
    rate, size = notify_rate()
    print(f"notifies per second, one connection (12 measurements, EEBus JSON encoded, {size} bytes each): {rate:,.0f}")


if __name__ == "__main__":
    main()
