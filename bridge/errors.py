"""One error tree for the whole bridge.

Every error says who is at fault and whether retrying can help, so that
supervisors decide restart/backoff without parsing messages.  Third-party
exceptions are translated once, at the adapter or transport boundary.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error evbridge raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class ConfigError(BridgeError):
    """The user's configuration is wrong; fixing the file is the only cure.

    `location` is "file:line:column" (or just the file) and `field` the dotted
    path of the offending key, so the CLI can print one precise line.
    """

    def __init__(self, message: str, *, location: str = "", field: str = "") -> None:
        super().__init__(message, retryable=False)
        self.location = location
        self.field = field

    def __str__(self) -> str:
        parts = [p for p in (self.location, self.field) if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.args[0]}" if prefix else str(self.args[0])


class MappingError(ConfigError):
    """A vendor mapping file is wrong (same reporting as ConfigError)."""


class ProtocolError(BridgeError):
    """A protocol rule was broken on the wire."""


class LocalProtocolError(ProtocolError):
    """We tried to do something the protocol forbids (a bug on our side)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids; answer with the protocol's error."""


class AdapterError(BridgeError):
    """Something went wrong talking to a charger."""


class ChargerUnreachable(AdapterError):
    """No answer, connection refused or lost: try again later."""

    retryable = True


class ChargerRejected(AdapterError):
    """The charger answered but refused the request (Modbus exception, OCPP Rejected)."""

    retryable = False


class CapabilityNotSupported(AdapterError):
    """The charger cannot do this at all; do not announce the matching use case."""

    retryable = False


class DataNotAvailable(BridgeError):
    """A value has not been read yet; not an error of anyone, just unknown."""

    retryable = True
