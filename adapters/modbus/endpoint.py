"""One owner task per Modbus endpoint (a TCP host:port or a serial bus), shared by its chargers.

Requests from every charger on the endpoint go through one queue, so they
never interleave on the wire; the owner keeps the minimum interval the map
asks for, reconnects with backoff, and translates pymodbus errors once into
the bridge's error tree (`ChargerUnreachable` retryable, `ChargerRejected`
for Modbus exceptions).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskStatus
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException, ModbusIOException
from pymodbus.framer import FramerType

from adapters.modbus.mapping import Table
from bridge.clock import Clock
from bridge.errors import AdapterError, ChargerRejected, ChargerUnreachable

log = logging.getLogger(__name__)

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    6: "device busy",
}


@dataclass(frozen=True)
class EndpointKey:
    """TCP: host and port; serial: the device path (port 0)."""

    host: str
    port: int
    framer: str = "socket"


@dataclass
class _Request:
    op: str
    unit: int
    table: Table
    address: int
    count: int = 1
    words: list[int] | None = None
    function: int = 16


class ModbusEndpoint:
    def __init__(
        self,
        key: EndpointKey,
        clock: Clock,
        *,
        timeout_s: float = 3.0,
        min_interval_s: float = 0.0,
        baudrate: int = 19200,
        parity: str = "E",
        stopbits: int = 1,
        backoff_max_s: float = 30.0,
        retries: int = 1,
    ) -> None:
        self.key = key
        self.clock = clock
        self.timeout_s = timeout_s
        self.min_interval_s = min_interval_s
        self._serial = (baudrate, parity, stopbits)
        self._backoff_max_s = backoff_max_s
        self.retries = retries  # serial only: a lost frame on RS-485 is asked again; TCP reconnects instead
        self._send, self._receive = anyio.create_memory_object_stream[tuple[_Request, Any]](64)
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._last_request = float("-inf")
        self._failures = 0
        self._retry_at = float("-inf")

    # -- API for chargers ------------------------------------------------------------------
    async def read(self, unit: int, table: Table, address: int, count: int) -> list[int]:
        result: list[int] = await self._call(_Request("read", unit, table, address, count))
        return result

    async def write(self, unit: int, table: Table, address: int, words: list[int], function: int) -> None:
        await self._call(_Request("write", unit, table, address, len(words), words, function))

    async def _call(self, request: _Request) -> Any:
        reply_send, reply_receive = anyio.create_memory_object_stream[Any](1)
        try:
            await self._send.send((request, reply_send))
            async with reply_receive:
                outcome = await reply_receive.receive()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
            raise ChargerUnreachable(f"Modbus {self._where()}: the connection owner has stopped") from None
        if isinstance(outcome, AdapterError):
            raise outcome
        return outcome

    # -- the owner task -------------------------------------------------------------------------
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            async with self._receive:
                async for request, reply in self._receive:
                    async with reply:
                        try:
                            outcome = await self._execute(request)
                        except AdapterError as exc:
                            outcome = exc
                        try:
                            await reply.send(outcome)
                        except anyio.BrokenResourceError:
                            pass  # the caller gave up (its own deadline)
        finally:
            self._close()

    async def _execute(self, request: _Request) -> Any:
        client = await self._connected()
        serial = self.key.framer != "socket"
        attempts = 1 + (self.retries if serial else 0)
        for attempt in range(1, attempts + 1):
            # Pacing on the wire is I/O timing (the box's own limit), so it uses the event loop's clock.
            wait = self._last_request + self.min_interval_s - anyio.current_time()
            if wait > 0:
                await anyio.sleep(wait)
            self._last_request = anyio.current_time()
            try:
                with anyio.fail_after(self.timeout_s + (0.5 if serial else 0)):
                    response = await self._perform(client, request)
                break
            except (TimeoutError, ModbusIOException) as exc:
                why = f"no answer within {self.timeout_s:g} s" if isinstance(exc, TimeoutError) else str(exc)
                if not serial:
                    self._drop(why)
                    raise ChargerUnreachable(f"Modbus {self._where()}: {why}") from None
                if attempt < attempts:
                    log.info("Modbus %s unit %d: %s, retrying", self._where(), request.unit, why)
                    continue
                # On a serial bus silence means this one box is away: the port stays open for the others.
                raise ChargerUnreachable(
                    f"Modbus {self._where()} unit {request.unit}: no answer within {self.timeout_s:g} s"
                ) from None
            except (ModbusException, OSError) as exc:
                self._drop(str(exc))
                raise ChargerUnreachable(f"Modbus {self._where()}: {exc}") from None
        if response.isError():
            code = getattr(response, "exception_code", 0)
            name = EXCEPTION_NAMES.get(code, "error")
            at = f"{request.table.value} {request.address}"
            raise ChargerRejected(f"Modbus {self._where()} unit {request.unit}: exception {code} ({name}) at {at}")
        self._failures = 0
        if request.op == "read":
            if request.table in (Table.COIL, Table.DISCRETE):
                return [int(b) for b in response.bits[: request.count]]
            return list(response.registers)
        return None

    async def _perform(self, client: Any, r: _Request) -> Any:
        kw = {"device_id": r.unit}
        if r.op == "read":
            readers: dict[Table, Callable[..., Awaitable[Any]]] = {
                Table.HOLDING: client.read_holding_registers,
                Table.INPUT: client.read_input_registers,
                Table.COIL: client.read_coils,
                Table.DISCRETE: client.read_discrete_inputs,
            }
            return await readers[r.table](r.address, count=r.count, **kw)
        assert r.words is not None
        if r.table is Table.COIL:
            return await client.write_coil(r.address, bool(r.words[0]), **kw)
        if r.function == 6 and len(r.words) == 1:
            return await client.write_register(r.address, r.words[0], **kw)
        return await client.write_registers(r.address, r.words, **kw)

    async def _connected(self) -> Any:
        if self._client is not None and self._client.connected:
            return self._client
        now = self.clock.monotonic()
        if now < self._retry_at:
            raise ChargerUnreachable(f"Modbus {self._where()}: reconnect in {self._retry_at - now:.1f} s")
        self._close()
        if self.key.framer == "socket":
            client: Any = AsyncModbusTcpClient(self.key.host, port=self.key.port, timeout=self.timeout_s, retries=0)
        else:
            baud, parity, stop = self._serial
            framer = FramerType.ASCII if self.key.framer == "ascii" else FramerType.RTU
            client = AsyncModbusSerialClient(
                self.key.host,
                framer=framer,
                baudrate=baud,
                parity=parity,
                stopbits=stop,
                timeout=self.timeout_s,
                retries=0,
            )
        try:
            with anyio.fail_after(self.timeout_s + 1):
                ok = await client.connect()
        except (TimeoutError, OSError, ModbusException):
            ok = False
        if not ok:
            client.close()
            self._schedule_retry()
            raise ChargerUnreachable(f"Modbus {self._where()}: connection refused or timed out")
        log.info("Modbus %s: connected", self._where())
        self._client = client
        return client

    def _schedule_retry(self) -> None:
        delay = min(self._backoff_max_s, 0.5 * 2**self._failures)
        self._failures += 1
        self._retry_at = self.clock.monotonic() + delay * (0.5 + random.random() / 2)

    def _drop(self, why: str) -> None:
        log.warning("Modbus %s: dropping the connection (%s)", self._where(), why)
        self._close()
        self._schedule_retry()

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _where(self) -> str:
        return f"{self.key.host}:{self.key.port}" if self.key.framer == "socket" else self.key.host
