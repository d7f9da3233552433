"""Domain events the central system publishes after the store has committed what they report."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    charger_id: str


@dataclass(frozen=True, slots=True)
class ChargerConnected(Event):
    address: str | None


@dataclass(frozen=True, slots=True)
class ChargerDisconnected(Event):
    code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class ChargerBooted(Event):
    registration: str
    vendor: str | None
    model: str | None
    firmware_version: str | None


@dataclass(frozen=True, slots=True)
class RegistrationChanged(Event):
    registration: str


@dataclass(frozen=True, slots=True)
class StatusChanged(Event):
    connector_id: int
    status: str
    error_code: str
    info: str | None


@dataclass(frozen=True, slots=True)
class MeterSample(Event):
    connector_id: int
    transaction_id: int | None
    values: dict[str, float] = field(default_factory=dict)  # measurand -> value in base unit


@dataclass(frozen=True, slots=True)
class TransactionStarted(Event):
    transaction_id: int
    connector_id: int
    id_tag: str
    auth_status: str


@dataclass(frozen=True, slots=True)
class TransactionStopped(Event):
    transaction_id: int
    connector_id: int | None
    energy_wh: int | None
    reason: str
    known: bool
    cost_total: int | None = None  # minor units of `currency`
    currency: str | None = None
    closed_by: str | None = None  # we closed it (superseded | closed-after-reboot | closed-by-operator)


@dataclass(frozen=True, slots=True)
class TransactionSettledAgain(Event):
    """The charger's StopTransaction came for a transaction we had closed: its data replaced ours
    and the wallet was moved by the difference."""

    transaction_id: int
    closed_by: str | None
    energy_delta_wh: int | None
    cost_delta: int | None  # minor units of `currency`; + the driver paid more
    currency: str | None


@dataclass(frozen=True, slots=True)
class NotificationReceived(Event):
    action: str
    status: str | None


@dataclass(frozen=True, slots=True)
class CertificateInstalled(Event):
    """The charger accepted a certificate chain (CertificateSigned); it is stored."""

    serial: str | None
    expiry: str | None


@dataclass(frozen=True, slots=True)
class CertificateRequestRefused(Event):
    """A SignCertificate we answered Rejected, or a signed certificate the charger did not take."""

    reason: str


@dataclass(frozen=True, slots=True)
class MessageLogged(Event):
    direction: str  # in | out
    message_type: int | None
    action: str | None
    unique_id: str | None
    raw: str
    timestamp: str = ""


@dataclass(frozen=True, slots=True)
class CommandFinished(Event):
    action: str
    outcome: str  # ok | callerror | timeout | offline | invalid
    response: dict[str, Any] | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ExternalChange(Event):
    """Another process (the CLI, an import, a script) committed to the database: chargers, id tags
    or tariffs may have changed. Site-wide, so charger_id is empty."""

    data_version: int = 0


Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out: subscribers must be quick (the UI only queues and coalesces)."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn) if fn in self._subscribers else None

    def publish(self, event: Event) -> None:
        for fn in list(self._subscribers):
            try:
                fn(event)
            except Exception:
                log.exception("event subscriber failed on %s", type(event).__name__)
