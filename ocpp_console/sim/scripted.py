"""A scripted site: chargers that replay a fixed story over real sockets.

Used for the screenshots and the console's snapshot tests: with the product clock fixed
(timeutil.utcnow), every number and time on screen is the same on every run.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ocpp.v16 import ChargePoint, call
from ocpp.v16.enums import ChargePointErrorCode, ChargePointStatus
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
    status: str = ChargePointStatus.charging.value
    ended_minutes_ago: int | None = None  # finished sessions
    reason: str = "EVDisconnected"


@dataclass
class ScriptedSite:
    vendor: str
    model: str
    firmware: str
    statuses: dict[int, tuple[str, str]]  # connector -> (status, error code)
    sessions: list[Session] = field(default_factory=list)
    meter_start: int = 1_250_000


ID_TAGS: list[tuple[str, str, str | None]] = [
    ("FLEET-ACME", "Accepted", None),
    *((f"VAN-{i:02d}", "Accepted", "FLEET-ACME") for i in range(1, 7)),
    ("GUEST-7", "Blocked", None),
    ("OLD-CARD", "Expired", None),
]

OK = ChargePointErrorCode.no_error.value
SITES: dict[str, ScriptedSite] = {
    "DEPOT-01": ScriptedSite("Volta", "VX-22", "3.4.1", {0: ("Available", OK), 1: ("Charging", OK), 2: ("Available", OK)}, [
        Session(1, "VAN-01", 45, [4, 9, 11, 11, 11, 11, 11, 11, 11, 11], 24),
        Session(2, "VAN-04", 230, [11] * 12 + [6, 3], 35, ended_minutes_ago=160),
    ]),
    "DEPOT-02": ScriptedSite("Volta", "VX-22", "3.4.1", {0: ("Available", OK), 1: ("SuspendedEV", OK), 2: ("Charging", OK)}, [
        Session(1, "VAN-02", 90, [11] * 12 + [5, 2, 0, 0, 0, 0], 30, status="SuspendedEV"),
        Session(2, "VAN-03", 20, [7.4, 7.4, 7.4, 7.4], 18),
    ], meter_start=860_500),
    "DEPOT-03": ScriptedSite("Northwind", "NW-50 DC", "1.9.0", {0: ("Available", OK), 1: ("Charging", OK)}, [
        Session(1, "VAN-05", 25, [50, 50, 48, 47, 46], 41),
        Session(1, "FLEET-ACME", 300, [45, 48, 40, 30, 20], 15, ended_minutes_ago=280, reason="Local"),
    ], meter_start=3_402_000),
    "DEPOT-04": ScriptedSite("Northwind", "NW-50 DC", "1.8.2", {0: ("Available", OK), 1: ("Faulted", "GroundFailure")}),
    "DEPOT-05": ScriptedSite("Volta", "VX-11", "3.4.1", {0: ("Available", OK), 1: ("Available", OK), 2: ("Reserved", OK)}, [
        Session(1, "VAN-06", 400, [11] * 10 + [4], 52, ended_minutes_ago=345, reason="Remote"),
    ], meter_start=402_000),
    "YARD-01": ScriptedSite("Kestrel", "K-7", "0.9.0", {0: ("Available", OK), 1: ("Available", OK)}),
}
# DEPOT-06 lost its power mid-session and is offline since: its transaction is open, and stale.
LOST = ("DEPOT-06", ScriptedSite("Volta", "VX-11", "3.4.1", {}, [
    Session(1, "VAN-06", 200, [11, 11, 11, 11, 11, 11], 30),
], meter_start=518_000))
PROVISIONED = [cp for cp in SITES if cp != "YARD-01"] + [LOST[0]]
NOTES = {"DEPOT-01": "north bay", "DEPOT-03": "rapid, bay 3", "DEPOT-06": "power cut, electrician called"}


def _ts(minutes_ago: float) -> str:
    return iso(SCENARIO_NOW - timedelta(minutes=minutes_ago))


class _Client(ChargePoint):
    pass


async def _play(cp: _Client, cp_id: str, site: ScriptedSite) -> None:
    boot = await cp.call(call.BootNotification(
        charge_point_vendor=site.vendor, charge_point_model=site.model, firmware_version=site.firmware,
        charge_point_serial_number=f"SN-{cp_id}",
        meter_type="MID class B",
    ))
    if boot.status != "Accepted":
        return
    meter = site.meter_start
    for session in sorted(site.sessions, key=lambda s: -s.minutes_ago):
        start = await cp.call(call.StartTransaction(
            connector_id=session.connector, id_tag=session.id_tag, meter_start=meter, timestamp=_ts(session.minutes_ago)
        ))
        tx = start.transaction_id
        soc = session.soc_start
        for step, kw in enumerate(session.power_kw):
            minutes = session.minutes_ago - 5 * step
            if session.ended_minutes_ago is not None and minutes < session.ended_minutes_ago:
                break
            meter += int(kw * 1000 * 5 / 60)
            soc = min(100.0, soc + kw * 5 / 60 / 0.75)
            await cp.call(call.MeterValues(connector_id=session.connector, transaction_id=tx, meter_value=[{
                "timestamp": _ts(minutes),
                "sampledValue": [
                    {"value": str(meter), "unit": "Wh", "measurand": "Energy.Active.Import.Register"},
                    {"value": f"{kw * 1000:.0f}", "unit": "W", "measurand": "Power.Active.Import"},
                    {"value": f"{soc:.0f}", "unit": "Percent", "measurand": "SoC", "location": "EV"},
                ],
            }]))
        if session.ended_minutes_ago is not None:
            await cp.call(call.StopTransaction(
                meter_stop=meter, timestamp=_ts(session.ended_minutes_ago), transaction_id=tx, reason=session.reason,
                id_tag=session.id_tag,
            ))
    for connector, (status, error) in site.statuses.items():
        await cp.call(call.StatusNotification(connector_id=connector, error_code=error, status=status, timestamp=_ts(1)))


class ScriptedFleet:
    """Connects the scripted chargers and keeps them connected until closed."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._sockets: list[ClientConnection] = []
        self._readers: list[asyncio.Task[Any]] = []

    async def play(self) -> None:
        # One after the other: the database ids and the log order are the same on every run.
        for cp_id, site in SITES.items():
            ws = await connect(f"{self.url}/{cp_id}", subprotocols=["ocpp1.6"])
            self._sockets.append(ws)
            client = _Client(cp_id, ws)
            counter = iter(range(1, 1_000_000))
            client._unique_id_generator = lambda cp_id=cp_id, counter=counter: f"{cp_id}-{next(counter)}"
            self._readers.append(asyncio.create_task(self._read(client)))
            await _play(client, cp_id, site)
        await self._lose(*LOST)

    async def _lose(self, cp_id: str, site: ScriptedSite) -> None:
        """A charger that goes away mid-session without a word (a power cut): no StopTransaction."""
        async with connect(f"{self.url}/{cp_id}", subprotocols=["ocpp1.6"]) as ws:
            client = _Client(cp_id, ws)
            counter = iter(range(1, 1_000_000))
            client._unique_id_generator = lambda: f"{cp_id}-{next(counter)}"
            reader = asyncio.create_task(self._read(client))
            await _play(client, cp_id, site)
            reader.cancel()

    @staticmethod
    async def _read(client: _Client) -> None:
        with contextlib.suppress(ConnectionClosed):  # the central system going away ends the story
            await client.start()

    async def close(self) -> None:
        for ws in self._sockets:
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
    """Provision the scripted site in a running central system and play its story."""
    await provision(csms.store)
    fleet = ScriptedFleet(f"ws://127.0.0.1:{csms.port}")
    await fleet.play()
    # The lost charger's disconnection is the central system's to notice: the story ends once it has
    # (every screen then shows it offline, whenever it is drawn).
    for _ in range(500):
        if LOST[0] not in csms.sessions:
            break
        await asyncio.sleep(0.01)
    await csms.store.flush()
    return fleet
