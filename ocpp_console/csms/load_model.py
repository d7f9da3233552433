"""What the load manager (csms/load.py) holds and shows: its view of each charger and session,
the profiles it plans to send, the points of the site's power chart, and the small rules shared
with the API and the console (a limit the operator gives, kW as shown)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ocpp.v16.enums import ChargingRateUnitType

from ocpp_console.timeutil import iso

STEP_W = 100.0  # shares and failsafes move in steps of this at least (fewer profiles sent)
MIN_LIMIT_KW = 0.1  # as the API's schema says (SiteLimit)


@dataclass
class ChargerLoad:
    """What the load manager knows of one charger's smart charging."""

    unit: ChargingRateUnitType = ChargingRateUnitType.watts
    stack_level: int = 0
    asked: bool = False  # its configuration keys were asked for (once per connection)
    known: bool = False  # ... and answered (or not: then the defaults); until then it is not controlled
    refused: str | None = None  # why it is a fixed load ("SetChargingProfile Rejected", ...)
    connectors: set[int] = field(default_factory=set)  # its connectors (> 0), as the store knows them
    defaults: dict[int, float] = field(default_factory=dict)  # connector -> the failsafe it accepted
    max_w: float | None = None  # its provisioned maximum (chargers.max_power_w), as last read


@dataclass
class SessionLoad:
    transaction_id: int
    charger_id: str
    connector_id: int
    id_tag: str
    measured_w: float | None = None
    sent_w: float | None = None  # the share the charger accepted last
    sent_at: float = 0.0  # time.monotonic() of that answer
    running_since: float | None = None  # its current turn (wall-clock seconds)
    paused_since: float | None = None
    under_since: float | None = None  # drawing well below its share since
    cap_w: float | None = None
    sending: bool = False


@dataclass(eq=False)
class Plan:
    """A profile to send: a session's share (TxProfile) or a connector's failsafe (TxDefaultProfile)."""

    charger_id: str
    connector_id: int
    watts: float
    current: float | None  # the limit in force there now (None: unknown)
    session: SessionLoad | None


@dataclass
class LoadPoint:
    at: float  # epoch seconds
    measured_w: float
    allocated_w: float
    limit_w: float | None


def check_limit(limit_kw: Any) -> float | None:
    """A site limit as the operator gave it: a number of kW of at least 0.1, or None (off)."""
    if limit_kw is None:
        return None
    if isinstance(limit_kw, bool) or not isinstance(limit_kw, (int, float)):
        raise ValueError(f"the site limit is a number of kW or null (off), not {limit_kw!r}")
    if not math.isfinite(limit_kw) or limit_kw < MIN_LIMIT_KW:
        raise ValueError(f"the site limit is at least {MIN_LIMIT_KW:g} kW (or off), not {limit_kw:g}")
    return float(limit_kw)


def floor_step(watts: float) -> float:
    return max(watts // STEP_W * STEP_W, 0.0)


def session_state(share: Any, charger: ChargerLoad) -> str:
    if charger.refused is not None:
        return "fixed"
    if share is None:
        return "new"
    return "paused" if share.watts == 0 else "charging"


def kw_text(watts: float | None) -> str:
    return "off" if watts is None else f"{watts / 1000:.1f} kW"


def kw_value(watts: float | None) -> float | None:
    return None if watts is None else round(watts / 1000, 3)


def iso_or_none(epoch: float | None) -> str | None:
    return None if epoch is None else iso(datetime.fromtimestamp(epoch, timezone.utc))
