"""Last seen: every frame from a charger counts, in the console at once and in the store by the time it goes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from ocpp.v16 import call

from ocpp_console import timeutil
from ocpp_console.csms import CentralSystem
from ocpp_console.csms import events as ev
from ocpp_console.ui.live import LiveSite

from .conftest import EventWaiter, charger, eventually

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Iterator[Clock]:
    clock = Clock()
    timeutil.set_clock(clock)
    yield clock
    timeutil.set_clock(None)


async def test_a_heartbeat_is_seen_by_the_console_and_kept_when_the_charger_goes(
    csms: CentralSystem, waiter: EventWaiter, clock: Clock
) -> None:
    live = LiveSite(csms)
    await live.load()
    async with charger(csms, "SEEN-1") as cp:
        await cp.boot()
        # Minutes pass in the product's clock, seconds in the real one: the store's throttle holds
        # this heartbeat back, the console shows it at once.
        clock.now = T0 + timedelta(minutes=7)
        await cp.call(call.Heartbeat())
        await eventually(lambda: live.chargers["SEEN-1"].last_seen == timeutil.iso(clock.now))
        row = await csms.store.charger("SEEN-1")
        assert row["last_seen"] < timeutil.iso(clock.now)
    await waiter.wait_for(lambda e: isinstance(e, ev.ChargerDisconnected) and e.charger_id == "SEEN-1")
    await csms.store.flush()
    row = await csms.store.charger("SEEN-1")
    assert row["last_seen"] == timeutil.iso(T0 + timedelta(minutes=7))
