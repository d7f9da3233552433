"""The OCPP 1.6J central system: server, sessions, operator commands, domain events."""

from ocpp_console.csms.errors import (
    CallErrorReceived,
    ChargerOffline,
    CommandError,
    CommandTimeout,
    InvalidAnswer,
    InvalidCommand,
    UnknownCharger,
)
from ocpp_console.csms.server import CentralSystem

__all__ = [
    "CallErrorReceived",
    "CentralSystem",
    "ChargerOffline",
    "CommandError",
    "CommandTimeout",
    "InvalidAnswer",
    "InvalidCommand",
    "UnknownCharger",
]
