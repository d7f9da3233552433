"""Plain values the store hands out; the central system turns them into OCPP payloads."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class StoreError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class IdTagInfo:
    status: str  # Accepted | Blocked | Expired | Invalid | ConcurrentTx
    expiry_date: str | None = None
    parent_id_tag: str | None = None
    # Why a tag is not Accepted, for the operator (never sent to the charger): "wallet below
    # minimum", "unknown id tag", "transaction 12 running on CP-1 connector 2", ...
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BootResult:
    registration: str  # Accepted | Pending | Rejected
    new_charger: bool


@dataclass(frozen=True, slots=True)
class ClosedTransaction:
    """A transaction we closed ourselves (no StopTransaction came): how, with what, for how much."""

    transaction_id: int
    charger_id: str
    connector_id: int
    id_tag: str
    closed_by: str  # superseded | closed-after-reboot | closed-by-operator
    meter_stop: int
    stop_timestamp: str
    energy_wh: int
    cost_total: int | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class CloseOutcome:
    outcome: str  # closed | unknown | stopped (already) | running (no longer a candidate)
    closed: ClosedTransaction | None = None


@dataclass(frozen=True, slots=True)
class StartResult:
    transaction_id: int
    id_tag_info: IdTagInfo
    duplicate: bool  # a resend of a StartTransaction already stored
    closed: tuple[ClosedTransaction, ...] = ()  # open transactions of the connector it superseded


@dataclass(frozen=True, slots=True)
class StopResult:
    outcome: str  # stopped | repeated | unknown | late (the charger's stop of a transaction we had closed)
    transaction_id: int
    id_tag_info: IdTagInfo | None
    energy_wh: int | None
    connector_id: int | None
    id_tag: str | None
    flags: tuple[str, ...] = ()
    cost_total: int | None = None
    currency: str | None = None
    cost_delta: int | None = None  # late: what the wallet was moved by (minor units, + = charged more)
    energy_delta_wh: int | None = None  # late: the charger's energy minus ours


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~1 us more, four per MeterValues
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


class Frame(NamedTuple):
    """One WebSocket text frame for the message log: a tuple, so that it is the row as it is
    (two per call; a frozen dataclass took longer to build than the row to insert)."""

    charger_id: str
    direction: str  # in | out
    timestamp: str
    message_type: int | None
    unique_id: str | None
    action: str | None
    raw: str


Row = dict[str, Any]


def rows_of(cursor: sqlite3.Cursor) -> list[Row]:
    """A cursor's rows as dicts by column name."""
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]
