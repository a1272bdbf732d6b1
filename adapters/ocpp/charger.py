"""One OCPP connector/EVSE behind the `Charger` port.

`apply()` turns the command into a charging profile (vendor strategy, rounded
down), sends it through the charge point's session, verifies it with
GetCompositeSchedule, and re-applies along the override chain when it did not
take.  Meter values that show the EV drawing more than the limit after the
grace time lead to one more re-application and then to "degraded".  The
failsafe is two profiles: a persistent low-stack one with the fallback current
and the live one with `validTo`, refreshed by `keep_alive()`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Protocol

import anyio

from adapters.ocpp import profiles, strategy, upstream
from adapters.ocpp.link import CallError
from adapters.ocpp.options import OcppOptions
from adapters.ocpp.profiles import LimitValue, Version
from adapters.ocpp.session import ChargePointSession
from adapters.ocpp.translate import MeterReading
from adapters.ocpp.vendor import Purpose, VendorProfile, Verify
from bridge.clock import Clock
from bridge.errors import ChargerRejected, ChargerUnreachable
from bridge.model import (
    AcMeasurement,
    AppliedSetpoint,
    Characteristics,
    ChargerSnapshot,
    Command,
    CommunicationStandard,
    DeviceState,
    OperatingState,
)
from bridge.ports import Capabilities, Watchdog, WatchdogKind

log = logging.getLogger(__name__)


class SessionSource(Protocol):
    def session(self, cp_id: str) -> ChargePointSession | None: ...


class OcppCharger:
    """See module docstring."""

    def __init__(
        self, charger_id: str, options: OcppOptions, vendor: VendorProfile, hub: SessionSource, clock: Clock
    ) -> None:
        self._id = charger_id
        self.options = options
        self.vendor = vendor
        self._hub = hub
        self._clock = clock
        self._lock = anyio.Lock()
        self._command: Command | None = None
        self._fallback_a: float | None = None
        self._fallback_installed: float | None = None
        self.applied: LimitValue | None = None
        self._applied_at: float | None = None
        self._attempt: strategy.Attempt | None = None
        self._needs_reinstall = False
        self._needs_reapply = False
        self._meter_retries = 0
        self.degraded: str | None = None
        self.upstream_profiles: dict[int, tuple[int, dict[str, object]]] = {}
        self._characteristics = Characteristics(
            phases_installed=options.phases,
            min_current_a=min(options.min_current_a, options.max_current_a),
            max_current_a=options.max_current_a,
            current_resolution_a=0.1,
            nominal_voltage_v=options.voltage_v,
        )

    # -- port ---------------------------------------------------------------
    @property
    def charger_id(self) -> str:
        return self._id

    @property
    def capabilities(self) -> Capabilities:
        session = self._hub.session(self.options.charge_point_id)
        config = session.config if session is not None else None
        can_layer = self.vendor.failsafe.enabled and (config is None or strategy.layered(self.vendor, config))
        validity = self.vendor.failsafe.validity_s
        watchdog = (
            Watchdog(
                kind=WatchdogKind.CHARGER,
                timeout_s=validity,
                refresh_s=validity / 3,
                description="live charging profile with validTo over a persistent fallback profile",
            )
            if can_layer
            else Watchdog(kind=WatchdogKind.NONE, description="charge point cannot stack a fallback profile")
        )
        return Capabilities(
            characteristics=self._characteristics,
            power_resolution_w=1.0,
            per_phase_metering=True,
            soc=True,
            identification=True,
            watchdog=watchdog,
        )

    def _session(self) -> ChargePointSession:
        session = self._hub.session(self.options.charge_point_id)
        if session is None or session.link is None or session.link.closed.is_set():
            raise ChargerUnreachable(f"charge point {self.options.charge_point_id} is not connected")
        return session

    async def _ready_session(self) -> ChargePointSession:
        """The session once its post-boot setup is done (stack level and units known), bounded."""
        session = self._session()
        if not session.ready.is_set():
            with anyio.move_on_after(session.server.call_timeout_s):
                await session.ready.wait()
        return self._session()

    async def read(self) -> ChargerSnapshot:
        session = self._session()
        state = session.connector(self.options.connector_id)
        measurement = AcMeasurement(
            power_w=state.power_w,
            current_per_phase_a=tuple(state.current_a) if any(c is not None for c in state.current_a) else None,  # type: ignore[arg-type]
            voltage_per_phase_v=tuple(state.voltage_v) if any(v is not None for v in state.voltage_v) else None,  # type: ignore[arg-type]
            energy_wh=state.energy_wh,
            soc_pct=state.soc_pct,
        ).derived()
        device = DeviceState.from_charging(state.charging_state, state.error_code)
        if self.degraded is not None:
            device = DeviceState(operating_state=OperatingState.SERVICE, last_error_code=self.degraded)
        applied = AppliedSetpoint()
        if self.applied is not None:
            amps = profiles.floor_to(self.applied.as_current(self.options.voltage_v), 1)
            applied = AppliedSetpoint(current_a=amps, enabled=self.applied.limit > 0)
        idents = state.session.identifications if state.session is not None else ()
        return ChargerSnapshot(
            charger_id=self._id,
            timestamp=self._clock.now(),
            available=state.available,
            manufacturer=session.manufacturer,
            characteristics=self._characteristics,
            device_state=device,
            ev_connected=state.ev_connected,
            charging_state=state.charging_state,
            measurement=measurement,
            applied=applied,
            identifications=idents,
            communication_standard=CommunicationStandard.IEC61851,
            session=state.session,
        )

    async def apply(self, command: Command) -> AppliedSetpoint:
        self._command = command
        self._meter_retries = 0
        session = await self._ready_session()
        async with self._lock:
            value = await self._apply_locked(session, verify=True)
        return AppliedSetpoint(
            current_a=profiles.floor_to(value.as_current(self.options.voltage_v), 1), enabled=value.limit > 0
        )

    async def keep_alive(self) -> None:
        """Refresh the live profile's validTo (the charger falls back when we stop)."""
        if self._command is None:
            return
        session = await self._ready_session()
        async with self._lock:
            if self._attempt is None:
                await self._apply_locked(session, verify=False)
            else:
                status = await self._send_control(session, self._attempt, self._limit(session))
                if status != "Accepted":
                    raise ChargerRejected(f"{self._id}: refreshing the live profile: {status}")
                await self._reclamp_upstream(session)  # forwarded upstream profiles carry a validTo too

    async def set_fallback_current(self, current_a: float) -> None:
        self._fallback_a = current_a
        session = await self._ready_session()
        async with self._lock:
            await self._install_fallback(session)

    async def aclose(self) -> None:
        return None

    # -- session callbacks ---------------------------------------------------
    def on_boot(self) -> None:
        self._fallback_installed = None
        self._needs_reinstall = True

    def on_transaction(self) -> None:
        if self.vendor.limit.purpose is Purpose.TX:
            self._needs_reapply = True

    def on_meter(self, reading: MeterReading) -> None:
        if (
            self.applied is None
            or self._applied_at is None
            or self.vendor.verify.method in (Verify.NONE, Verify.COMPOSITE)
        ):
            return
        if self._clock.monotonic() - self._applied_at < self.vendor.verify.meter_grace_s:
            return
        limit_a = self.applied.as_current(self.options.voltage_v)
        if not strategy.meter_violates(limit_a, reading.max_current_a, self.vendor.verify.meter_tolerance_a):
            return
        if self._meter_retries < self.vendor.verify.retries:
            self._meter_retries += 1
            self._needs_reapply = True
            log.warning(
                "%s: EV draws %.1f A above the %.1f A limit: re-applying", self._id, reading.max_current_a, limit_a
            )
            session = self._hub.session(self.options.charge_point_id)
            if session is not None:
                session.wake()
        elif self.degraded is None:
            self.degraded = f"limit_not_applied: Accepted but EV draws {reading.max_current_a:.1f} A > {limit_a:.1f} A"
            log.error("%s: %s", self._id, self.degraded)

    async def service(self) -> None:
        if not (self._needs_reinstall or self._needs_reapply):
            return
        async with self._lock:
            session = self._session()
            if self._needs_reinstall:
                self._needs_reinstall = False
                await self._install_fallback(session)
            if self._command is not None:
                self._needs_reapply = False
                await self._apply_locked(session, verify=True, keep_degraded=True)

    # -- internals ------------------------------------------------------------
    @property
    def version(self) -> Version:
        session = self._hub.session(self.options.charge_point_id)
        return "2.0.1" if session is not None and session.version == "2.0.1" else "1.6"

    def _limit(self, session: ChargePointSession) -> LimitValue:
        assert self._command is not None
        cmd = self._command
        phases = cmd.phases or self.options.phases
        current = min(cmd.max_current_a, self.options.max_current_a)
        wish = self._upstream_wish_a(session)
        if wish is not None:
            current = min(current, wish)  # proxy mode: never more than the upstream CSMS wants either
        return profiles.command_limit(
            pause=cmd.pause or (wish is not None and wish <= 0),
            current_a=current,
            power_w=cmd.power_w,
            unit=strategy.choose_unit(self.vendor, session.config),
            phases=phases,
            voltage_v=self.options.voltage_v,
            min_current_a=max(self.vendor.limit.min_current_a, 0.0),
            decimals=self.vendor.limit.decimals,
        )

    def _tx_id(self, session: ChargePointSession) -> str | None:
        return session.connector(self.options.connector_id).transaction_id

    async def _send_control(self, session: ChargePointSession, attempt: strategy.Attempt, value: LimitValue) -> str:
        layered = strategy.layered(self.vendor, session.config)
        valid_to = self._clock.now() + timedelta(seconds=self.vendor.failsafe.validity_s) if layered else None
        tx_id = self._tx_id(session) if self.vendor.limit.transaction_id else None
        connector = 0 if attempt.station_level else self.options.connector_id
        base = profiles.TX_ID_BASE if attempt.purpose is Purpose.TX else profiles.CONTROL_ID_BASE
        profile = profiles.build_profile(
            self.version,
            profile_id=base + self.options.connector_id,
            purpose=attempt.purpose,
            stack_level=attempt.stack_level,
            kind=attempt.kind,
            value=value,
            now=self._clock.now(),
            valid_to=valid_to,
            transaction_id=tx_id,
            number_phases=self.vendor.limit.number_phases,
        )
        try:
            reply = await session.link.call(  # type: ignore[union-attr]
                "SetChargingProfile", profiles.set_profile_payload(self.version, connector, profile)
            )
        except CallError as exc:
            return f"CallError {exc.code}"
        return str(reply.get("status"))

    async def _verify_composite(self, session: ChargePointSession, value: LimitValue) -> bool | None:
        if self.vendor.verify.method not in (Verify.COMPOSITE, Verify.COMPOSITE_AND_METER):
            return None
        try:
            reply = await session.link.call(  # type: ignore[union-attr]
                "GetCompositeSchedule", profiles.composite_request(self.version, self.options.connector_id, value.unit)
            )
        except CallError:
            return None
        return strategy.composite_effective(
            value, profiles.composite_first_limit(self.version, reply), self.options.voltage_v
        )

    async def _apply_locked(
        self, session: ChargePointSession, *, verify: bool, keep_degraded: bool = False
    ) -> LimitValue:
        value = self._limit(session)
        tx_active = self._tx_id(session) is not None
        chain = strategy.attempts(self.vendor, session.config, tx_active)
        if self._attempt in chain and self._attempt.purpose is chain[0].purpose:  # start with what worked last time
            chain.remove(self._attempt)
            chain.insert(0, self._attempt)
        tries = 0
        outcomes: list[str] = []
        for attempt in chain:
            status = await self._send_control(session, attempt, value)
            if status != "Accepted":
                outcomes.append(f"{attempt.purpose.value}/stack {attempt.stack_level}/{attempt.kind}: {status}")
                continue
            self._attempt = attempt
            self.applied = value
            self._applied_at = self._clock.monotonic()
            if not verify:
                return value
            effective = await self._verify_composite(session, value)
            if effective is None or effective:
                if effective or not keep_degraded:
                    self.degraded = None
                await self._trigger_meter(session)
                await self._reclamp_upstream(session)
                return value
            outcomes.append(f"{attempt.purpose.value}/{attempt.kind}: Accepted but composite schedule is higher")
            tries += 1
            if tries > self.vendor.verify.retries + 1:
                break
        self.degraded = "limit_not_applied: " + "; ".join(outcomes)
        raise ChargerRejected(f"{self._id}: limit {value.limit} {value.unit} not applied ({'; '.join(outcomes)})")

    async def _trigger_meter(self, session: ChargePointSession) -> None:
        """Ask for fresh meter values so the meter check sees the new limit soon (best effort)."""
        if self.vendor.verify.method not in (Verify.METER, Verify.COMPOSITE_AND_METER):
            return
        payload: dict[str, object] = {"requestedMessage": "MeterValues"}
        if self.version == "1.6":
            payload["connectorId"] = self.options.connector_id
        else:
            payload["evse"] = {"id": self.options.connector_id}
        try:
            await session.link.call("TriggerMessage", payload)  # type: ignore[union-attr]
        except CallError as exc:
            log.info("%s: TriggerMessage(MeterValues): %s", self._id, exc)

    # -- proxy mode: the upstream CSMS's profiles never exceed our obligation ----
    def obligation_a(self) -> float:
        """The highest current the bridge allows now (the fallback before the first command)."""
        if self._command is None:
            return self._fallback_a if self._fallback_a is not None else self.options.max_current_a
        if self._command.pause:
            return 0.0
        amps = min(self._command.max_current_a, self.options.max_current_a)
        if self._command.power_w is not None:
            phases = self._command.phases or self.options.phases
            amps = min(amps, self._command.power_w / (self.options.voltage_v * phases))
        return amps

    def clamp_upstream(self, connector_id: int, profile: dict[str, object]) -> dict[str, object]:
        """Remember an upstream profile and return what the charger may get (see `upstream.forwardable`)."""
        pid = profiles.profile_id_of(self.version, profile)  # type: ignore[arg-type]
        self.upstream_profiles[pid] = (connector_id, profile)
        self._needs_reapply = True  # our live profile follows the upstream's wish when it is lower
        return self._forwardable(profile)

    def forget_upstream(self, profile_id: int | None) -> None:
        """ClearChargingProfile from upstream: by id, or all of them."""
        if profile_id is None:
            self.upstream_profiles.clear()
        else:
            self.upstream_profiles.pop(profile_id, None)
        self._needs_reapply = True

    def _forwardable(self, profile: dict[str, object]) -> dict[str, object]:
        session = self._hub.session(self.options.charge_point_id)
        layered = session is not None and strategy.layered(self.vendor, session.config)
        return upstream.forwardable(
            self.version,
            profile,  # type: ignore[arg-type]
            obligation_a=self.obligation_a(),
            voltage_v=self.options.voltage_v,
            now=self._clock.now(),
            validity_s=self.vendor.failsafe.validity_s if layered else None,
            fallback_purpose=profiles.purpose_name(self.vendor.failsafe.purpose, self.version),
            fallback_stack=self.vendor.failsafe.stack_level,
            control=None
            if self._attempt is None
            else (profiles.purpose_name(self._attempt.purpose, self.version), self._attempt.stack_level),
        )

    def _upstream_wish_a(self, session: ChargePointSession) -> float | None:
        if not self.upstream_profiles:
            return None
        return upstream.wanted_current_a(
            self.version,
            list(self.upstream_profiles.values()),  # type: ignore[arg-type]
            self.options.connector_id,
            self._clock.now(),
            tx_active=self._tx_id(session) is not None,
            voltage_v=self.options.voltage_v,
            phases=self.options.phases,
        )

    async def _reclamp_upstream(self, session: ChargePointSession) -> None:
        for connector_id, profile in list(self.upstream_profiles.values()):
            reply = await session.link.call(  # type: ignore[union-attr]
                "SetChargingProfile",
                profiles.set_profile_payload(self.version, connector_id, self._forwardable(profile)),
            )
            if reply.get("status") != "Accepted":
                log.warning("%s: re-sent upstream profile: %s", self._id, reply.get("status"))

    async def _install_fallback(self, session: ChargePointSession) -> None:
        if self._fallback_a is None or not strategy.layered(self.vendor, session.config):
            return
        if self._fallback_installed == self._fallback_a:
            return
        unit = strategy.choose_unit(self.vendor, session.config)
        value = profiles.command_limit(
            pause=self._fallback_a <= 0,
            current_a=self._fallback_a,
            power_w=None,
            unit=unit,
            phases=self.options.phases,
            voltage_v=self.options.voltage_v,
            min_current_a=self.vendor.limit.min_current_a,
            decimals=self.vendor.limit.decimals,
        )
        profile = profiles.build_profile(
            self.version,
            profile_id=profiles.FALLBACK_ID_BASE + self.options.connector_id,
            purpose=self.vendor.failsafe.purpose,
            stack_level=self.vendor.failsafe.stack_level,
            kind="Relative",
            value=value,
            now=self._clock.now(),
            number_phases=self.vendor.limit.number_phases,
        )
        reply = await session.link.call(  # type: ignore[union-attr]
            "SetChargingProfile", profiles.set_profile_payload(self.version, self.options.connector_id, profile)
        )
        if reply.get("status") != "Accepted":
            raise ChargerRejected(f"{self._id}: fallback profile {reply.get('status')}")
        self._fallback_installed = self._fallback_a
