"""Timestamps: chargers send many shapes of ISO 8601; we store UTC, RFC 3339, millisecond precision."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone


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


_second: tuple[int, str] = (-1, "")  # the system clock's current second, formatted
_milli: tuple[int, str] = (-1, "")  # and its current millisecond


def now_iso() -> str:
    """iso(utcnow()); with the system clock, from the current millisecond's or second's text
    (several per frame: a busy site asks many times within one millisecond)."""
    global _second, _milli
    if _clock is not _system_clock:
        return iso(utcnow())
    ms = int(time.time() * 1000)
    if ms == _milli[0]:
        return _milli[1]
    sec, frac = divmod(ms, 1000)
    if sec != _second[0]:
        _second = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
    text = f"{_second[1]}.{frac:03d}Z"
    _milli = (ms, text)
    return text


def shift_iso(text: str, seconds: float) -> str:
    """An ISO time moved by `seconds`, as iso() writes it; the text itself if it is no time."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return text
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return iso(dt + timedelta(seconds=seconds))


_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z").fullmatch


@dataclass(frozen=True, slots=True)
class ChargerTime:
    """A charger's timestamp normalised to UTC, with what was wrong with it, if anything."""

    value: str  # ISO UTC; the receive time when the charger's text could not be read
    problem: str | None = None  # "no_timezone" or "unparsable"


def parse_charger_time(text: str | None, *, fallback: datetime | None = None) -> ChargerTime:
    """Read a charger timestamp leniently: flag, never reject (a transaction must not be lost)."""
    if not text:
        return ChargerTime(iso(fallback or utcnow()), "missing")
    if _CANONICAL(text):
        # already as we store it (2026-11-25T08:00:00.123Z, what most chargers send): checked, kept
        try:
            datetime.fromisoformat(text)
        except ValueError:
            return ChargerTime(iso(fallback or utcnow()), "unparsable")
        return ChargerTime(text)
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        return ChargerTime(iso(fallback or utcnow()), "unparsable")
    if dt.tzinfo is None:
        # Many chargers omit the zone; OCPP says UTC, so read it as UTC and say so.
        return ChargerTime(iso(dt.replace(tzinfo=timezone.utc)), "no_timezone")
    return ChargerTime(iso(dt))
