"""mDNS / DNS-SD for SHIP with python-zeroconf: announce `_ship._tcp` per device, browse for peers.

TXT keys as ship-go writes and requires them (reference §2.4, SHIP 7.3.2):
txtvers=1, id, path, ski, register (literally true/false), brand, model,
type, serial (only if set), cat.  Browsing applies ship-go's acceptance rules
(txtvers "1", id/path/ski present, register true|false, our own SKI ignored),
so what we see is what an eebus-go EMS would see.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import anyio
import ifaddr
from zeroconf import IPVersion, ServiceInfo, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from bridge.eebus.ship.ski import InvalidSki, normalize_ski

log = logging.getLogger(__name__)

SERVICE_TYPE: Final = "_ship._tcp.local."
TTL: Final = 120


@dataclass(frozen=True, slots=True)
class MdnsInfo:
    """What a device tells the network about itself (brand/model/type/serial ≤ 32 chars)."""

    brand: str = "evbridge"
    model: str = "evbridge"
    device_type: str = "ChargingStation"
    serial: str = ""
    categories: tuple[int, ...] = (3,)  # 3 = E-mobility
    register: bool = False  # auto-accept advertised
    path: str = "/ship/"
    instance_name: str | None = None  # default: the SHIP ID


@dataclass(frozen=True, slots=True)
class ShipService:
    """A SHIP node found by browsing."""

    name: str
    ski: str
    ship_id: str
    host: str
    addresses: tuple[str, ...]
    port: int
    path: str
    register: bool
    brand: str = ""
    model: str = ""
    device_type: str = ""
    categories: str = ""


def _clean(value: str) -> str:
    return value.replace("=", "")[:32]  # ship-go drops items with more than one '='


def txt_record(info: MdnsInfo, ship_id: str, ski: str) -> dict[str, str]:
    txt = {
        "txtvers": "1",
        "id": _clean(ship_id),
        "path": info.path,
        "ski": normalize_ski(ski),
        "register": "true" if info.register else "false",
        "brand": _clean(info.brand),
        "model": _clean(info.model),
        "type": _clean(info.device_type),
    }
    if info.serial:
        txt["serial"] = _clean(info.serial)
    txt["cat"] = ",".join(str(c) for c in info.categories)
    return txt


def qr_text(info: MdnsInfo, ship_id: str, ski: str) -> str:
    """The pairing QR code text of SHIP's installation requirements (optional fields only when set)."""

    def clean(value: str) -> str:
        return value.replace(";", "")

    parts = [f"SKI:{normalize_ski(ski)}", f"ID:{clean(ship_id)}"]
    fields = (("BRAND", info.brand), ("TYPE", info.device_type), ("MODEL", info.model), ("SERIAL", info.serial))
    for key, value in fields:
        if value:
            parts.append(f"{key}:{clean(value)}")
    if info.categories:
        parts.append("CAT:" + ",".join(str(c) for c in info.categories))
    return "SHIP;" + ";".join(parts) + ";ENDSHIP;"


def parse_service(info: ServiceInfo, own_ski: str | None = None) -> ShipService | None:
    """ship-go's rules for accepting a browsed record; None when it would ignore it."""
    props: dict[str, str] = {}
    for key, value in (info.properties or {}).items():
        if value is None:
            continue
        props[key.decode(errors="replace")] = value.decode(errors="replace")
    if props.get("txtvers") != "1" or "path" not in props or "id" not in props:
        return None
    if props.get("register") not in ("true", "false"):
        return None
    try:
        ski = normalize_ski(props.get("ski", ""))
    except InvalidSki:
        return None
    if own_ski is not None and ski == own_ski:
        return None
    addresses = tuple(info.parsed_scoped_addresses(IPVersion.V4Only)) + tuple(
        a for a in info.parsed_scoped_addresses(IPVersion.V6Only) if not a.lower().startswith("fe80")
    )
    return ShipService(
        name=info.name,
        ski=ski,
        ship_id=props["id"],
        host=(info.server or "").rstrip("."),
        addresses=addresses,
        port=info.port or 0,
        path=props["path"],
        register=props["register"] == "true",
        brand=props.get("brand", ""),
        model=props.get("model", ""),
        device_type=props.get("type", ""),
        categories=props.get("cat", ""),
    )


def local_addresses(bind: str) -> list[str]:
    """Addresses to announce: the bound one, or every non-loopback IPv4 address (loopback as last resort)."""
    if bind not in ("", "0.0.0.0", "::"):
        return [bind]
    found = [
        str(ip.ip)
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
        if isinstance(ip.ip, str) and not ip.ip.startswith("127.")
    ]
    return found or ["127.0.0.1"]


def service_info(info: MdnsInfo, *, ship_id: str, ski: str, port: int, addresses: Sequence[str]) -> ServiceInfo:
    name = (info.instance_name or ship_id).replace(".", "-")
    host = socket.gethostname().split(".")[0] or "evbridge"
    return ServiceInfo(
        SERVICE_TYPE,
        f"{name}.{SERVICE_TYPE}",
        port=port,
        properties=txt_record(info, ship_id, ski),
        server=f"{host}.local.",
        parsed_addresses=list(addresses),
        host_ttl=TTL,
        other_ttl=TTL,
    )


class MdnsBrowser:
    """Reports `_ship._tcp` services as they appear (resolved and filtered) to `on_found`."""

    def __init__(self, zeroconf: AsyncZeroconf, own_ski: str, on_found: Callable[[ShipService], None]) -> None:
        self._azc = zeroconf
        self._own_ski = own_ski
        self._on_found = on_found
        self._names_tx, self._names_rx = anyio.create_memory_object_stream[str](256)

    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:  # zeroconf calls this on the event loop thread
        if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
            try:
                self._names_tx.send_nowait(name)
            except anyio.WouldBlock:
                log.debug("mDNS: dropped update for %s (queue full)", name)

    async def run(self) -> None:
        browser = AsyncServiceBrowser(self._azc.zeroconf, SERVICE_TYPE, handlers=[self._on_change])
        try:
            async for name in self._names_rx:
                info = AsyncServiceInfo(SERVICE_TYPE, name)
                if not await info.async_request(self._azc.zeroconf, 3000):
                    continue
                service = parse_service(info, self._own_ski)
                if service is not None:
                    self._on_found(service)
        finally:
            with anyio.CancelScope(shield=True):
                await browser.async_cancel()
