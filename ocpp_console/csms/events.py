"""Domain events the central system publishes after the store has committed what they report."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
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
    meter_start: int = 0  # Wh: a console computes energy from the first meter value on, at once


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
class IdTagRefused(Event):
    """An Authorize or StartTransaction answered other than Accepted (Invalid, Blocked, Expired,
    ConcurrentTx): the driver could not charge, and the operator should see why."""

    id_tag: str
    status: str
    action: str  # Authorize | StartTransaction
    reason: str | None = None  # e.g. "wallet below minimum", "unknown id tag"
    transaction_id: int | None = None  # a StartTransaction's: answered with an id even when refused
    connector_id: int | None = None

    def sentence(self) -> str:
        """'id tag ABC refused (Blocked: wallet below minimum) at Authorize'"""
        why = f"{self.status}: {self.reason}" if self.reason else self.status
        where = f" (transaction {self.transaction_id}, connector {self.connector_id})" if self.transaction_id else ""
        return f"id tag {self.id_tag} refused ({why}) at {self.action}{where}"


@dataclass(frozen=True, slots=True)
class RemoteStartFollowed(Event):
    """A StartTransaction came for a RemoteStartTransaction the charger had accepted."""

    id_tag: str
    transaction_id: int
    connector_id: int
    auth_status: str  # what we answered the StartTransaction: Accepted, or why the charger stops it again

    def sentence(self) -> str:
        started = f"transaction {self.transaction_id} started on {self.charger_id} connector {self.connector_id}"
        if self.auth_status == "Accepted":
            return f"{started} (Remote Start for {self.id_tag})"
        return f"{started}, but id tag {self.id_tag} was refused ({self.auth_status}): the charger should stop it"


@dataclass(frozen=True, slots=True)
class RemoteStartUnanswered(Event):
    """A RemoteStartTransaction was accepted, but no StartTransaction followed within the window."""

    id_tag: str
    connector_id: int | None
    window: float  # seconds waited
    refusal: IdTagRefused | None = None  # the last refusal of this tag on this charger meanwhile

    def sentence(self) -> str:
        where = f" connector {self.connector_id}" if self.connector_id else ""
        text = (f"Remote Start for {self.id_tag} on {self.charger_id}{where} was accepted, but no transaction "
                f"started within {self.window:g} s")
        if self.refusal is not None:
            why = f"{self.refusal.status}: {self.refusal.reason}" if self.refusal.reason else self.refusal.status
            return f"{text}; last refusal: {why} at {self.refusal.action}"
        return f"{text}; no refusal seen (no car plugged in?)"


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
class LoadDecided(Event):
    """The load manager decided the sessions' shares (or load management was turned off: limit_kw
    None). Site-wide, so charger_id is empty; the figures are a summary: the whole picture is
    LoadManager.snapshot() (GET /api/site/load)."""

    limit_kw: float | None = None
    allocated_kw: float = 0.0
    measured_kw: float = 0.0
    sessions: int = 0
    paused: int = 0


@dataclass(frozen=True, slots=True)
class FileTransfer(Event):
    """A charger fetching a firmware image or uploading diagnostics or a log from our file servers
    (files/): the bytes so far, seen by the server itself; `done` at the end (`error` if it failed)."""

    kind: str  # firmware | diagnostics | log
    name: str
    protocol: str  # http | ftp
    bytes: int
    total: int | None = None
    done: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ExternalChange(Event):
    """Another process (the CLI, an import, a script) committed to the database: chargers, id tags
    or tariffs may have changed. Site-wide, so charger_id is empty."""

    data_version: int = 0


Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out: subscribers must be quick (the UI only queues and coalesces).

    A subscriber may name the kinds of event it handles; `wants` then tells a publisher whether
    anybody listens to a kind at all, so that a service with no console attached does not build
    two MessageLogged per call for nobody (issue 17)."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[Subscriber, tuple[type[Event], ...] | None]] = []
        # kind -> its subscribers; rebuilt, never changed in place, when somebody (un)subscribes
        self._routes: dict[type[Event], list[Subscriber]] = {}

    def subscribe(self, fn: Subscriber, kinds: Iterable[type[Event]] | None = None) -> Callable[[], None]:
        """Call fn with every event (of these kinds, subclasses included); returns the unsubscribe."""
        entry = (fn, None if kinds is None else tuple(kinds))
        self._subscribers.append(entry)
        self._routes = {}

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)
                self._routes = {}

        return unsubscribe

    def wants(self, kind: type[Event]) -> bool:
        return bool(self._for(kind))

    def _for(self, kind: type[Event]) -> list[Subscriber]:
        fns = self._routes.get(kind)
        if fns is None:
            fns = self._routes[kind] = [fn for fn, kinds in self._subscribers if kinds is None or issubclass(kind, kinds)]
        return fns

    def publish(self, event: Event) -> None:
        for fn in self._for(type(event)):
            try:
                fn(event)
            except Exception:
                log.exception("event subscriber failed on %s", type(event).__name__)
