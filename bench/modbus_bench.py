"""Modbus benchmark: N simulated chargers polled every second over loopback TCP.

A child process serves N simulated wallboxes (one TCP port each).  This
process polls them for `--seconds`, first through the bridge's adapter
(`ModbusCharger.read()`: mapping decode, one owner task per endpoint), then,
as the same-run baseline, with a bare pymodbus client loop doing the same
register reads without decoding.  Reported: CPU seconds used by this process,
peak RSS, p50/p99 latency of one charger poll, and polls completed.

Run: .venv/bin/python bench/modbus_bench.py [--chargers 200] [--seconds 60]
     [--mapping heidelberg-energy-control]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.modbus.factory import ModbusFactory  # noqa: E402
from adapters.modbus.mapping import load_mapping  # noqa: E402
from bridge.clock import SystemClock  # noqa: E402
from bridge.ports import AdapterDeps  # noqa: E402

SERVER = r"""
import sys, anyio
from contextlib import AsyncExitStack
from adapters.modbus.mapping import load_mapping
from adapters.sim.modbus_server import ModbusWallboxSim

async def main(n, mapping, base):
    async with AsyncExitStack() as stack:
        for i in range(n):
            await stack.enter_async_context(ModbusWallboxSim(load_mapping(mapping), port=base + i))
        print("ready", flush=True)
        await anyio.sleep_forever()

anyio.run(main, int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), backend="asyncio")
"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def poll_loop(seconds: float, n: int, poll: Any) -> list[float]:
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def one(i: int) -> None:
        next_at = time.perf_counter()
        while next_at < end:
            start = time.perf_counter()
            await poll(i)
            latencies.append(time.perf_counter() - start)
            next_at += 1.0
            await anyio.sleep(max(0.0, next_at - time.perf_counter()))

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    return latencies


async def bench_adapter(n: int, seconds: float, mapping: str, base: int) -> list[float]:
    async with ModbusFactory(AdapterDeps(SystemClock(), Path("/tmp"))) as factory:
        chargers = [
            factory.create(
                f"c{i}",
                factory.validate_options(
                    {"mapping": mapping, "host": "127.0.0.1", "port": base + i, "min_interval_ms": 0}
                ),
            )
            for i in range(n)
        ]

        async def poll(i: int) -> None:
            await chargers[i].read()

        return await poll_loop(seconds, n, poll)


async def bench_bare(n: int, seconds: float, mapping: str, base: int) -> list[float]:
    from pymodbus.client import AsyncModbusTcpClient

    m = load_mapping(mapping)
    reads = [(m.unit_of(p), p.table.value, p.address, p.words) for p in m.points.values() if p.readable]
    clients = [AsyncModbusTcpClient("127.0.0.1", port=base + i, timeout=3, retries=0) for i in range(n)]
    for c in clients:
        await c.connect()

    async def poll(i: int) -> None:
        c = clients[i]
        for unit, table, address, count in reads:
            fn = c.read_input_registers if table == "input" else c.read_holding_registers
            await fn(address, count=count, device_id=unit)

    try:
        return await poll_loop(seconds, n, poll)
    finally:
        for c in clients:
            c.close()


def report(name: str, latencies: list[float], cpu: float, seconds: float) -> dict[str, float]:
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    share = 100 * cpu / seconds
    print(f"  {name}: polls {len(latencies)}, CPU {cpu:.1f} s ({share:.0f} % of one core), peak RSS {rss_mb:.0f} MB")
    print(f"    poll p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    return {"cpu": cpu, "p50": p50, "p99": p99, "polls": len(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chargers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--mapping", default="heidelberg-energy-control")
    parser.add_argument("--base-port", type=int, default=25000)
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(args.chargers), args.mapping, str(args.base_port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None and b"ready" in server.stdout.readline()
        points = sum(1 for p in load_mapping(args.mapping).points.values() if p.readable)
        what = f"{args.chargers} simulated {args.mapping} chargers ({points} register reads each)"
        print(f"{what} polled every second for {args.seconds:g} s:")
        t0 = cpu_seconds()
        adapter = anyio.run(bench_adapter, args.chargers, args.seconds, args.mapping, args.base_port, backend="asyncio")
        a = report("bridge adapter", adapter, cpu_seconds() - t0, args.seconds)
        t0 = cpu_seconds()
        bare = anyio.run(bench_bare, args.chargers, args.seconds, args.mapping, args.base_port, backend="asyncio")
        b = report("bare pymodbus (baseline)", bare, cpu_seconds() - t0, args.seconds)
        ratios = f"CPU {a['cpu'] / b['cpu']:.2f}, p50 {a['p50'] / b['p50']:.2f}, p99 {a['p99'] / b['p99']:.2f}"
        print(f"  ratio adapter/baseline: {ratios}")
        print(f"  mean poll (adapter) {statistics.mean(adapter) * 1000:.1f} ms")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
