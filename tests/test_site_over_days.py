"""A site over days, scripted: ten chargers with two connectors each, over real sockets, lose their
links, lose power and reboot, lose StopTransactions (some arrive late, some never), and start new
sessions on connectors whose old session was never stopped. At the end no transaction is open,
every order is billed exactly once (one charge ledger row, adjustments at most), and every wallet's
balance equals its ledger. Deterministic per charger (seeded); the chargers run side by side."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from ocpp.v16 import call
from ocpp.v16.enums import AuthorizationStatus, ChargePointStatus
from websockets.asyncio.client import ClientConnection, connect

from ocpp_console.csms import CentralSystem
from ocpp_console.settings import Settings
from ocpp_console.timeutil import iso
from tests.clients import TestCharger
from tests.conftest import REPORT, eventually, url

SEED = 20261125
CHARGERS = 10
CONNECTORS = (1, 2)
STEPS = 16
GRACE = 0.2
FLEETS = ("FLEET-A", "FLEET-B")


class SiteCharger:
    """One charger of the site: its own clock (days pass in minutes), meters, sessions, and the
    StopTransactions it lost or is still holding back."""

    def __init__(self, system: CentralSystem, index: int, stats: Counter[str]) -> None:
        self.system = system
        self.id = f"SITE-{index:02d}"
        self.rng = random.Random(SEED + index)
        self.tags = [f"{self.id}-T{n}" for n in range(3)]
        self.clock = datetime(2026, 11, 2, 6, 0, tzinfo=timezone.utc) + timedelta(minutes=7 * index)
        self.register = {c: self.rng.randint(0, 50_000) for c in CONNECTORS}
        self.sessions: dict[int, tuple[int, str]] = {}  # connector -> (transaction id, tag)
        self.held_back: list[call.StopTransaction] = []  # stops that will arrive late
        self.stats = stats
        self.ws: ClientConnection | None = None
        self.cp: TestCharger | None = None
        self._reader: asyncio.Task[None] | None = None

    # -- the link ---------------------------------------------------------------------

    async def connect(self) -> None:
        self.ws = await connect(url(self.system, self.id), subprotocols=["ocpp1.6"])
        self.cp = TestCharger(self.id, self.ws)
        self._reader = asyncio.create_task(self.cp.start())

    async def cut(self) -> None:
        """The link dies without a closing handshake (power, mobile network)."""
        assert self.ws is not None and self.ws.transport is not None and self._reader is not None
        self.ws.transport.abort()
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader

    async def send(self, payload: Any) -> Any:
        assert self.cp is not None
        return await self.cp.call(payload)

    # -- what a charger says ----------------------------------------------------------

    def ts(self) -> str:
        return iso(self.clock)

    def later(self, low: int, high: int) -> None:
        self.clock += timedelta(minutes=self.rng.randint(low, high))

    async def status(self, connector: int, status: ChargePointStatus) -> None:
        await self.send(call.StatusNotification(connector_id=connector, error_code="NoError", status=status,
                                                timestamp=self.ts()))

    async def boot(self) -> None:
        assert (await self.send(call.BootNotification(charge_point_model="Site", charge_point_vendor="Test"))).status \
            == "Accepted"
        for connector in CONNECTORS:
            await self.status(connector, ChargePointStatus.available)

    async def start(self, connector: int) -> None:
        busy = {tag for _, tag in self.sessions.values()}
        tag = self.rng.choice([t for t in self.tags if t not in busy])
        await self.status(connector, ChargePointStatus.preparing)
        auth = await self.send(call.Authorize(id_tag=tag))
        assert auth.id_tag_info["status"] == AuthorizationStatus.accepted, auth  # never ConcurrentTx
        self.later(1, 3)
        answer = await self.send(call.StartTransaction(connector_id=connector, id_tag=tag,
                                                       meter_start=self.register[connector], timestamp=self.ts()))
        self.stats["started"] += 1
        assert answer.id_tag_info["status"] == AuthorizationStatus.accepted, answer
        self.sessions[connector] = (answer.transaction_id, tag)
        await self.status(connector, ChargePointStatus.charging)

    async def charge(self, connector: int) -> None:
        tx, _ = self.sessions[connector]
        for _ in range(self.rng.randint(1, 3)):
            self.later(5, 30)
            self.register[connector] += self.rng.randint(200, 6000)
            await self.send(call.MeterValues(connector_id=connector, transaction_id=tx, meter_value=[{
                "timestamp": self.ts(), "sampledValue": [
                    {"value": str(self.register[connector]), "unit": "Wh", "measurand": "Energy.Active.Import.Register"},
                ]}]))

    def stop_of(self, connector: int, reason: str) -> call.StopTransaction:
        tx, tag = self.sessions.pop(connector)
        self.register[connector] += self.rng.randint(0, 1500)  # charged on after the last meter value
        self.later(1, 20)
        return call.StopTransaction(meter_stop=self.register[connector], timestamp=self.ts(), transaction_id=tx,
                                    reason=reason, id_tag=tag)

    async def stop(self, connector: int) -> None:
        await self.send(self.stop_of(connector, "EVDisconnected"))
        self.stats["stopped"] += 1
        await self.status(connector, ChargePointStatus.finishing)
        await self.status(connector, ChargePointStatus.available)

    def lose(self, stop: call.StopTransaction) -> None:
        """A StopTransaction the charger could not deliver now: held back for later, or lost for good."""
        if self.rng.random() < 0.5:
            self.held_back.append(stop)
            self.stats["held back"] += 1
        else:
            self.stats["lost"] += 1

    async def power_loss(self) -> None:
        """The charger loses power: on reboot some queued stops come at once, the rest are lost or late."""
        await self.cut()
        self.stats["reboots"] += 1
        self.later(2, 240)
        await self.connect()
        queued, missing = [], []
        for connector in list(self.sessions):
            stop = self.stop_of(connector, "PowerLoss")
            if self.rng.random() < 0.4:
                queued.append(stop)
            else:
                self.lose(stop)
                missing.append(stop.transaction_id)
        await self.send(call.BootNotification(charge_point_model="Site", charge_point_vendor="Test"))
        for stop in queued:  # delivered right after the boot, within the grace
            await self.send(stop)
            self.stats["stopped"] += 1
        for connector in CONNECTORS:
            await self.status(connector, ChargePointStatus.available)
        if missing and self.rng.random() < 0.6:
            # Nobody comes by for longer than the grace: the central system closes what it never saw stop.
            async def closed() -> bool:
                rows = [await self.system.store.transaction(tx) for tx in missing]
                return all(r is not None and r["stopped_at"] for r in rows)

            await eventually(closed, timeout=10)
            self.stats["idle after reboot"] += 1

    async def start_over(self, connector: int) -> None:
        """The session's stop was lost (the charger's queue overflowed): a new one starts on the connector."""
        self.lose(self.stop_of(connector, "Other"))
        self.stats["started over"] += 1
        await self.start(connector)

    async def link_drop(self) -> None:
        """The link drops and comes back; the charger carries on (no reboot) and loses nothing."""
        await self.cut()
        self.stats["link drops"] += 1
        await self.connect()

    async def deliver_late(self) -> None:
        while self.held_back:
            await self.send(self.held_back.pop(0))
            self.stats["delivered late"] += 1

    # -- the script -------------------------------------------------------------------

    async def run(self) -> None:
        await self.connect()
        await self.boot()
        for _ in range(STEPS):
            self.later(20, 400)
            connector = self.rng.choice(CONNECTORS)
            roll = self.rng.random()
            if connector not in self.sessions:
                await self.start(connector)
                await self.charge(connector)
            elif roll < 0.35:
                await self.stop(connector)
            elif roll < 0.55:
                await self.charge(connector)
            elif roll < 0.7:
                await self.start_over(connector)
                await self.charge(connector)
            elif roll < 0.85:
                await self.power_loss()
            else:
                await self.link_drop()
                await self.charge(connector)
            if self.held_back and self.rng.random() < 0.2:
                await self.deliver_late()  # perhaps before we closed it, perhaps after
        # The end of the period: what still runs stops normally, or the charger loses power once more.
        if self.sessions and self.rng.random() < 0.5:
            await self.power_loss()
        for connector in list(self.sessions):
            await self.stop(connector)


async def test_a_site_over_days(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(stale_transaction_grace=GRACE, currency="EUR", price_per_kwh=Decimal("0.30"),
                                price_per_minute=Decimal("0.01"), session_fee=Decimal("0.50"))
    stats: Counter[str] = Counter()
    async with CentralSystem(settings) as system:
        store = system.store
        for n, fleet in enumerate(FLEETS):
            await store.upsert_id_tag(fleet)
            await store.wallet_movement(fleet, 500_000, "EUR", "topup", "monthly invoice")
        chargers = [SiteCharger(system, i, stats) for i in range(CHARGERS)]
        for i, site in enumerate(chargers):
            for tag in site.tags:
                await store.upsert_id_tag(tag, parent_id_tag=FLEETS[i % 2])
        try:
            await asyncio.wait_for(asyncio.gather(*(c.run() for c in chargers)), 40)

            async def nothing_open() -> bool:
                return not await store.transactions(running=True)

            # Whatever the chargers never stopped, the central system closes once the grace has passed.
            await eventually(nothing_open, timeout=10)
            for site in chargers:  # the stops held back arrive, after we closed their transactions
                await site.deliver_late()
        finally:
            for site in chargers:
                await site.close()

        transactions = await store.transactions(limit=10_000)
        assert len(transactions) == stats["started"]
        assert not [t["id"] for t in transactions if t["stopped_at"] is None]
        for connector in await store.connectors():
            assert connector["status"] == "Available", connector
        assert await store.unknown_stops() == []

        ledger = await store.ledger()
        by_tx: dict[int, list[dict[str, Any]]] = {}
        for row in ledger:
            if row["transaction_id"] is not None:
                by_tx.setdefault(row["transaction_id"], []).append(row)
        closed = Counter(t["closed_by"] for t in transactions if t["closed_by"])
        late = 0
        for tx in transactions:
            rows = by_tx.get(tx["id"], [])
            kinds = Counter(r["kind"] for r in rows)
            assert tx["cost_total"] is not None, tx
            assert kinds["charge"] == (1 if tx["cost_total"] or kinds["adjustment"] else 0), (tx, rows)
            assert set(kinds) <= {"charge", "adjustment"}
            assert -sum(r["amount"] for r in rows) == tx["cost_total"], (tx, rows)
            assert all(r["id_tag"] == tx["wallet_id_tag"] for r in rows)
            if "late_stop" in tx["flags"]:
                late += 1
                assert tx["closed_by"] and kinds["adjustment"] <= 1
            elif not tx["closed_by"]:
                assert kinds["adjustment"] == 0
        for fleet in FLEETS:
            row = await store.id_tag(fleet)
            assert row["balance"] == sum(r["amount"] for r in ledger if r["id_tag"] == fleet)
        for tag in await store.id_tags():
            if tag["id_tag"] not in FLEETS:
                assert tag["balance"] == 0  # children spend their fleet's wallet

    # The script really went through what it is about (fixed seed: these are the same every run).
    assert stats["reboots"] >= 5 and stats["link drops"] >= 3 and stats["started over"] >= 3, stats
    assert stats["lost"] >= 3 and stats["delivered late"] >= 3, stats
    assert closed["superseded"] >= 3 and closed["closed-after-reboot"] >= 3, closed
    assert late >= 3, (late, stats)
    REPORT.append(f"site over days: {dict(sorted(stats.items()))}; closed by us {dict(sorted(closed.items()))}; "
                  f"{late} late stops settled again")
