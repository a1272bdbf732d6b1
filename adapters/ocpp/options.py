"""Validated options of a `type: ocpp` charger and of the one CSMS server they share.

Server settings (listen address, security profile, TLS files) come from
`AdapterDeps.options` when the runtime passes them, else from the `server:`
block of the first OCPP charger; a later charger with a different `server:`
block is a configuration error, so there is never doubt which port is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ServerOptions(BaseModel):
    """The CSMS endpoint chargers connect to (`ws[s]://host:port/<charge_point_id>`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "0.0.0.0"
    port: int = Field(default=9000, ge=0, le=65535)
    security_profile: Literal[0, 1, 2, 3] = 0
    tls_cert: Path | None = None  # server certificate chain (profiles 2, 3)
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # CA that signs charger certificates (profile 3)
    call_timeout_s: float = Field(default=5.0, gt=0)  # several calls fit in the coordinator's 10 s request timeout
    heartbeat_interval_s: int = Field(default=60, gt=0)
    meter_interval_s: int = Field(default=10, gt=0)

    @model_validator(mode="after")
    def _tls_files(self) -> ServerOptions:
        if self.security_profile >= 2 and (self.tls_cert is None or self.tls_key is None):
            raise ValueError("security profiles 2 and 3 need tls_cert and tls_key")
        if self.security_profile == 3 and self.tls_client_ca is None:
            raise ValueError("security profile 3 needs tls_client_ca (the CA of the charger certificates)")
        return self


class ProxyOptions(BaseModel):
    """The charger's own back end; the bridge sits between them (proxy mode)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upstream_url: str = Field(pattern=r"^wss?://")  # the charge point id is appended as the last path segment
    password: str | None = None  # basic-auth password towards the upstream, if it wants one


class OcppOptions(BaseModel):
    """Options of one `type: ocpp` charger = one connector (1.6) or EVSE (2.0.1) of a charge point."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["ocpp"] = "ocpp"
    charge_point_id: str = Field(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9._:*+|@-]+$")
    connector_id: int = Field(default=1, ge=1)
    vendor_profile: str = Field(default="generic", pattern=r"^[a-z0-9][a-z0-9_-]*$")
    password: str | None = Field(default=None, min_length=8)  # basic auth (profiles 1, 2)
    phases: Literal[1, 2, 3] = 3
    min_current_a: float = Field(default=6.0, ge=0)
    max_current_a: float = Field(default=16.0, gt=0)
    voltage_v: float = Field(default=230.0, gt=0)
    proxy: ProxyOptions | None = None
    server: ServerOptions | None = None
