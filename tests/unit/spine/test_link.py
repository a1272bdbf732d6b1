"""The link ends quietly when the connection closes under a send (no exception group escapes)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from bridge.clock import FakeClock
from bridge.eebus.ship.connection import ShipConnectionClosed
from bridge.eebus.spine.link import SpineLink
from bridge.eebus.spine.session import SpineSession
from tests.unit.spine.test_golden import STEP6_WRITE, acme

pytestmark = pytest.mark.anyio


class ClosingTransport:
    """Delivers one datagram, then the connection is gone: sends fail, receives end."""

    peer_ski = "eg-ski"

    def __init__(self, first: dict[str, Any]) -> None:
        self._first: dict[str, Any] | None = first
        self.sent = 0

    async def send_spine(self, payload: dict[str, Any]) -> None:
        self.sent += 1
        raise ShipConnectionClosed("closed under the send")

    async def receive_spine(self) -> dict[str, Any]:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        await anyio.sleep_forever()
        raise AssertionError


async def test_send_on_a_closed_connection_ends_the_link_cleanly() -> None:
    session, _, _ = acme()
    clock = FakeClock()
    transport = ClosingTransport(STEP6_WRITE)
    link = SpineLink(session, transport, clock)
    closed: list[SpineSession] = []
    session.device.drop_peer = lambda owner: closed.append(session)  # type: ignore[method-assign]
    with anyio.fail_after(5):
        await link.run()  # the write's result cannot be sent: the link ends, no exception
    assert transport.sent == 1 and link.closed.is_set() and closed == [session]
