"""LPC-39 over two in-memory links: the device subscribes to the EMS heartbeat, retrying a refusal."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bridge.clock import FakeClock
from bridge.eebus.device_service import watch_heartbeat
from bridge.eebus.spine.ems import EmsDevice
from bridge.eebus.spine.link import SpineLink
from bridge.eebus.spine.session import SpineSession
from tests.unit.spine.test_golden import acme

pytestmark = pytest.mark.anyio


class MemoryTransport:
    def __init__(
        self, ski: str, tx: MemoryObjectSendStream[dict[str, Any]], rx: MemoryObjectReceiveStream[dict[str, Any]]
    ) -> None:
        self.peer_ski = ski
        self._tx, self._rx = tx, rx

    async def send_spine(self, payload: dict[str, Any]) -> None:
        await self._tx.send(payload)

    async def receive_spine(self) -> dict[str, Any]:
        return await self._rx.receive()


async def test_device_subscribes_to_ems_heartbeat_after_a_refusal() -> None:
    device_session, endpoint, _ = acme()
    clock = FakeClock()
    device_session.clock = clock
    ems = EmsDevice(clock)
    ems_session = SpineSession(ems.device, clock, "device-ski")
    refused: list[int] = []
    original = ems_session._node_management

    def refuse_first(cls: str, header: dict[str, Any], cmd: dict[str, Any], function: Any, source: Any) -> Any:
        if function == "nodeManagementSubscriptionRequestCall" and not refused:
            refused.append(header["msgCounter"])
            return [ems_session._result(header, 1, "client feature not found")]
        return original(cls, header, cmd, function, source)

    ems_session._node_management = refuse_first  # type: ignore[method-assign]
    to_ems_tx, to_ems_rx = anyio.create_memory_object_stream[dict[str, Any]](100)
    to_dev_tx, to_dev_rx = anyio.create_memory_object_stream[dict[str, Any]](100)
    device_link = SpineLink(device_session, MemoryTransport("ems-ski", to_ems_tx, to_dev_rx), clock)
    ems_link = SpineLink(ems_session, MemoryTransport("device-ski", to_dev_tx, to_ems_rx), clock)
    async with anyio.create_task_group() as tg:
        tg.start_soon(device_link.run)
        tg.start_soon(ems_link.run)
        with anyio.fail_after(5):
            async with anyio.create_task_group() as watch:
                watch.start_soon(watch_heartbeat, device_link)
                while not ems_session.subscriptions:
                    await clock.run_for(0.5, 0.5)
        assert len(refused) == 1
        (sub,) = ems_session.subscriptions
        assert sub.client.entity == (1,) and sub.client.feature == 5 and sub.server == ((1,), 5)
        # the heartbeat read that follows counts for LPC (no binding yet: any EMS counts)
        assert endpoint.lpc.last_heartbeat is not None
        tg.cancel_scope.cancel()
