"""The charger's state: connectors, transactions, reservations, and the run's summary."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ocpp.v16.enums import AvailabilityType, ChargePointErrorCode, ChargePointStatus, Reason

from ocpp_console.sim.clock import utc_now
from ocpp_console.sim.ev import EV
from ocpp_console.sim.meter import Meter
from ocpp_console.sim.smart import TxContext


@dataclass(slots=True)
class Transaction:
    local_id: int  # ours, known at once; the central system's id may come much later
    connector_id: int
    id_tag: str
    meter_start: int
    started: datetime
    timestamp: str  # as sent in StartTransaction (resent unchanged, so the central system can dedupe)
    reservation_id: int | None = None
    transaction_id: int | None = None  # the central system's, from StartTransaction.conf
    auth_status: str | None = None  # idTagInfo.status in StartTransaction.conf
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # StartTransaction answered or given up
    meter_stop: int | None = None
    stop_reason: Reason | None = None
    data: list[dict[str, Any]] = field(default_factory=list)  # transactionData for StopTransaction

    @property
    def context(self) -> TxContext:
        return TxContext(self.started, self.transaction_id)


@dataclass(slots=True)
class Reservation:
    reservation_id: int
    connector_id: int
    id_tag: str
    parent_id_tag: str | None
    expiry: datetime
    expiry_task: asyncio.Task[None] | None = None


@dataclass(slots=True)
class Session:
    """A car at a connector, from plug-in to unplug."""

    id_tag: str
    ev: EV
    stay_s: float | None  # simulated seconds the driver stays; None: until told to stop
    remote: bool
    pooled: bool = False  # the id tag came from the shared TagPool and goes back to it
    stop: asyncio.Future[Reason] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    unplug: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


@dataclass(slots=True)
class Connector:
    id: int
    meter: Meter = field(default_factory=Meter)
    status: ChargePointStatus = ChargePointStatus.available
    error_code: ChargePointErrorCode = ChargePointErrorCode.no_error
    availability: AvailabilityType = AvailabilityType.operative
    pending_availability: AvailabilityType | None = None  # Scheduled: applies when the transaction ends
    session: Session | None = None
    transaction: Transaction | None = None
    reservation: Reservation | None = None
    fault: ChargePointErrorCode | None = None
    offered_w: float = 0.0  # the limit in force at the last tick

    @property
    def busy(self) -> bool:
        return self.session is not None or self.transaction is not None

    @property
    def operative(self) -> bool:
        return self.availability == AvailabilityType.operative and self.fault is None


@dataclass(slots=True)
class Summary:
    charger_id: str
    sessions: int = 0  # transactions whose StopTransaction the central system answered
    energy_wh: int = 0  # meterStop - meterStart of those
    reconnects: int = 0
    errors: int = 0  # CALLERRORs, timeouts, failed transfers, our own failures
    boots: int = 0  # BootNotifications answered Accepted
    rejected: int = 0  # id tags the charger refused
    undelivered: int = 0  # transaction messages still queued when the run ended
    connected_once: bool = False
    firmware_version: str = ""
    started_at: datetime = field(default_factory=utc_now)

    @property
    def energy_kwh(self) -> float:
        return self.energy_wh / 1000.0

    def line(self) -> str:
        text = (
            f"{self.charger_id}: {self.sessions} sessions, {self.energy_kwh:.3f} kWh, "
            f"{self.reconnects} reconnects, {self.errors} errors"
        )
        if self.undelivered:
            text += f", {self.undelivered} messages undelivered"
        if not self.connected_once:
            text += ", never connected"
        return text


class TagPool:
    """Id tags shared by simulated chargers, each lent to one session at a time: the central
    system would answer ConcurrentTx to a tag already charging elsewhere."""

    def __init__(self, tags: Iterable[str]) -> None:
        self.tags = list(dict.fromkeys(tags))
        self._busy: set[str] = set()

    def acquire(self, rng: random.Random) -> str | None:
        free = [t for t in self.tags if t not in self._busy]
        if not free:
            return None
        tag = rng.choice(free)
        self._busy.add(tag)
        return tag

    def release(self, tag: str) -> None:
        self._busy.discard(tag)
