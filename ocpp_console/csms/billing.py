"""Tariffs and settlement: exact money (Decimal, integer minor units), never floats.

A session is priced with the tariff in force when it started (a snapshot stored with the
transaction): energy (optionally at time-of-use prices), charging time, idle time after
the car stopped drawing (past a grace period) and a session fee, each a line item rounded
to the currency's minor unit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
CHARGING_W = 50.0  # below this a connector is not really charging (meter noise, standby)

# ISO 4217 minor units where they are not 2.
MINOR_UNITS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV",
                     "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}
LINE_ITEMS = ("energy", "time", "idle", "session_fee")


def minor_units(currency: str) -> int:
    return MINOR_UNITS.get(currency.upper(), 2)


def to_minor(amount: Decimal, currency: str) -> int:
    exponent = minor_units(currency)
    return int((amount * (10**exponent)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_minor(minor: int, currency: str) -> Decimal:
    exponent = minor_units(currency)
    return (Decimal(minor) / (10**exponent)).quantize(Decimal(1).scaleb(-exponent))


def format_money(minor: int | None, currency: str) -> str:
    return "-" if minor is None else f"{from_minor(minor, currency)} {currency}"


@dataclass(frozen=True)
class Window:
    """A time-of-use window: energy costs `price_per_kwh` from `start` until `end` (local time)."""

    start: time
    end: time
    price_per_kwh: Decimal

    def contains(self, t: time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # across midnight, e.g. 22:00-06:00

    @classmethod
    def parse(cls, text: str) -> Window:
        """'22:00-06:00=0.20'"""
        try:
            hours, price = text.split("=")
            start, end = hours.split("-")
            return cls(time.fromisoformat(start.strip()), time.fromisoformat(end.strip()), Decimal(price.strip()))
        except (ValueError, ArithmeticError):
            raise ValueError(f"time-of-use window {text!r}: use HH:MM-HH:MM=PRICE, e.g. 22:00-06:00=0.20") from None

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}={self.price_per_kwh}"


@dataclass(frozen=True)
class Tariff:
    currency: str = "EUR"
    price_per_kwh: Decimal = Decimal(0)
    price_per_minute: Decimal = Decimal(0)
    idle_price_per_minute: Decimal = Decimal(0)
    idle_grace_minutes: Decimal = Decimal(0)
    session_fee: Decimal = Decimal(0)
    windows: tuple[Window, ...] = ()
    timezone: str | None = None  # IANA name; None: a fixed UTC offset in `utc_offset_minutes`
    utc_offset_minutes: int = 0

    def tz(self) -> tzinfo:
        if self.timezone:
            return ZoneInfo(self.timezone)
        return timezone(timedelta(minutes=self.utc_offset_minutes))

    def energy_price_at(self, moment: datetime) -> Decimal:
        local = moment.astimezone(self.tz()).time()
        for window in self.windows:
            if window.contains(local):
                return window.price_per_kwh
        return self.price_per_kwh

    def boundaries(self, start: datetime, end: datetime) -> list[datetime]:
        """Moments strictly inside (start, end) where a time-of-use window begins or ends."""
        if not self.windows:
            return []
        tz = self.tz()
        found: set[datetime] = set()
        day = start.astimezone(tz).date() - timedelta(days=1)
        last = end.astimezone(tz).date() + timedelta(days=1)
        while day <= last:
            for window in self.windows:
                for t in (window.start, window.end):
                    moment = datetime.combine(day, t, tz)
                    if start < moment < end:
                        found.add(moment.astimezone(timezone.utc))
            day += timedelta(days=1)
        return sorted(found)

    def to_json(self) -> str:
        return json.dumps(
            {
                "currency": self.currency,
                "price_per_kwh": str(self.price_per_kwh),
                "price_per_minute": str(self.price_per_minute),
                "idle_price_per_minute": str(self.idle_price_per_minute),
                "idle_grace_minutes": str(self.idle_grace_minutes),
                "session_fee": str(self.session_fee),
                "windows": [str(w) for w in self.windows],
                "timezone": self.timezone,
                "utc_offset_minutes": self.utc_offset_minutes,
            }
        )

    @classmethod
    def from_json(cls, text: str | None) -> Tariff:
        if not text:
            return cls()
        data: dict[str, Any] = json.loads(text)
        return cls(
            currency=data.get("currency", "EUR"),
            price_per_kwh=Decimal(data.get("price_per_kwh", "0")),
            price_per_minute=Decimal(data.get("price_per_minute", "0")),
            idle_price_per_minute=Decimal(data.get("idle_price_per_minute", "0")),
            idle_grace_minutes=Decimal(data.get("idle_grace_minutes", "0")),
            session_fee=Decimal(data.get("session_fee", "0")),
            windows=tuple(Window.parse(w) for w in data.get("windows", ())),
            timezone=data.get("timezone"),
            utc_offset_minutes=int(data.get("utc_offset_minutes", 0)),
        )


@dataclass(frozen=True)
class Point:
    """A moment of the session: the energy register (Wh) and, if known, the power (W)."""

    at: datetime
    register_wh: Decimal | None
    power_w: float | None = None


@dataclass
class Settlement:
    currency: str
    energy_wh: int
    charging_seconds: int
    idle_seconds: int
    items: dict[str, int] = field(default_factory=dict)  # line item -> minor units
    total: int = 0
    register_wh: int | None = None  # the last register reading in the meter values
    discrepancy_wh: int | None = None  # meterStop minus that reading

    def items_json(self) -> str:
        return json.dumps(self.items)


def _parse(ts: str) -> datetime | None:
    try:
        dt = datetime.fromisoformat(ts)
    except (TypeError, ValueError):
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def timeline(
    start: str, stop: str, meter_start: int, meter_stop: int, samples: Sequence[tuple[str, str, float | None]]
) -> list[Point]:
    """Session points from (timestamp, measurand, value) samples, between start and stop."""
    t0, t1 = _parse(start), _parse(stop)
    if t0 is None or t1 is None or t1 < t0:
        t0 = t1 = t0 or t1 or datetime.now(timezone.utc)
    by_time: dict[datetime, dict[str, float]] = {}
    for ts, measurand, value in samples:
        at = _parse(ts)
        if at is None or value is None or not math.isfinite(value) or not (t0 <= at <= t1):
            continue
        by_time.setdefault(at, {})[measurand] = value
    points = [Point(t0, Decimal(meter_start))]
    for at in sorted(by_time):
        values = by_time[at]
        register = values.get(ENERGY)
        points.append(Point(at, Decimal(str(register)) if register is not None else None, values.get(POWER)))
    points.append(Point(t1, Decimal(meter_stop)))
    return points


def settle(tariff: Tariff, points: list[Point], meter_start: int, meter_stop: int) -> Settlement:
    """Price a session. Energy is meterStop - meterStart, spread over the session as the meter
    values show it; charging time is where energy flowed; idle time runs from the end of the last
    charging stretch to the stop, less the grace period."""
    energy_wh = max(0, meter_stop - meter_start)
    # Fill unknown registers by carrying the last known one forward (no energy without a reading).
    registers: list[Decimal] = []
    last = Decimal(meter_start)
    for p in points:
        if p.register_wh is not None:
            last = max(last, p.register_wh)
        registers.append(last)
    registers[-1] = max(registers[-1], Decimal(meter_stop)) if meter_stop >= meter_start else registers[-1]
    charging = Decimal(0)
    last_charging_end = points[0].at
    energy_cost = Decimal(0)
    any_flow = False
    for i in range(len(points) - 1):
        a, b = points[i], points[i + 1]
        seconds = Decimal((b.at - a.at).total_seconds())
        delta = registers[i + 1] - registers[i]
        flowing = delta > 0 or (a.power_w is not None and a.power_w >= CHARGING_W and i + 1 < len(points) - 1)
        if flowing:
            charging += seconds
            last_charging_end = b.at
            any_flow = True
        if delta > 0:
            energy_cost += _energy_cost(tariff, a.at, b.at, delta)
    if not any_flow and energy_wh > 0:  # no usable meter values: the whole session charged
        charging = Decimal((points[-1].at - points[0].at).total_seconds())
        last_charging_end = points[-1].at
        energy_cost = _energy_cost(tariff, points[0].at, points[-1].at, Decimal(energy_wh))
    idle = Decimal(max(0.0, (points[-1].at - last_charging_end).total_seconds()))
    billable_idle = max(Decimal(0), idle - tariff.idle_grace_minutes * 60)
    # The meter values may not add up to meterStop - meterStart: the difference is priced at the stop's rate.
    counted = registers[-1] - registers[0]
    if counted != energy_wh and energy_wh > 0:
        energy_cost += _energy_cost(tariff, points[-1].at, points[-1].at, Decimal(energy_wh) - counted)
    cur = tariff.currency
    items = {
        "energy": to_minor(energy_cost, cur),
        "time": to_minor(charging / 60 * tariff.price_per_minute, cur),
        "idle": to_minor(billable_idle / 60 * tariff.idle_price_per_minute, cur),
        "session_fee": to_minor(tariff.session_fee, cur),
    }
    readings = [p.register_wh for p in points[1:-1] if p.register_wh is not None]
    register = int(max(readings)) if readings else None
    return Settlement(
        currency=cur,
        energy_wh=energy_wh,
        charging_seconds=int(charging),
        idle_seconds=int(idle),
        items=items,
        total=sum(items.values()),
        register_wh=register,
        discrepancy_wh=(meter_stop - register) if register is not None else None,
    )


def _energy_cost(tariff: Tariff, start: datetime, end: datetime, wh: Decimal) -> Decimal:
    """wh delivered evenly between start and end, priced by the time-of-use windows it crosses."""
    if end <= start:
        return wh / 1000 * tariff.energy_price_at(start)
    cuts = [start, *tariff.boundaries(start, end), end]
    total_s = Decimal((end - start).total_seconds())
    cost = Decimal(0)
    for a, b in zip(cuts, cuts[1:]):
        share = Decimal((b - a).total_seconds()) / total_s
        cost += wh * share / 1000 * tariff.energy_price_at(a)
    return cost


TARIFF_KEYS = ("currency", "price_per_kwh", "price_per_minute", "idle_price_per_minute", "idle_grace_minutes",
               "session_fee", "tou_windows", "timezone")


SITE_SCOPE = "*"  # the stored tariff of the whole site; other scopes are charger ids


def tariff_for(
    settings: Any,
    charger_id: str,
    at: datetime | None = None,
    tariffs: Mapping[str, Mapping[str, Any]] | None = None,
) -> Tariff:
    """The tariff of a charger, key by key from the most specific place that sets it: the stored
    tariff of the charger (`tariffs`, from the database), then settings.charger_tariffs, then the
    stored site tariff, then the site's settings."""
    stored = tariffs or {}
    layers = (stored.get(charger_id, {}), settings.charger_tariffs.get(charger_id, {}), stored.get(SITE_SCOPE, {}))

    def get(name: str) -> Any:
        for layer in layers:
            if layer.get(name) is not None:
                return layer[name]
        return getattr(settings, name)

    zone = get("timezone")
    offset = 0
    if not zone:
        moment = (at or datetime.now(timezone.utc)).astimezone()
        offset = int((moment.utcoffset() or timedelta()).total_seconds() // 60)
    windows = tuple(Window.parse(p.strip()) for p in str(get("tou_windows") or "").split(",") if p.strip())
    return Tariff(
        currency=str(get("currency")),
        price_per_kwh=Decimal(str(get("price_per_kwh"))),
        price_per_minute=Decimal(str(get("price_per_minute"))),
        idle_price_per_minute=Decimal(str(get("idle_price_per_minute"))),
        idle_grace_minutes=Decimal(str(get("idle_grace_minutes"))),
        session_fee=Decimal(str(get("session_fee"))),
        windows=windows,
        timezone=zone or None,
        utc_offset_minutes=offset,
    )


def settle_transaction(tx: dict[str, Any], samples: Sequence[tuple[str, str, float | None]], fallback: Tariff) -> Settlement:
    """Settle a stored transaction row with its tariff snapshot (or `fallback` for one without)."""
    tariff = Tariff.from_json(tx.get("tariff")) if tx.get("tariff") else fallback
    points = timeline(tx["start_timestamp"], tx["stop_timestamp"], tx["meter_start"], tx["meter_stop"], samples)
    return settle(tariff, points, tx["meter_start"], tx["meter_stop"])


def running_settlement(
    tariff: Tariff,
    start: str,
    meter_start: int,
    samples: Sequence[tuple[str, str, float | None]],
    now: str,
    register_wh: int | None = None,
) -> Settlement:
    """A running session priced as settlement would price it if it stopped now: meterStop is the
    last energy register (`register_wh`, else the highest in `samples`, else meterStart), the stop
    is now, or the last sample if the charger's clock runs ahead of ours."""
    if register_wh is None:
        readings = [v for _, m, v in samples if m == ENERGY and v is not None and math.isfinite(v)]
        register_wh = int(max(readings)) if readings else meter_start
    register_wh = max(meter_start, register_wh)
    latest = max((t for t in (_parse(ts) for ts, _, _ in samples) if t is not None), default=None)
    moment = _parse(now)
    stop = latest.isoformat() if latest is not None and moment is not None and latest > moment else now
    points = timeline(start, stop, meter_start, register_wh, samples)
    return settle(tariff, points, meter_start, register_wh)
