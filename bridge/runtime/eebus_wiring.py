"""Exposes the bridge's LPC devices over EEBus: one EVSE device per charger or per group."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bridge.eebus.device_service import EebusService, EebusSettings, Exposure
from bridge.eebus.ship.node import PeerAddress
from bridge.eebus.spine.evse import EvseSource
from bridge.model import AcMeasurement, Characteristics, ChargerSnapshot, ChargingState, DeviceState, OperatingState

if TYPE_CHECKING:
    from bridge.runtime.app import Bridge

log = logging.getLogger(__name__)


async def run_eebus(bridge: Bridge) -> None:
    """An `extra_services` entry for `Bridge.run`."""
    cfg = bridge.config.eebus
    exposures = [_exposure(bridge, device_id) for device_id in bridge.devices]
    settings = EebusSettings(
        bind=cfg.bind,
        port_base=cfg.port_base,
        trusted_skis=tuple(cfg.trusted_skis),
        mdns=cfg.mdns.enabled,
        mdns_interfaces=[cfg.mdns.interface] if cfg.mdns.interface else None,
        max_message_bytes=cfg.max_message_bytes,
        peers=tuple(_peer(p) for p in cfg.connect_to),
        vendor=cfg.vendor_code,
    )
    service = EebusService(exposures, bridge.clock, bridge.state_dir, settings)
    bridge.snapshot_listeners.append(lambda _snapshot: service.changed())
    bridge.allocation_listeners.append(lambda _commands: service.changed())
    await service.run()
    if not cfg.trusted_skis and not service.trust.entries():
        log.warning("EEBus: no trusted EMS yet: add one with `evbridge trust add SKI` or open `evbridge pair`")


def _peer(text: str) -> PeerAddress:
    host, _, rest = text.rpartition(":")
    port, _, ski = rest.partition("@")
    return PeerAddress(host.strip("[]"), int(port), ski)


def _exposure(bridge: Bridge, device_id: str) -> Exposure:
    device = bridge.devices[device_id]
    members = device.members
    handles = [bridge.chargers[m] for m in members]
    if not device.is_group:
        handle = handles[0]
        charger_cfg = next(c for c in bridge.config.chargers if c.id == device_id)
        caps = handle.charger.capabilities

        def snapshot(cid: str = device_id) -> ChargerSnapshot | None:
            return bridge.snapshot(cid)

        snap = handle.coordinator.snapshot
        return Exposure(
            device_id,
            EvseSource(snapshot, caps.characteristics, device, frequency=caps.frequency),
            port=charger_cfg.eebus.port,
            brand=bridge.config.eebus.brand,
            model=(snap.manufacturer.model if snap and snap.manufacturer.model else "evbridge charger"),
            serial=(snap.manufacturer.serial if snap and snap.manufacturer.serial else device_id),
        )
    total_w = sum(h.charger.capabilities.characteristics.nominal_max_power_w for h in handles)
    voltage = bridge.config.site.nominal_voltage_v
    group_chars = Characteristics(
        phases_installed=3, min_current_a=0, max_current_a=total_w / (3 * voltage), nominal_voltage_v=voltage
    )
    group_cfg = next(g for g in bridge.config.groups if g.id == device_id)

    def group_snapshot() -> ChargerSnapshot | None:
        return sum_snapshots(device_id, [bridge.snapshot(m) for m in members])

    return Exposure(
        device_id,
        EvseSource(group_snapshot, group_chars, device, frequency=False, voltage=False, contractual=True),
        port=group_cfg.eebus.port,
        brand=bridge.config.eebus.brand,
        model="evbridge group",
        serial=device_id,
    )


def sum_snapshots(group_id: str, snapshots: Sequence[ChargerSnapshot | None]) -> ChargerSnapshot | None:
    """MPC of a group: sums of power, energy and per-phase currents; unavailable if any member is."""
    known = [s for s in snapshots if s is not None]
    if not known:
        return None

    def total(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return sum(present) if present else None

    def per_phase(attr: str) -> tuple[float | None, float | None, float | None] | None:
        triples = [getattr(s.measurement.derived(), attr) for s in known]
        if all(t is None for t in triples):
            return None
        return tuple(total([t[i] if t else None for t in triples]) for i in range(3))  # type: ignore[return-value]

    failed = [s for s in known if s.device_state.operating_state is OperatingState.FAILURE]
    charging = any(s.charging_state is ChargingState.CHARGING for s in known)
    return ChargerSnapshot(
        charger_id=group_id,
        timestamp=max(s.timestamp for s in known),
        available=all(s.available for s in known) and len(known) == len(snapshots),
        device_state=DeviceState(
            operating_state=OperatingState.FAILURE
            if failed
            else OperatingState.NORMAL
            if charging
            else OperatingState.STANDBY,
            last_error_code=failed[0].device_state.last_error_code if failed else None,
        ),
        charging_state=ChargingState.CHARGING if charging else ChargingState.IDLE,
        measurement=AcMeasurement(
            power_w=total([s.measurement.derived().power_w for s in known]),
            power_per_phase_w=per_phase("power_per_phase_w"),
            current_per_phase_a=per_phase("current_per_phase_a"),
            energy_wh=total([s.measurement.energy_wh for s in known]),
        ),
    )
