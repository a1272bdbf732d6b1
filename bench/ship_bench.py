"""SHIP benchmark: handshakes and data-frame round trips over loopback TLS, against a same-run baseline.

    .venv/bin/python bench/ship_bench.py [--handshakes 100] [--round-trips 10000]

SHIP: two ShipNodes (pyOpenSSL TLS + websockets sans-I/O + the SHIP state
machine); the client sends a SPINE datagram in a SHIP data message and the
server echoes it.  Baseline: plain `websockets` (asyncio implementation) over
stdlib TLS with the same ECDSA P-256 certificates, echoing the same bytes
without SHIP.  Prints the figures and the SHIP/baseline ratios.
"""

from __future__ import annotations

import argparse
import json
import logging
import ssl
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection, serve

from bridge.clock import SystemClock
from bridge.eebus.ship import Identity, ShipConnection, ShipNode, TrustStore
from bridge.eebus.ship.codec import encode_data

DATAGRAM: dict[str, Any] = {
    "datagram": {
        "header": {
            "specificationVersion": "1.3.0",
            "addressSource": {"device": "d:_n:EG_1", "entity": [1], "feature": 1},
            "addressDestination": {"device": "d:_n:Acme_WB1-0001", "entity": [1], "feature": 1},
            "msgCounter": 31,
            "cmdClassifier": "write",
            "ackRequest": True,
        },
        "payload": {
            "cmd": [
                {
                    "function": "loadControlLimitListData",
                    "filter": [{"cmdControl": {"partial": {}}}],
                    "loadControlLimitListData": {
                        "loadControlLimitData": [
                            {
                                "limitId": 0,
                                "isLimitActive": True,
                                "timePeriod": {"endTime": "PT2H"},
                                "value": {"number": 4200, "scale": 0},
                            }
                        ]
                    },
                }
            ]
        },
    }
}


async def echo(conn: ShipConnection) -> None:
    async for datagram in conn:
        await conn.send_spine(datagram)


async def ship_run(state: Path, handshakes: int, round_trips: int) -> dict[str, float]:
    a = Identity.load_or_create(state / "a", "wallbox")
    b = Identity.load_or_create(state / "b", "ems")
    clock = SystemClock()
    trust_a, trust_b = TrustStore(None, [b.ski]), TrustStore(None, [a.ski])
    server = ShipNode(a, trust_a, clock, port=0, bind="127.0.0.1", on_connection=echo, ping_interval=0)
    client = ShipNode(b, trust_b, clock, port=None, ping_interval=0)
    async with server, client:
        times = []
        for _ in range(handshakes):
            start = time.perf_counter()
            conn = await client.connect("127.0.0.1", server.port, expected_ski=a.ski)
            times.append(time.perf_counter() - start)
            await conn.close()
        conn = await client.connect("127.0.0.1", server.port, expected_ski=a.ski)
        start = time.perf_counter()
        for _ in range(round_trips):
            await conn.send_spine(DATAGRAM)
            await conn.receive_spine()
        rtt = time.perf_counter() - start
        await conn.close()
    return {"handshake_total_s": sum(times), "handshake_median_ms": statistics.median(times) * 1000, "rtt_total_s": rtt}


async def baseline_run(state: Path, handshakes: int, round_trips: int) -> dict[str, float]:
    a = Identity.load_or_create(state / "a", "wallbox")
    b = Identity.load_or_create(state / "b", "ems")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(a.cert_path, a.key_path)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    client_ctx.load_cert_chain(b.cert_path, b.key_path)
    frame = encode_data(DATAGRAM)

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(handler, "127.0.0.1", 0, ssl=server_ctx, subprotocols=["ship"], max_size=1 << 20) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        uri = f"wss://127.0.0.1:{port}/ship/"
        times = []
        for _ in range(handshakes):
            start = time.perf_counter()
            ws = await ws_connect(uri, ssl=client_ctx, subprotocols=["ship"])
            times.append(time.perf_counter() - start)
            await ws.close()
        async with ws_connect(uri, ssl=client_ctx, subprotocols=["ship"], max_size=1 << 20) as ws:
            start = time.perf_counter()
            for _ in range(round_trips):
                await ws.send(frame)
                await ws.recv()
            rtt = time.perf_counter() - start
    return {"handshake_total_s": sum(times), "handshake_median_ms": statistics.median(times) * 1000, "rtt_total_s": rtt}


async def main(handshakes: int, round_trips: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        ship = await ship_run(state, handshakes, round_trips)
        base = await baseline_run(state, handshakes, round_trips)
    result = {
        "handshakes": handshakes,
        "round_trips": round_trips,
        "ship": ship,
        "baseline_websockets_tls": base,
        "ratio_handshake": ship["handshake_total_s"] / base["handshake_total_s"],
        "ratio_round_trip": ship["rtt_total_s"] / base["rtt_total_s"],
    }
    hs_ship, hs_base = ship["handshake_total_s"], base["handshake_total_s"]
    print(
        f"{handshakes} handshakes: SHIP {hs_ship:.2f} s (median {ship['handshake_median_ms']:.1f} ms), "
        f"TLS+WebSocket baseline {hs_base:.2f} s (median {base['handshake_median_ms']:.1f} ms), "
        f"ratio {result['ratio_handshake']:.2f}"
    )
    rt_ship, rt_base = ship["rtt_total_s"], base["rtt_total_s"]
    print(
        f"{round_trips} data-frame round trips: SHIP {rt_ship:.2f} s ({rt_ship / round_trips * 1e6:.0f} µs each), "
        f"baseline {rt_base:.2f} s ({rt_base / round_trips * 1e6:.0f} µs each), "
        f"ratio {result['ratio_round_trip']:.2f}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handshakes", type=int, default=100)
    parser.add_argument("--round-trips", type=int, default=10_000)
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    anyio.run(main, options.handshakes, options.round_trips)
