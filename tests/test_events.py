"""The event bus: subscribers by kind, and whether anybody listens to a kind at all."""

from __future__ import annotations

from typing import Any

from ocpp.v16 import call

from ocpp_console.csms import CentralSystem
from ocpp_console.csms import events as ev
from tests.conftest import charger


def test_subscribers_get_the_kinds_they_named_and_wants_says_who_listens() -> None:
    bus = ev.EventBus()
    got: dict[str, list[str]] = {"all": [], "meter": []}
    assert not bus.wants(ev.MessageLogged)
    off = bus.subscribe(lambda e: got["meter"].append(type(e).__name__), (ev.MeterSample,))
    assert bus.wants(ev.MeterSample) and not bus.wants(ev.MessageLogged)
    off_all = bus.subscribe(lambda e: got["all"].append(type(e).__name__))
    assert bus.wants(ev.MessageLogged)
    bus.publish(ev.MeterSample("CP", 1, None, {}))
    bus.publish(ev.MessageLogged("CP", "in", 2, "Heartbeat", "u", "[]", "t"))
    assert got == {"all": ["MeterSample", "MessageLogged"], "meter": ["MeterSample"]}
    off_all()
    assert not bus.wants(ev.MessageLogged)
    off()
    bus.publish(ev.MeterSample("CP", 1, None, {}))
    assert got["meter"] == ["MeterSample"]


def test_unsubscribing_while_an_event_is_delivered_is_safe() -> None:
    bus = ev.EventBus()
    calls: list[str] = []
    offs: list[Any] = []
    offs.append(bus.subscribe(lambda e: (calls.append("first"), offs[1]())))
    offs.append(bus.subscribe(lambda e: calls.append("second")))
    bus.publish(ev.MeterSample("CP", 1, None, {}))  # the second still gets this one
    bus.publish(ev.MeterSample("CP", 1, None, {}))
    assert calls == ["first", "second", "first"]


async def test_frames_are_published_only_when_somebody_listens(csms: CentralSystem) -> None:
    """The service alone (its own subscribers name their kinds) builds no MessageLogged; an
    attached listener (a console, the event stream) gets every frame, and the log has them all."""
    assert not csms.events.wants(ev.MessageLogged)
    frames: list[ev.MessageLogged] = []
    async with charger(csms, "CP-EV") as cp:
        await cp.boot()
        off = csms.events.subscribe(lambda e: frames.append(e) if isinstance(e, ev.MessageLogged) else None)
        await cp.call(call.Heartbeat())
        off()
        await cp.call(call.Heartbeat())
    assert [(f.direction, f.action) for f in frames] == [("in", "Heartbeat"), ("out", "Heartbeat")]
    await csms.store.flush()
    assert len(await csms.store.message_log("CP-EV")) == 6  # boot, two heartbeats: calls and answers
