"""Timestamps: chargers send many shapes of ISO 8601; we store UTC, RFC 3339, millisecond precision."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone


def _system_clock() -> datetime:
    return datetime.now(timezone.utc)


_clock: Callable[[], datetime] = _system_clock


def set_clock(clock: Callable[[], datetime] | None) -> None:
    """Replace the product's clock (screenshots and snapshot tests fix it); None restores it."""
    global _clock
    _clock = clock or _system_clock


def utcnow() -> datetime:
    """The one clock of the product."""
    return _clock()


def now_ts() -> float:
    return utcnow().timestamp()


def iso(dt: datetime) -> str:
    """RFC 3339 in UTC with a Z, as OCPP expects (e.g. 2026-11-25T08:00:00.123Z)."""
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(utcnow())


@dataclass(frozen=True, slots=True)
class ChargerTime:
    """A charger's timestamp normalised to UTC, with what was wrong with it, if anything."""

    value: str  # ISO UTC; the receive time when the charger's text could not be read
    problem: str | None = None  # "no_timezone" or "unparsable"


def parse_charger_time(text: str | None, *, fallback: datetime | None = None) -> ChargerTime:
    """Read a charger timestamp leniently: flag, never reject (a transaction must not be lost)."""
    if not text:
        return ChargerTime(iso(fallback or utcnow()), "missing")
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        return ChargerTime(iso(fallback or utcnow()), "unparsable")
    if dt.tzinfo is None:
        # Many chargers omit the zone; OCPP says UTC, so read it as UTC and say so.
        return ChargerTime(iso(dt.replace(tzinfo=timezone.utc)), "no_timezone")
    return ChargerTime(iso(dt))
