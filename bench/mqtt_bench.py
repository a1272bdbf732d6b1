"""MQTT southbound benchmark: N go-e chargers publishing every second through a real mosquitto.

Three processes: mosquitto, the simulator fleet (`--role sim`, one connection
for all chargers, publishes spread evenly over each interval), and the bridge
side measured here (one `MqttFactory`, one link, N mapped chargers).  Every
tick the simulator stamps its wall-clock publish time into go-e `eto`
(Wh field, in ms since the epoch) so the bridge can measure the delay from
publish to (a) the message reaching the link owner (same-run baseline: paho +
broker + our loop, no codec) and (b) a rebuilt canonical `ChargerSnapshot`
carrying that value (codec + state + snapshot).  CPU and RSS are reported per
process.

    .venv/bin/python bench/mqtt_bench.py                      # 500 chargers, 60 s
    .venv/bin/python bench/mqtt_bench.py --chargers 50 --duration 10 --warmup 2
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.mqtt.factory import MqttFactory  # noqa: E402
from adapters.mqtt.mapping import PointName  # noqa: E402
from adapters.sim.mqtt_charger import GoeSimConfig, MqttChargerSimulator  # noqa: E402
from bridge.clock import SystemClock  # noqa: E402
from bridge.mqttio import LinkSettings  # noqa: E402
from bridge.ports import AdapterDeps  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def serials(n: int) -> list[str]:
    return [f"{i:06d}" for i in range(n)]


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# -- simulator process ------------------------------------------------------------------------------------------
async def run_sim(port: int, n: int, interval: float) -> None:
    clock = SystemClock()
    configs = [GoeSimConfig(serial=s) for s in serials(n)]
    sim = MqttChargerSimulator(LinkSettings("127.0.0.1", port, client_id="bench-sim"), clock, configs)
    slices = 20
    groups = [serials(n)[i::slices] for i in range(slices)]
    async with anyio.create_task_group() as tg:
        await tg.start(sim.link.run)
        await sim.link.wait_connected(10)
        print("ready", flush=True)
        next_at = clock.monotonic()
        while True:
            for group in groups:
                next_at += interval / slices  # absolute schedule: publishing time does not stretch the interval
                await clock.sleep(next_at - clock.monotonic())
                sim.publish_tick([])  # advance the physics first, so the stamp is taken right before publishing
                stamp = clock.now().timestamp() * 1000.0
                for s in group:
                    sim.devices[s].energy_override_wh = stamp
                if sim.link.connected:
                    sim.publish_tick(group)


# -- bridge side ------------------------------------------------------------------------------------------------
async def run_bridge(args: argparse.Namespace, port: int) -> dict[str, float]:
    clock = SystemClock()
    link_delays: list[float] = []
    snap_delays: list[float] = []
    measuring = False
    last_eto: dict[str, float] = {}
    snapshots = 0
    with tempfile.TemporaryDirectory() as state:
        factory = MqttFactory(AdapterDeps(clock=clock, state_dir=Path(state)))
        async with factory:
            chargers = {}
            for s in serials(args.chargers):
                opts = factory.validate_options(
                    {"type": "mqtt", "mapping": "goe", "port": port, "variables": {"serial": s}}
                )
                chargers[s] = factory.create(f"wb{s}", opts)
            link = factory.links()[0]
            dispatch = link._on_message

            received = 0

            def timed_dispatch(topic: str, payload: bytes, retained: bool) -> None:
                nonlocal received
                received += measuring
                if measuring and not retained and topic.endswith("/eto"):
                    link_delays.append(clock.now().timestamp() * 1000.0 - float(payload))
                dispatch(topic, payload, retained)

            link._on_message = timed_dispatch

            def listener(charger_id: str) -> None:
                nonlocal snapshots
                charger = chargers[charger_id[2:]]
                reading = charger.state.values.get(PointName.ENERGY)
                if reading is None or last_eto.get(charger_id) == reading.value:
                    return
                snap = charger.state.snapshot(
                    charger_id, clock.now(), clock.monotonic(), charger.capabilities.characteristics
                )
                snapshots += 1
                last_eto[charger_id] = reading.value  # type: ignore[assignment]
                if measuring and snap.measurement.energy_wh is not None:
                    snap_delays.append(clock.now().timestamp() * 1000.0 - snap.measurement.energy_wh)

            for c in chargers.values():
                c.add_listener(listener)
            await link.wait_connected(10)
            cmd = [sys.executable, __file__, "--role", "sim", "--port", str(port)]
            cmd += ["--chargers", str(args.chargers), "--interval", str(args.interval)]
            sim = await anyio.open_process(cmd, stderr=None)
            try:
                assert sim.stdout is not None
                with anyio.fail_after(30):
                    line = await sim.stdout.receive()
                assert line.strip() == b"ready", line
                await anyio.sleep(args.warmup)
                measuring = True
                cpu0 = resource.getrusage(resource.RUSAGE_SELF)
                sim_cpu0 = proc_cpu_s(sim.pid)
                broker_cpu0 = proc_cpu_s(args.broker_pid)
                t0 = clock.monotonic()
                await anyio.sleep(args.duration)
                elapsed = clock.monotonic() - t0
                measuring = False
                cpu1 = resource.getrusage(resource.RUSAGE_SELF)
                sim_cpu = proc_cpu_s(sim.pid) - sim_cpu0
                broker_cpu = proc_cpu_s(args.broker_pid) - broker_cpu0
                sim_rss = proc_rss_mb(sim.pid)
                broker_rss = proc_rss_mb(args.broker_pid)
            finally:
                sim.terminate()
                with anyio.move_on_after(10):
                    await sim.wait()
            stale = 0
            for c in chargers.values():
                if not c.state.available(clock.monotonic()):
                    stale += 1
            bridge_cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
            return {
                "elapsed": elapsed,
                "bridge_cpu_pct": 100 * bridge_cpu / elapsed,
                "bridge_rss_mb": proc_rss_mb(os.getpid()),
                "bridge_maxrss_mb": cpu1.ru_maxrss / 1024,
                "sim_cpu_pct": 100 * sim_cpu / elapsed,
                "sim_rss_mb": sim_rss,
                "broker_cpu_pct": 100 * broker_cpu / elapsed,
                "broker_rss_mb": broker_rss,
                "updates_per_s": len(snap_delays) / elapsed,
                "snapshots": snapshots,
                "messages_per_s": received / elapsed,
                "link_p50": pct(link_delays, 0.5),
                "link_p99": pct(link_delays, 0.99),
                "snap_p50": pct(snap_delays, 0.5),
                "snap_p99": pct(snap_delays, 0.99),
                "snap_mean": statistics.fmean(snap_delays) if snap_delays else float("nan"),
                "stale": stale,
            }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chargers", type=int, default=500)
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--interval", type=float, default=1.0, help="publish interval per charger (s)")
    parser.add_argument("--role", choices=["bridge", "sim"], default="bridge")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.role == "sim":
        try:
            anyio.run(run_sim, args.port, args.chargers, args.interval)
        except KeyboardInterrupt:
            pass
        return 0

    from tests.integration.mosquitto import start_broker

    with tempfile.TemporaryDirectory() as tmp:
        broker = start_broker(Path(tmp) / "broker")
        assert broker._proc is not None
        args.broker_pid = broker._proc.pid
        try:
            r = anyio.run(run_bridge, args, broker.port)
        finally:
            broker.stop()
    print(f"MQTT bench: {args.chargers} go-e chargers, every {args.interval:g} s, {r['elapsed']:.0f} s measured")
    print(f"  snapshot updates/s      {r['updates_per_s']:.0f} (expected {args.chargers / args.interval:.0f})")
    print(f"  MQTT messages/s in      {r['messages_per_s']:.0f}")
    print(f"  publish→snapshot  p50 {r['snap_p50']:.2f} ms  p99 {r['snap_p99']:.2f} ms  mean {r['snap_mean']:.2f} ms")
    print(f"  baseline publish→link  p50 {r['link_p50']:.2f} ms  p99 {r['link_p99']:.2f} ms  (broker + paho only)")
    rss = f"RSS {r['bridge_rss_mb']:.0f} MB (peak {r['bridge_maxrss_mb']:.0f})"
    print(f"  bridge   CPU {r['bridge_cpu_pct']:.1f} %  {rss}")
    print(f"  sim      CPU {r['sim_cpu_pct']:.1f} %  RSS {r['sim_rss_mb']:.0f} MB")
    print(f"  mosquitto CPU {r['broker_cpu_pct']:.1f} %  RSS {r['broker_rss_mb']:.0f} MB")
    print(f"  chargers stale at end   {r['stale']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
