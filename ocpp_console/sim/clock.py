"""Simulated time: physics and session pacing run `speed` times faster than the wall clock.

Only what a person at the charger would experience is scaled (how long a car stays, the
energy a minute of charging delivers, MeterValueSampleInterval, transfer times). What the
central system dictates or checks stays in real time: heartbeats, boot retries, reservation
expiry, charging-profile schedules, timestamps. A demo at --speed 60 therefore shows an hour
of charging in a minute without the charger's clock running away from the central system's.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

from ocpp_console.timeutil import iso

# Below this, scaled waits would flood the central system (and the event loop) for no gain.
MIN_REAL_INTERVAL = 0.1


class SimClock:
    def __init__(self, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, not {speed!r}")
        self.speed = float(speed)

    def to_real(self, sim_seconds: float) -> float:
        return max(0.0, sim_seconds) / self.speed

    def to_sim(self, real_seconds: float) -> float:
        return real_seconds * self.speed

    async def sleep(self, sim_seconds: float) -> None:
        await asyncio.sleep(self.to_real(sim_seconds))

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def timestamp(dt: datetime | None = None) -> str:
    """RFC 3339, UTC, with a Z (what OCPP expects)."""
    return iso(dt or utc_now())


def parse_time(text: str | None) -> datetime | None:
    """A central system's timestamp as an aware UTC datetime; None when absent or unreadable."""
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:  # OCPP times are UTC even when the zone is left out
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def seconds_until(dt: datetime | None) -> float:
    return 0.0 if dt is None else max(0.0, (dt - utc_now()).total_seconds())
