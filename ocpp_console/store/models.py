"""Plain values the store hands out; the central system turns them into OCPP payloads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class IdTagInfo:
    status: str  # Accepted | Blocked | Expired | Invalid | ConcurrentTx
    expiry_date: str | None = None
    parent_id_tag: str | None = None


@dataclass(frozen=True, slots=True)
class BootResult:
    registration: str  # Accepted | Pending | Rejected
    new_charger: bool


@dataclass(frozen=True, slots=True)
class StartResult:
    transaction_id: int
    id_tag_info: IdTagInfo
    duplicate: bool  # a resend of a StartTransaction already stored


@dataclass(frozen=True, slots=True)
class StopResult:
    outcome: str  # stopped | repeated | unknown
    transaction_id: int
    id_tag_info: IdTagInfo | None
    energy_wh: int | None
    connector_id: int | None
    id_tag: str | None
    flags: tuple[str, ...] = ()
    cost_total: int | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class SampledValue:
    timestamp: str
    value: str
    measurand: str
    unit: str
    context: str
    location: str
    format: str
    phase: str | None
    value_num: float | None


@dataclass(frozen=True, slots=True)
class MeterBatch:
    """The rows one MeterValues (or StopTransaction's transactionData) produced."""

    stored: int
    unknown_transaction: bool
    latest: dict[str, float] = field(default_factory=dict)  # measurand -> latest numeric value


@dataclass(frozen=True, slots=True)
class Frame:
    """One WebSocket text frame for the message log."""

    charger_id: str
    direction: str  # in | out
    timestamp: str
    message_type: int | None
    unique_id: str | None
    action: str | None
    raw: str


Row = dict[str, Any]
