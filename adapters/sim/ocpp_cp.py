"""Simulated OCPP charge point (1.6J and 2.0.1) on the `ocpp` library, with switchable vendor quirks.

It applies profiles with real stacking/composite semantics (`ocpp_schedule`),
drives `WallboxPhysics` with the effective limit, sends Boot, Status,
transactions and MeterValues, and keeps applying its installed profiles when
the CSMS is gone, so a failsafe can be observed.  `start_charge_points()` is
the in-process API for tests, the demo and the benchmark.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import anyio
import ocpp.v16
import ocpp.v201
from ocpp.routing import on
from ocpp.v16 import call as c16
from ocpp.v16 import call_result as r16
from ocpp.v201 import call as c201
from ocpp.v201 import call_result as r201
from websockets.asyncio.client import connect

from adapters.sim.ocpp_schedule import MAX, Profile, ProfileStore
from adapters.sim.physics import EvProfile, WallboxPhysics
from bridge.clock import Clock, wait_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Quirks:
    """Firmware behaviours from shared/reference/ocpp-chargers.md §7 (numbers in comments)."""

    units: str = "Current,Power"  # "Power" for Huawei (11), "A,W" short spelling (12)
    ignores_profiles: bool = False  # Accepted but no effect (9, 10)
    max_stack_level: int = 8  # 0 on some boxes (16), ABB (4)
    rejects_connector_0: bool = False  # (2, 23)
    rejects_charge_point_max: bool = False  # EVBox, Schneider (1, 3)
    absolute_ignored: bool = False  # Wallbox fw < 5: Absolute accepted, not honoured (6)
    clock_skew_s: float = 0.0  # fast CP clock (20)
    drops_profiles_on_reboot: bool = False  # (§4)
    meter_config_readonly: bool = False  # (32)
    tx_profile_needs_tx: bool = True  # spec (13)


@dataclass
class SimCore:
    """Version-independent state of one simulated charge point with one connector/EVSE."""

    clock: Clock
    quirks: Quirks = Quirks()
    max_current_a: float = 32.0
    phases: int = 3
    voltage_v: float = 230.0
    ramp_a_per_s: float = 1000.0
    meter_interval_s: float = 10.0
    physics: WallboxPhysics = field(init=False)
    store: ProfileStore = field(init=False)
    tx_id: str | None = None
    tx_start: datetime | None = None
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _last: float = 0.0

    def __post_init__(self) -> None:
        self.physics = WallboxPhysics(
            phases_installed=self.phases,
            max_current_a=self.max_current_a,
            voltage_v=self.voltage_v,
            ramp_a_per_s=self.ramp_a_per_s,
        )
        self.store = ProfileStore(self.voltage_v)
        self._last = self.clock.monotonic()

    def now(self) -> datetime:
        return self.clock.now() + timedelta(seconds=self.quirks.clock_skew_s)

    def effective_limit_a(self, connector_id: int = 1) -> float | None:
        """Composite limit of a connector; the transaction (and the physics) belong to connector 1."""
        tx = self.tx_id if connector_id == 1 else None
        return self.store.limit_at(connector_id, self.now(), tx_start=self.tx_start, tx_id=tx)

    def sync(self) -> None:
        """Advance the physics to now with the composite limit (or the hardware max without one)."""
        mono = self.clock.monotonic()
        limit = self.effective_limit_a()
        target = self.max_current_a if limit is None or self.quirks.ignores_profiles else limit
        self.physics.set_current(target)
        self.physics.advance(max(0.0, mono - self._last))
        self._last = mono

    def set_profile(self, connector_id: int, p: dict[str, Any], schedule: dict[str, Any], pid: int, tx: Any) -> str:
        """Install one (snake_case) profile with the quirks; returns the status."""
        q = self.quirks
        purpose = p["charging_profile_purpose"]
        kind = p["charging_profile_kind"]
        unit = schedule["charging_rate_unit"]
        units = q.units.replace("Current", "A").replace("Power", "W")
        if unit not in units or p["stack_level"] > q.max_stack_level:
            return "Rejected"
        if connector_id == 0 and q.rejects_connector_0:
            return "Rejected"
        if purpose in MAX and (q.rejects_charge_point_max or connector_id != 0):
            return "Rejected"
        if purpose == "TxProfile" and (connector_id == 0 or (q.tx_profile_needs_tx and self.tx_id is None)):
            return "Rejected"
        if any(round(float(x["limit"]), 1) != float(x["limit"]) for x in schedule["charging_schedule_period"]):
            return "Rejected"  # more than one decimal (15)
        if kind == "Absolute" and schedule.get("start_schedule") is None:
            return "Rejected"  # K01.FR.41 (18, 19)
        if kind == "Absolute" and q.absolute_ignored:
            return "Accepted"
        t = lambda v: None if v is None else datetime.fromisoformat(str(v).replace("Z", "+00:00"))  # noqa: E731
        self.store.install(
            Profile(
                profile_id=pid,
                connector_id=connector_id,
                stack_level=p["stack_level"],
                purpose=purpose,
                kind=kind,
                unit=unit,
                periods=tuple(
                    (float(x["start_period"]), float(x["limit"]), int(x.get("number_phases", 3)))
                    for x in schedule["charging_schedule_period"]
                ),
                start=t(schedule.get("start_schedule")),
                duration_s=schedule.get("duration"),
                valid_from=t(p.get("valid_from")),
                valid_to=t(p.get("valid_to")),
                transaction_id=None if tx is None else str(tx),
                installed_at=self.now(),
            )
        )
        self.sync()
        return "Accepted"

    def composite_periods(
        self, duration: int, unit: str | None, connector_id: int = 1
    ) -> tuple[str, list[dict[str, Any]]]:
        out = []
        use = unit or "A"
        for offset, limit in self.store.composite(
            connector_id, self.now(), duration, tx_start=self.tx_start, tx_id=self.tx_id if connector_id == 1 else None
        ):
            amps = self.max_current_a if limit is None else limit
            value = amps if use == "A" else amps * self.voltage_v * self.phases
            out.append(
                {
                    "start_period": offset,
                    "limit": round(value - 0.049, 1) if use == "A" else int(value),
                    "number_phases": self.phases,
                }
            )
        return use, out

    def meter_samples(self) -> list[tuple[str, str | None, float, str]]:
        """(measurand, phase, value, unit) of the present state."""
        self.sync()
        p = self.physics
        rows: list[tuple[str, str | None, float, str]] = [
            ("Energy.Active.Import.Register", None, round(p.energy_wh, 1), "Wh"),
            ("Power.Active.Import", None, round(p.power_w, 1), "W"),
        ]
        for i, amps in enumerate(p.currents_a):
            rows.append(("Current.Import", f"L{i + 1}", round(amps, 2), "A"))
            rows.append(("Voltage", f"L{i + 1}-N", p.voltage_v, "V"))
        limit = self.effective_limit_a()
        rows.append(("Current.Offered", None, self.max_current_a if limit is None else limit, "A"))
        if p.soc_pct is not None:
            rows.append(("SoC", None, round(p.soc_pct, 1), "Percent"))
        return rows


class SimChargePoint16(ocpp.v16.ChargePoint):  # type: ignore[misc]
    """OCPP 1.6J side of the simulator."""

    def __init__(self, cp_id: str, ws: Any, core: SimCore) -> None:
        super().__init__(cp_id, ws, response_timeout=10)
        self.core = core
        self.config: dict[str, str] = {
            "ChargeProfileMaxStackLevel": str(core.quirks.max_stack_level),
            "ChargingScheduleAllowedChargingRateUnit": core.quirks.units,
            "NumberOfConnectors": "1",
            "MeterValueSampleInterval": "60",
            "MeterValuesSampledData": "Energy.Active.Import.Register",
            "HeartbeatInterval": "300",
        }

    @on("SetChargingProfile")
    def _set(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        p = cs_charging_profiles
        self.core.received.append(("SetChargingProfile", {"connector_id": connector_id, **p}))
        status = self.core.set_profile(
            connector_id, p, p["charging_schedule"], p["charging_profile_id"], p.get("transaction_id")
        )
        return r16.SetChargingProfile(status=status)

    @on("GetCompositeSchedule")
    def _composite(self, connector_id: int, duration: int, charging_rate_unit: str | None = None) -> Any:
        unit, periods = self.core.composite_periods(duration, charging_rate_unit, connector_id)
        return r16.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=self.core.now().isoformat(),
            charging_schedule={"duration": duration, "charging_rate_unit": unit, "charging_schedule_period": periods},
        )

    @on("ClearChargingProfile")
    def _clear(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
    ) -> Any:
        n = self.core.store.clear(id, connector_id, charging_profile_purpose)
        return r16.ClearChargingProfile(status="Accepted" if n else "Unknown")

    @on("GetConfiguration")
    def _get_config(self, key: list[str] | None = None) -> Any:
        keys = key or list(self.config)
        known = [
            {"key": k, "readonly": k.startswith(("Charge", "Number")), "value": self.config[k]}
            for k in keys
            if k in self.config
        ]
        return r16.GetConfiguration(
            configuration_key=known, unknown_key=[k for k in keys if k not in self.config] or None
        )

    @on("ChangeConfiguration")
    def _change_config(self, key: str, value: str) -> Any:
        if key == "MeterValuesSampledData" and self.core.quirks.meter_config_readonly:
            return r16.ChangeConfiguration(status="Rejected")
        if key not in self.config or key.startswith(("Charge", "Number")):
            return r16.ChangeConfiguration(status="Rejected" if key in self.config else "NotSupported")
        self.config[key] = value
        if key == "MeterValueSampleInterval":
            self.core.meter_interval_s = float(value) or self.core.meter_interval_s
        return r16.ChangeConfiguration(status="Accepted")

    @on("TriggerMessage")
    def _trigger(self, requested_message: str, connector_id: int | None = None) -> Any:
        if requested_message == "MeterValues":
            self.triggered.set()
            return r16.TriggerMessage(status="Accepted")
        return r16.TriggerMessage(status="NotImplemented")

    triggered: anyio.Event

    async def boot(self) -> None:
        await self.call(
            c16.BootNotification(
                charge_point_model="SimBox", charge_point_vendor="evbridge-sim", firmware_version="sim-ocpp-1"
            )
        )
        await self.status()

    async def status(self) -> None:
        state = self.core.physics.charging_state.value
        status = {
            "idle": "Available" if self.core.physics.ev is None else "Preparing",
            "charging": "Charging",
            "suspended_ev": "SuspendedEV",
            "suspended_evse": "SuspendedEVSE",
        }.get(state, "Available")
        await self.call(c16.StatusNotification(connector_id=1, error_code="NoError", status=status))

    async def start_transaction(self, id_tag: str = "04A1B2C3") -> None:
        result = await self.call(
            c16.StartTransaction(
                connector_id=1,
                id_tag=id_tag,
                meter_start=int(self.core.physics.energy_wh),
                timestamp=self.core.now().isoformat(),
            )
        )
        self.core.tx_id = str(result.transaction_id)
        self.core.tx_start = self.core.now()
        await self.status()

    async def stop_transaction(self) -> None:
        assert self.core.tx_id is not None
        await self.call(
            c16.StopTransaction(
                transaction_id=int(self.core.tx_id),
                meter_stop=int(self.core.physics.energy_wh),
                timestamp=self.core.now().isoformat(),
            )
        )
        self.core.store.end_transaction(1)
        self.core.tx_id = None
        self.core.tx_start = None

    async def send_meter(self) -> None:
        samples = [
            {"measurand": m, "value": str(v), "unit": u, **({"phase": ph} if ph else {})}
            for m, ph, v, u in self.core.meter_samples()
        ]
        tx = int(self.core.tx_id) if self.core.tx_id is not None else None
        await self.call(
            c16.MeterValues(
                connector_id=1,
                transaction_id=tx,
                meter_value=[{"timestamp": self.core.now().isoformat(), "sampled_value": samples}],
            )
        )


class SimChargePoint201(ocpp.v201.ChargePoint):  # type: ignore[misc]
    """OCPP 2.0.1 side of the simulator (one EVSE, id 1)."""

    def __init__(self, cp_id: str, ws: Any, core: SimCore) -> None:
        super().__init__(cp_id, ws, response_timeout=10)
        self.core = core
        self.seq = 0
        self.variables: dict[tuple[str, str], str] = {
            ("SmartChargingCtrlr", "ProfileStackLevel"): str(core.quirks.max_stack_level),
            ("SmartChargingCtrlr", "RateUnit"): core.quirks.units.replace("Current", "A").replace("Power", "W"),
            ("SampledDataCtrlr", "TxUpdatedInterval"): "60",
            ("SampledDataCtrlr", "TxUpdatedMeasurands"): "Energy.Active.Import.Register",
            ("AlignedDataCtrlr", "Interval"): "0",
            ("AlignedDataCtrlr", "Measurands"): "",
            ("OCPPCommCtrlr", "HeartbeatInterval"): "300",
        }

    @on("SetChargingProfile")
    def _set(self, evse_id: int, charging_profile: dict[str, Any]) -> Any:
        p = charging_profile
        self.core.received.append(("SetChargingProfile", {"evse_id": evse_id, **p}))
        status = self.core.set_profile(evse_id, p, p["charging_schedule"][0], p["id"], p.get("transaction_id"))
        return r201.SetChargingProfile(status=status)

    @on("GetCompositeSchedule")
    def _composite(self, duration: int, evse_id: int, charging_rate_unit: str | None = None) -> Any:
        unit, periods = self.core.composite_periods(duration, charging_rate_unit, evse_id)
        return r201.GetCompositeSchedule(
            status="Accepted",
            schedule={
                "evse_id": evse_id,
                "duration": duration,
                "schedule_start": self.core.now().isoformat(),
                "charging_rate_unit": unit,
                "charging_schedule_period": periods,
            },
        )

    @on("ClearChargingProfile")
    def _clear(
        self, charging_profile_id: int | None = None, charging_profile_criteria: dict[str, Any] | None = None
    ) -> Any:
        crit = charging_profile_criteria or {}
        n = self.core.store.clear(charging_profile_id, crit.get("evse_id"), crit.get("charging_profile_purpose"))
        return r201.ClearChargingProfile(status="Accepted" if n else "Unknown")

    @on("GetVariables")
    def _get_vars(self, get_variable_data: list[dict[str, Any]]) -> Any:
        out = []
        for item in get_variable_data:
            key = (item["component"]["name"], item["variable"]["name"])
            value = self.variables.get(key)
            out.append(
                {
                    "attribute_status": "Accepted" if value is not None else "UnknownVariable",
                    "attribute_value": value,
                    "component": item["component"],
                    "variable": item["variable"],
                }
            )
        return r201.GetVariables(get_variable_result=out)

    @on("SetVariables")
    def _set_vars(self, set_variable_data: list[dict[str, Any]]) -> Any:
        out = []
        for item in set_variable_data:
            key = (item["component"]["name"], item["variable"]["name"])
            status = "Accepted"
            if (
                key not in self.variables
                or key[0] == "SmartChargingCtrlr"
                or (key[1] == "TxUpdatedMeasurands" and self.core.quirks.meter_config_readonly)
            ):
                status = "Rejected"
            else:
                self.variables[key] = item["attribute_value"]
                if key[1] == "TxUpdatedInterval":
                    self.core.meter_interval_s = float(item["attribute_value"]) or self.core.meter_interval_s
            out.append({"attribute_status": status, "component": item["component"], "variable": item["variable"]})
        return r201.SetVariables(set_variable_result=out)

    @on("TriggerMessage")
    def _trigger(self, requested_message: str, evse: dict[str, Any] | None = None) -> Any:
        if requested_message == "MeterValues":
            self.triggered.set()
            return r201.TriggerMessage(status="Accepted")
        return r201.TriggerMessage(status="NotImplemented")

    triggered: anyio.Event

    async def boot(self) -> None:
        await self.call(
            c201.BootNotification(
                charging_station={"model": "SimBox", "vendor_name": "evbridge-sim", "firmware_version": "sim-ocpp-1"},
                reason="PowerUp",
            )
        )
        await self.status()

    async def status(self) -> None:
        occupied = self.core.physics.ev is not None
        await self.call(
            c201.StatusNotification(
                timestamp=self.core.now().isoformat(),
                connector_status="Occupied" if occupied else "Available",
                evse_id=1,
                connector_id=1,
            )
        )

    def _tx_event(self, event: str, trigger: str, **extra: Any) -> Any:
        self.seq += 1
        state = {"charging": "Charging", "suspended_ev": "SuspendedEV", "suspended_evse": "SuspendedEVSE"}.get(
            self.core.physics.charging_state.value, "EVConnected"
        )
        return c201.TransactionEvent(
            event_type=event,
            timestamp=self.core.now().isoformat(),
            trigger_reason=trigger,
            seq_no=self.seq,
            transaction_info={"transaction_id": self.core.tx_id, "charging_state": state},
            evse={"id": 1, "connector_id": 1},
            **extra,
        )

    def _meter_value(self) -> list[dict[str, Any]]:
        samples = [
            {"measurand": m, "value": v, "unit_of_measure": {"unit": u}, **({"phase": ph} if ph else {})}
            for m, ph, v, u in self.core.meter_samples()
        ]
        return [{"timestamp": self.core.now().isoformat(), "sampled_value": samples}]

    async def start_transaction(self, id_tag: str = "04A1B2C3") -> None:
        self.core.tx_id = f"tx-{self.seq + 1}"
        self.core.tx_start = self.core.now()
        await self.call(
            self._tx_event(
                "Started",
                "Authorized",
                id_token={"id_token": id_tag, "type": "ISO14443"},
                meter_value=self._meter_value(),
            )
        )

    async def stop_transaction(self) -> None:
        await self.call(self._tx_event("Ended", "EVCommunicationLost", meter_value=self._meter_value()))
        self.core.store.end_transaction(1)
        self.core.tx_id = None
        self.core.tx_start = None

    async def send_meter(self) -> None:
        if self.core.tx_id is not None:
            await self.call(self._tx_event("Updated", "MeterValuePeriodic", meter_value=self._meter_value()))
        else:
            await self.call(c201.MeterValues(evse_id=1, meter_value=self._meter_value()))


@dataclass
class SimStation:
    """A running simulated charge point: its core (state) and the protocol object while connected."""

    cp_id: str
    version: str
    core: SimCore
    cp: SimChargePoint16 | SimChargePoint201 | None = None
    connected: anyio.Event = field(default_factory=anyio.Event)
    booted: anyio.Event = field(default_factory=anyio.Event)

    async def run(self, url: str, *, password: str | None = None, ssl: Any = None, meter: bool = True) -> None:
        """Connect, boot, send meter values until the connection ends (then return; installed profiles stay)."""
        sub = "ocpp1.6" if self.version == "1.6" else "ocpp2.0.1"
        headers = None
        if password is not None:
            import base64

            headers = {"Authorization": "Basic " + base64.b64encode(f"{self.cp_id}:{password}".encode()).decode()}
        try:
            async with connect(
                f"{url.rstrip('/')}/{self.cp_id}",
                subprotocols=[sub],
                additional_headers=headers,
                ssl=ssl,
                open_timeout=10,
            ) as ws:  # type: ignore[list-item]
                cls = SimChargePoint16 if self.version == "1.6" else SimChargePoint201
                self.cp = cls(self.cp_id, ws, self.core)
                self.cp.triggered = anyio.Event()
                self.connected.set()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._receive, tg)
                    await self.cp.boot()
                    self.booted.set()
                    if meter:
                        tg.start_soon(self._meter_loop)
        finally:
            self.cp = None

    async def _receive(self, tg: anyio.abc.TaskGroup) -> None:
        assert self.cp is not None
        try:
            await self.cp.start()
        except Exception as exc:
            log.info("%s: connection ended (%s)", self.cp_id, type(exc).__name__)
        tg.cancel_scope.cancel()

    async def _meter_loop(self) -> None:
        while self.cp is not None:
            await wait_event(self.core.clock, self.cp.triggered, self.core.meter_interval_s)
            self.cp.triggered = anyio.Event()
            await self.cp.send_meter()

    async def plug(self, ev: EvProfile | None = None, id_tag: str = "04A1B2C3") -> None:
        """Plug an EV in and start a transaction."""
        self.core.physics.plug(ev or EvProfile())
        assert self.cp is not None
        await self.cp.status()
        await self.cp.start_transaction(id_tag)


@asynccontextmanager
async def start_charge_points(
    url: str,
    count: int,
    clock: Clock,
    *,
    version: str = "1.6",
    prefix: str = "SIM",
    quirks: Quirks = Quirks(),
    meter_interval_s: float = 10.0,
    password: str | None = None,
    ssl: Any = None,
) -> AsyncIterator[list[SimStation]]:
    """Start `count` simulated charge points (`<prefix>-1`…) against a CSMS URL; all booted on entry."""
    stations = [
        SimStation(f"{prefix}-{i + 1}", version, SimCore(clock, quirks, meter_interval_s=meter_interval_s))
        for i in range(count)
    ]
    async with anyio.create_task_group() as tg:
        for station in stations:
            tg.start_soon(lambda s=station: s.run(url, password=password, ssl=ssl))
        for station in stations:
            await station.booted.wait()
        yield stations
        tg.cancel_scope.cancel()
