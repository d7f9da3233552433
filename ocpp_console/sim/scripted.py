"""A scripted site: chargers that replay a fixed story over real sockets.

Used for the screenshots and the console's snapshot tests: with the product clock fixed
(timeutil.utcnow), every number and time on screen is the same on every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import ChargePointErrorCode, ChargePointStatus, RegistrationStatus
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ocpp_console.timeutil import iso

SCENARIO_NOW = datetime(2026, 11, 25, 14, 30, tzinfo=timezone.utc)
# The site's tariff in the scripted demo (settings overrides).
SCENARIO_SETTINGS: dict[str, Any] = {
    "currency": "EUR",
    "price_per_kwh": "0.39",
    "price_per_minute": "0.01",
    "idle_price_per_minute": "0.10",
    "idle_grace_minutes": "15",
    "session_fee": "0.50",
    "tou_windows": "22:00-06:00=0.25",
    "timezone": "UTC",
    "unknown_chargers": "pending",
}


@dataclass
class Session:
    connector: int
    id_tag: str
    minutes_ago: int  # started this long before SCENARIO_NOW
    power_kw: list[float]  # one value per 5 minutes since the start
    soc_start: float = 20.0
    ended_minutes_ago: int | None = None  # finished sessions
    reason: str = "EVDisconnected"


@dataclass
class ScriptedSite:
    vendor: str
    model: str
    firmware: str
    boot_minutes_ago: int
    statuses: list[tuple[int, str, str, float]]  # (connector, status, error code, minutes ago)
    sessions: list[Session] = field(default_factory=list)
    meter_start: int = 1_250_000


ID_TAGS: list[tuple[str, str, str | None]] = [
    ("FLEET-ACME", "Accepted", None),
    *((f"VAN-{i:02d}", "Accepted", "FLEET-ACME") for i in range(1, 7)),
    ("GUEST-7", "Blocked", None),
    ("OLD-CARD", "Expired", None),
]

OK = ChargePointErrorCode.no_error.value
AVAILABLE, CHARGING = ChargePointStatus.available.value, ChargePointStatus.charging.value
SITES: dict[str, ScriptedSite] = {
    "DEPOT-01": ScriptedSite("Volta", "VX-22", "3.4.1", 480, [
        (0, AVAILABLE, OK, 480), (1, AVAILABLE, OK, 480), (2, AVAILABLE, OK, 480),
        (2, CHARGING, OK, 230), (2, AVAILABLE, OK, 159), (1, CHARGING, OK, 45),
    ], [
        Session(1, "VAN-01", 45, [4, 9, 11, 11, 11, 11, 11, 11, 11, 11], 24),
        Session(2, "VAN-04", 230, [11] * 12 + [6, 3], 35, ended_minutes_ago=160),
    ]),
    "DEPOT-02": ScriptedSite("Volta", "VX-22", "3.4.1", 479, [
        (0, AVAILABLE, OK, 479), (1, AVAILABLE, OK, 479), (2, AVAILABLE, OK, 479),
        (1, CHARGING, OK, 90), (2, CHARGING, OK, 20), (1, ChargePointStatus.suspended_ev.value, OK, 18),
    ], [
        Session(1, "VAN-02", 90, [11] * 12 + [5, 2, 0, 0, 0, 0], 30),
        Session(2, "VAN-03", 20, [7.4, 7.4, 7.4, 7.4], 18),
    ], meter_start=860_500),
    "DEPOT-03": ScriptedSite("Northwind", "NW-50 DC", "1.9.0", 478, [
        (0, AVAILABLE, OK, 478), (1, AVAILABLE, OK, 478), (1, CHARGING, OK, 300), (1, AVAILABLE, OK, 279),
        (1, CHARGING, OK, 25),
    ], [
        Session(1, "VAN-05", 25, [50, 50, 48, 47, 46], 41),
        Session(1, "FLEET-ACME", 300, [45, 48, 40, 30, 20], 15, ended_minutes_ago=280, reason="Local"),
    ], meter_start=3_402_000),
    "DEPOT-04": ScriptedSite("Northwind", "NW-50 DC", "1.8.2", 477, [
        (0, AVAILABLE, OK, 477), (1, AVAILABLE, OK, 477), (1, ChargePointStatus.faulted.value, "GroundFailure", 95),
    ]),
    "DEPOT-05": ScriptedSite("Volta", "VX-11", "3.4.1", 476, [
        (0, AVAILABLE, OK, 476), (1, AVAILABLE, OK, 476), (2, AVAILABLE, OK, 476),
        (1, CHARGING, OK, 400), (1, AVAILABLE, OK, 344), (2, ChargePointStatus.reserved.value, OK, 8),
    ], [
        Session(1, "VAN-06", 400, [11] * 10 + [4], 52, ended_minutes_ago=345, reason="Remote"),
    ], meter_start=402_000),
    # A new charger, just installed: it waits for the operator's approval.
    "YARD-01": ScriptedSite("Kestrel", "K-7", "0.9.0", 12, []),
    # DEPOT-06 lost its power mid-session and is offline since: its transaction is open, and stale.
    "DEPOT-06": ScriptedSite("Volta", "VX-11", "3.4.1", 475, [
        (0, AVAILABLE, OK, 475), (1, AVAILABLE, OK, 475), (1, CHARGING, OK, 200),
    ], [
        Session(1, "VAN-06", 200, [11, 11, 11, 11, 11, 11], 30),
    ], meter_start=518_000),
}
LOST = ("DEPOT-06", 172)  # the charger, and when its power went (minutes ago)
PROVISIONED = [cp for cp in SITES if cp != "YARD-01"]
NOTES = {"DEPOT-01": "north bay", "DEPOT-03": "rapid, bay 3", "DEPOT-06": "power cut, electrician called"}


def _ts(minutes_ago: float) -> str:
    return iso(SCENARIO_NOW - timedelta(minutes=minutes_ago))


class StoryClock:
    """The product clock of the scripted site: it stands at each event's time while the story plays,
    so the feed and the log show a day's events at their own times, and at SCENARIO_NOW after."""

    def __init__(self) -> None:
        self.minutes_ago: float = 0.0

    def __call__(self) -> datetime:
        return SCENARIO_NOW - timedelta(minutes=self.minutes_ago)


story_clock = StoryClock()


class _Client(ChargePoint):
    pass


@dataclass(order=True)
class _Step:
    minutes_ago: float  # sorted oldest first (negated on creation)
    seq: int  # ties keep each charger's own order
    charger_id: str = field(compare=False)
    run: Callable[[_Client], Awaitable[Any]] = field(compare=False)


def _timeline(cp_id: str, site: ScriptedSite, seq: itertools.count[int]) -> list[_Step]:
    """Every message one charger sends in the story, each at its own time."""
    steps: list[_Step] = []

    def at(minutes_ago: float, run: Callable[[_Client], Awaitable[Any]]) -> None:
        steps.append(_Step(-minutes_ago, next(seq), cp_id, run))

    at(site.boot_minutes_ago, lambda cp: cp.call(call.BootNotification(
        charge_point_vendor=site.vendor, charge_point_model=site.model, firmware_version=site.firmware,
        charge_point_serial_number=f"SN-{cp_id}", meter_type="MID class B",
    )))
    for connector, status, error, minutes in site.statuses:
        at(minutes, lambda cp, c=connector, s=status, e=error, m=minutes: cp.call(call.StatusNotification(
            connector_id=c, error_code=e, status=s, timestamp=_ts(m))))
    meter = site.meter_start
    for session in sorted(site.sessions, key=lambda s: -s.minutes_ago):
        tx: dict[str, int] = {}

        async def start(cp: _Client, session: Session = session, meter: int = meter, tx: dict[str, int] = tx) -> None:
            answer = await cp.call(call.StartTransaction(
                connector_id=session.connector, id_tag=session.id_tag, meter_start=meter,
                timestamp=_ts(session.minutes_ago)))
            tx["id"] = answer.transaction_id

        at(session.minutes_ago, start)
        soc = session.soc_start
        for step, kw in enumerate(session.power_kw):
            minutes = session.minutes_ago - 5 * step
            if session.ended_minutes_ago is not None and minutes < session.ended_minutes_ago:
                break
            meter += int(kw * 1000 * 5 / 60)
            soc = min(100.0, soc + kw * 5 / 60 / 0.75)
            values = [
                {"value": str(meter), "unit": "Wh", "measurand": "Energy.Active.Import.Register"},
                {"value": f"{kw * 1000:.0f}", "unit": "W", "measurand": "Power.Active.Import"},
                {"value": f"{soc:.0f}", "unit": "Percent", "measurand": "SoC", "location": "EV"},
            ]
            at(minutes, lambda cp, s=session, m=minutes, v=values, tx=tx: cp.call(call.MeterValues(
                connector_id=s.connector, transaction_id=tx["id"], meter_value=[{"timestamp": _ts(m), "sampledValue": v}])))
        if session.ended_minutes_ago is not None:
            at(session.ended_minutes_ago, lambda cp, s=session, m=meter, tx=tx: cp.call(call.StopTransaction(
                meter_stop=m, timestamp=_ts(s.ended_minutes_ago), transaction_id=tx["id"], reason=s.reason,
                id_tag=s.id_tag)))
    return steps


class ScriptedFleet:
    """Connects the scripted chargers, plays their day in time order, and keeps them connected."""

    def __init__(self, url: str, *, gone: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.url = url.rstrip("/")
        self._gone = gone  # waits until the central system has seen a charger go
        self._clients: dict[str, _Client] = {}
        self._sockets: dict[str, ClientConnection] = {}
        self._readers: list[asyncio.Task[Any]] = []

    async def play(self) -> None:
        seq = itertools.count()
        steps = sorted(step for cp_id, site in SITES.items() for step in _timeline(cp_id, site, seq))
        lost_id, lost_at = LOST
        accepted: set[str] = set()
        try:
            for step in steps:
                if step.minutes_ago > -lost_at and lost_id in self._sockets:
                    await self._lose(lost_id, lost_at)
                story_clock.minutes_ago = -step.minutes_ago
                client = self._clients.get(step.charger_id) or await self._connect(step.charger_id)
                answer = await step.run(client)
                if isinstance(answer, call_result.BootNotification) and answer.status == RegistrationStatus.accepted:
                    accepted.add(step.charger_id)
            # Every accepted charger still connected has just sent a heartbeat (a pending one may not).
            story_clock.minutes_ago = 0.0
            for cp_id, client in self._clients.items():
                if cp_id in accepted:
                    await client.call(call.Heartbeat())
        finally:
            story_clock.minutes_ago = 0.0

    async def _connect(self, cp_id: str) -> _Client:
        ws = await connect(f"{self.url}/{cp_id}", subprotocols=["ocpp1.6"])
        client = _Client(cp_id, ws)
        counter = iter(range(1, 1_000_000))
        # The same message ids on every run: the message log is the same on every run.
        client._unique_id_generator = lambda counter=counter: f"{cp_id}-{next(counter)}"
        self._sockets[cp_id], self._clients[cp_id] = ws, client
        self._readers.append(asyncio.create_task(self._read(client)))
        return client

    async def _lose(self, cp_id: str, minutes_ago: float) -> None:
        """A charger that goes away mid-session without a word (a power cut): no close frame."""
        story_clock.minutes_ago = minutes_ago
        ws = self._sockets.pop(cp_id)
        del self._clients[cp_id]
        ws.transport.abort()
        if self._gone is not None:
            await self._gone(cp_id)

    @staticmethod
    async def _read(client: _Client) -> None:
        with contextlib.suppress(ConnectionClosed):  # the central system going away ends the story
            await client.start()

    async def close(self) -> None:
        for ws in self._sockets.values():
            await ws.close()
        for task in self._readers:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def provision(store: Any) -> None:
    for cp_id in PROVISIONED:
        await store.add_charger(cp_id, "Accepted", NOTES.get(cp_id))
    for tag, status, parent in ID_TAGS:
        expiry = "2026-10-31T23:59:59Z" if tag == "OLD-CARD" else None
        await store.upsert_id_tag(tag, status, expiry, parent)
    await store.wallet_movement("FLEET-ACME", 25_000, "EUR", "topup", "November invoice")
    await store.wallet_movement("GUEST-7", -1_250, "EUR", "adjustment", "unpaid session, card blocked")


async def play_scenario(csms: Any) -> ScriptedFleet:
    """Provision the scripted site in a running central system and play its story.

    The product clock should be `story_clock` (timeutil.set_clock(story_clock)) so that each event is
    received at its own time of the day."""

    async def gone(cp_id: str) -> None:
        # The lost charger's disconnection is the central system's to notice before the story goes on.
        for _ in range(500):
            if cp_id not in csms.sessions:
                return
            await asyncio.sleep(0.01)

    await provision(csms.store)
    fleet = ScriptedFleet(f"ws://127.0.0.1:{csms.port}", gone=gone)
    await fleet.play()
    for session in csms.sessions.values():  # the story took seconds: its last frames are news to the store
        session.flush_last_seen()
    await csms.store.flush()
    return fleet
