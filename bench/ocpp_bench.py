"""OCPP benchmark: N simulated charge points against the bridge's CSMS on loopback.

The simulated fleet runs in a child process (so the figures are the bridge's
own): every charge point sends MeterValues every `--meter-interval` seconds.
The parent runs the OCPP adapter factory and measures, over `--duration`
seconds of steady state, its CPU time and RSS; then it changes the `Command`
of every charger at once and measures the time until all N profiles are
Accepted and verified (SetChargingProfile + GetCompositeSchedule each).
Baseline in the same run: CPU and RSS of the bridge with the CSMS listening
and no charge point connected.

    .venv/bin/python bench/ocpp_bench.py                     # 500 CPs, 60 s
    .venv/bin/python bench/ocpp_bench.py --count 50 --duration 10
"""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.ocpp.factory import OcppFactory
from adapters.sim.ocpp_cp import start_charge_points
from bridge.clock import SystemClock
from bridge.model import Command
from bridge.ports import AdapterDeps


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _fleet(url: str, count: int, interval: float, version: str) -> None:
    """Child process: run the simulated charge points until stdin closes."""
    async with start_charge_points(url, count, SystemClock(), version=version, prefix="B", meter_interval_s=interval):
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)


async def _bridge(args: argparse.Namespace) -> None:
    deps = AdapterDeps(
        clock=SystemClock(),
        state_dir=Path(tempfile.mkdtemp()),
        options={"host": "127.0.0.1", "port": 0, "meter_interval_s": int(args.meter_interval), "call_timeout_s": 30},
    )
    factory = OcppFactory(deps)
    async with factory:
        chargers = [
            factory.create(f"c{i}", factory.validate_options({"type": "ocpp", "charge_point_id": f"B-{i}"}))
            for i in range(1, args.count + 1)
        ]
        server = await factory.wait_started()
        cpu0, t0 = time.process_time(), time.monotonic()
        await anyio.sleep(min(5.0, args.duration))
        idle_cpu = (time.process_time() - cpu0) / (time.monotonic() - t0) * 100
        idle_rss = _rss_mb()

        cmd = [sys.executable, __file__, "--fleet", f"ws://127.0.0.1:{server.port}", "--count", str(args.count)]
        cmd += ["--meter-interval", str(args.meter_interval), "--version", args.version]
        child = await anyio.open_process(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            assert child.stdout is not None
            t_connect = time.monotonic()
            with anyio.fail_after(300):
                line = b""
                while b"ready" not in line:
                    line += await child.stdout.receive()
                while len(server.sessions) < args.count or not all(s.ready.is_set() for s in server.sessions.values()):  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            connect_s = time.monotonic() - t_connect
            await anyio.sleep(1.0)  # let the boot burst settle

            cpu0, t0 = time.process_time(), time.monotonic()
            await anyio.sleep(args.duration)
            steady_s = time.monotonic() - t0
            steady_cpu = (time.process_time() - cpu0) / steady_s * 100
            steady_rss = _rss_mb()
            meters = sum(1 for s in server.sessions.values() if s.connector(1).meter_at is not None)

            latencies: list[float] = []
            t_cmd = time.monotonic()

            async def one(charger: object, amps: float) -> None:
                await charger.apply(Command(charger_id=charger.charger_id, current_a=(amps, amps, amps)))  # type: ignore[attr-defined]
                latencies.append(time.monotonic() - t_cmd)

            with anyio.fail_after(120):
                async with anyio.create_task_group() as tg:
                    for charger in chargers:
                        tg.start_soon(one, charger, 10.0)
            all_s = time.monotonic() - t_cmd
        finally:
            if child.stdin is not None:
                await child.stdin.aclose()
            with anyio.move_on_after(10):
                await child.wait()
            if child.returncode is None:
                child.kill()

    print(f"OCPP {args.version}: {args.count} charge points, MeterValues every {args.meter_interval:.0f} s")
    print(f"  baseline (CSMS listening, no CP): CPU {idle_cpu:5.1f} %  RSS {idle_rss:6.1f} MB")
    print(f"  connect + boot + configure all:  {connect_s:6.2f} s")
    print(f"  steady state ({steady_s:.0f} s):          CPU {steady_cpu:5.1f} %  RSS {steady_rss:6.1f} MB")
    print(f"    {meters} of {args.count} charge points delivered meter values")
    print(f"  changed Command → all {args.count} profiles Accepted + verified: {all_s:6.3f} s")
    p95 = sorted(latencies)[int(0.95 * (len(latencies) - 1))]
    print(f"    per charger: median {statistics.median(latencies):.3f} s, p95 {p95:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--duration", type=float, default=60.0, help="steady-state measurement window (s)")
    parser.add_argument("--meter-interval", type=float, default=10.0)
    parser.add_argument("--version", choices=["1.6", "2.0.1"], default="1.6")
    parser.add_argument("--fleet", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    _raise_fd_limit()
    if args.fleet:
        anyio.run(_fleet, args.fleet, args.count, args.meter_interval, args.version)
    else:
        anyio.run(_bridge, args)


if __name__ == "__main__":
    main()
