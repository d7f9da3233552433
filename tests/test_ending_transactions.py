"""Transactions that end (issue 12): no transaction stays open after its charger has moved on, a
driver is never refused because of one that exists only in our database, and every order is
billed once. Real server, real sockets (the ocpp library's own ChargePoint), a real SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import aiohttp
from ocpp.v16 import call
from ocpp.v16.enums import AuthorizationStatus, ChargePointStatus
from websockets.asyncio.client import connect

from ocpp_console.api import ApiServer
from ocpp_console.csms import CentralSystem
from ocpp_console.csms import events as ev
from ocpp_console.csms.transactions import StaleSweeper
from ocpp_console.settings import Settings
from ocpp_console.store import Store
from tests.clients import TestCharger
from tests.conftest import EventWaiter, charger, eventually, url

PRICED = dict(currency="EUR", price_per_kwh=Decimal("0.30"), session_fee=Decimal("0.50"))


def at(hh_mm: str, day: int = 25) -> str:
    return f"2026-11-{day:02d}T{hh_mm}:00Z"


def energy(ts: str, wh: int) -> list[dict[str, Any]]:
    return [{"timestamp": ts, "sampledValue": [{"value": str(wh), "unit": "Wh",
                                                "measurand": "Energy.Active.Import.Register"}]}]


async def wallet(system: CentralSystem, tag: str, euros: str = "100.00") -> None:
    await system.store.upsert_id_tag(tag)
    await system.store.wallet_movement(tag, int(Decimal(euros) * 100), "EUR", "topup", "test")


async def ledger_is_consistent(store: Store) -> None:
    """Every wallet's balance is the sum of its ledger rows; no transaction has two charges."""
    sums: dict[str, int] = {}
    for row in await store.ledger():
        sums[row["id_tag"]] = sums.get(row["id_tag"], 0) + row["amount"]
    for tag in await store.id_tags():
        assert tag["balance"] == sums.get(tag["id_tag"], 0), tag["id_tag"]


async def billed_once(store: Store, tx_id: int) -> list[dict[str, Any]]:
    """The ledger rows of a transaction: one charge, adjustments at most, adding up to its cost."""
    rows = await store.ledger_for_transaction(tx_id)
    row = await store.transaction(tx_id)
    assert row is not None
    assert [r["kind"] for r in rows].count("charge") == (1 if rows else 0)
    assert all(r["kind"] in ("charge", "adjustment") for r in rows)
    assert -sum(r["amount"] for r in rows) == (row["cost_total"] or 0)
    return rows


@contextlib.asynccontextmanager
async def dropping_charger(system: CentralSystem, cp_id: str) -> AsyncIterator[tuple[TestCharger, Callable[[], None]]]:
    """A charger whose link can be cut without a closing handshake, as when it loses power."""
    ws = await connect(url(system, cp_id), subprotocols=["ocpp1.6"])
    cp = TestCharger(cp_id, ws)
    task = asyncio.create_task(cp.start())

    def drop() -> None:
        assert ws.transport is not None
        ws.transport.abort()

    try:
        yield cp, drop
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        with contextlib.suppress(BaseException):
            await ws.close()


async def test_drop_reboot_start_again_then_the_late_stop(settings_factory: Callable[..., Settings]) -> None:
    """A charger loses power mid-session, reboots and starts again on the same connector with the
    same tag: Authorize and StartTransaction are Accepted, the old transaction is closed
    (superseded) with its last meter value and billed once; its StopTransaction, arriving late,
    replaces our stop and moves the wallet by the difference in one ledger row, once."""
    system = CentralSystem(settings_factory(**PRICED))
    async with system:
        waiter = EventWaiter(system)
        await wallet(system, "T1")
        async with dropping_charger(system, "CP1") as (cp, drop):
            await cp.boot()
            await cp.status(1, ChargePointStatus.charging)
            old = (await cp.call(call.StartTransaction(connector_id=1, id_tag="T1", meter_start=1000,
                                                       timestamp=at("08:00")))).transaction_id
            await cp.call(call.MeterValues(connector_id=1, transaction_id=old, meter_value=energy(at("08:30"), 6000)))
            drop()
            await waiter.wait_for(lambda e: isinstance(e, ev.ChargerDisconnected) and e.charger_id == "CP1")
        async with charger(system, "CP1") as cp:
            await cp.boot()
            await cp.status(1, ChargePointStatus.preparing)
            auth = await cp.call(call.Authorize(id_tag="T1"))
            assert auth.id_tag_info["status"] == AuthorizationStatus.accepted
            start = call.StartTransaction(connector_id=1, id_tag="T1", meter_start=7000, timestamp=at("09:00"))
            new = await cp.call(start)
            assert new.id_tag_info["status"] == AuthorizationStatus.accepted and new.transaction_id != old
            closed = await waiter.wait_for(lambda e: isinstance(e, ev.TransactionStopped) and e.transaction_id == old)
            assert isinstance(closed, ev.TransactionStopped) and closed.closed_by == "superseded"
            # Resent (its answer was lost): the same id, and it supersedes nothing, least of all itself.
            assert (await cp.call(start)).transaction_id == new.transaction_id
            assert (await system.store.transaction(new.transaction_id))["stopped_at"] is None

            row = await system.store.transaction(old)
            assert row is not None and row["closed_by"] == "superseded" and "superseded" in row["flags"]
            # meterStop = the last register known, stopped at that meter value (earlier than the new start)
            assert (row["meter_stop"], row["stop_timestamp"]) == (6000, "2026-11-25T08:30:00.000Z")
            assert row["cost_total"] == 50 + 150  # session fee + 5 kWh at 0.30
            (charge,) = await billed_once(system.store, old)
            assert charge["amount"] == -200

            # The StopTransaction from before the power loss comes after all.
            late = call.StopTransaction(meter_stop=7000, timestamp=at("08:40"), transaction_id=old, reason="PowerLoss",
                                        id_tag="T1", transaction_data=energy(at("08:40"), 7000))
            answer = await cp.call(late)
            assert answer.id_tag_info["status"] == AuthorizationStatus.accepted
            again = await waiter.wait_for(lambda e: isinstance(e, ev.TransactionSettledAgain))
            assert isinstance(again, ev.TransactionSettledAgain) and again.cost_delta == 30
            row = await system.store.transaction(old)
            assert (row["meter_stop"], row["stop_reason"], row["energy_wh"]) == (7000, "PowerLoss", 6000)
            assert row["cost_total"] == 50 + 180 and "late_stop" in row["flags"] and row["late_stop_at"]
            assert json.loads(row["closed_stop"])["meter_stop"] == 6000  # what we had, kept
            rows = await billed_once(system.store, old)
            assert [(r["kind"], r["amount"]) for r in rows] == [("charge", -200), ("adjustment", -30)]

            # Sent once more (the answer was lost): nothing changes.
            await cp.call(late)
            assert await system.store.transaction(old) == row
            assert len(await system.store.ledger_for_transaction(old)) == 2
            assert len(await system.store.transactions("CP1")) == 2
        await ledger_is_consistent(system.store)
        assert (await system.store.id_tag("T1"))["balance"] == 10_000 - 230


async def test_a_late_stop_with_less_energy_refunds_the_difference(settings_factory: Callable[..., Settings]) -> None:
    system = CentralSystem(settings_factory(**PRICED))
    async with system, charger(system, "CP1") as cp:
        await wallet(system, "T1")
        await cp.boot()
        old = (await cp.call(call.StartTransaction(connector_id=1, id_tag="T1", meter_start=0,
                                                   timestamp=at("08:00")))).transaction_id
        await cp.call(call.MeterValues(connector_id=1, transaction_id=old, meter_value=energy(at("09:00"), 10_000)))
        await cp.call(call.StartTransaction(connector_id=1, id_tag="T1", meter_start=10_000, timestamp=at("10:00")))
        assert (await system.store.transaction(old))["cost_total"] == 350
        # The charger's own stop says less was delivered (its register was ahead of the billing meter).
        await cp.call(call.StopTransaction(meter_stop=9000, timestamp=at("09:00"), transaction_id=old))
        rows = await billed_once(system.store, old)
        assert [(r["kind"], r["amount"]) for r in rows] == [("charge", -350), ("adjustment", 30)]
        await ledger_is_consistent(system.store)


async def test_authorize_never_answers_concurrent_tx(csms: CentralSystem, waiter: EventWaiter) -> None:
    """Authorize answers the tag's own status; StartTransaction answers ConcurrentTx only for a tag
    really running on another connector (open, its charger online, not rebooted or free since)."""
    for tag in ("T1", "T2"):
        await csms.store.upsert_id_tag(tag)
    async with charger(csms, "CPA") as a, charger(csms, "CPB") as b:
        for cp in (a, b):
            await cp.boot()
        await a.status(1, ChargePointStatus.charging)
        running = await a.call(call.StartTransaction(connector_id=1, id_tag="T1", meter_start=0, timestamp=at("08:00")))
        assert running.id_tag_info["status"] == AuthorizationStatus.accepted
        for cp in (a, b):
            assert (await cp.call(call.Authorize(id_tag="T1"))).id_tag_info["status"] == AuthorizationStatus.accepted
        # Really running on CPA: a start elsewhere with the same card is ConcurrentTx (and still gets an id).
        other = await b.call(call.StartTransaction(connector_id=1, id_tag="T1", meter_start=0, timestamp=at("08:05")))
        assert other.id_tag_info["status"] == AuthorizationStatus.concurrent_tx and other.transaction_id > 0
        second = await a.call(call.StartTransaction(connector_id=2, id_tag="T1", meter_start=0, timestamp=at("08:06")))
        assert second.id_tag_info["status"] == AuthorizationStatus.concurrent_tx
        # CPB's start was refused and the charger ends it (DeAuthorized); CPA's second one too.
        await b.call(call.StopTransaction(meter_stop=0, timestamp=at("08:05"), transaction_id=other.transaction_id,
                                          reason="DeAuthorized"))
        await a.call(call.StopTransaction(meter_stop=0, timestamp=at("08:06"), transaction_id=second.transaction_id,
                                          reason="DeAuthorized"))

        # CPA reboots and reports the connector free: its transaction no longer runs anywhere.
        await a.boot()
        await a.status(1, ChargePointStatus.available)
        assert (await a.call(call.Authorize(id_tag="T1"))).id_tag_info["status"] == AuthorizationStatus.accepted
        moved = await b.call(call.StartTransaction(connector_id=2, id_tag="T1", meter_start=0, timestamp=at("09:00")))
        assert moved.id_tag_info["status"] == AuthorizationStatus.accepted

        # T2 charges on CPB, which then goes offline: a start with T2 on CPA is not refused.
        await b.status(1, ChargePointStatus.charging)
        await b.call(call.StartTransaction(connector_id=1, id_tag="T2", meter_start=0, timestamp=at("09:10")))
    await waiter.wait_for(lambda e: isinstance(e, ev.ChargerDisconnected) and e.charger_id == "CPB")
    async with charger(csms, "CPA") as a:
        await a.boot()
        t2 = await a.call(call.StartTransaction(connector_id=1, id_tag="T2", meter_start=0, timestamp=at("09:20")))
        assert t2.id_tag_info["status"] == AuthorizationStatus.accepted
        assert (await a.call(call.Authorize(id_tag="T2"))).id_tag_info["status"] == AuthorizationStatus.accepted


async def test_closed_after_reboot_by_the_sweep(settings_factory: Callable[..., Settings]) -> None:
    """A charger that rebooted and reports the connector Available, with no StopTransaction within
    the grace period: its transaction is closed with the last register (closed-after-reboot). One
    whose StopTransaction arrives within the grace is stopped by the charger, not by us."""
    system = CentralSystem(settings_factory(stale_transaction_grace=1.0, **PRICED))
    async with system:
        waiter = EventWaiter(system)
        await wallet(system, "T1")
        await wallet(system, "T2")
        async with charger(system, "CP1") as one, charger(system, "CP2") as two:
            ids = {}
            for cp, tag in ((one, "T1"), (two, "T2")):
                await cp.boot()
                await cp.status(1, ChargePointStatus.charging)
                ids[tag] = (await cp.call(call.StartTransaction(connector_id=1, id_tag=tag, meter_start=100,
                                                                timestamp=at("08:00")))).transaction_id
                await cp.call(call.MeterValues(connector_id=1, transaction_id=ids[tag],
                                               meter_value=energy(at("08:20"), 2100)))
            for cp in (one, two):
                await cp.boot()  # power came back
                await cp.status(1, ChargePointStatus.available)
            # CP2's queued StopTransaction comes right after the boot, well within the grace.
            await two.call(call.StopTransaction(meter_stop=2200, timestamp=at("08:21"), transaction_id=ids["T2"],
                                                reason="PowerLoss"))
            assert (await system.store.transaction(ids["T1"]))["stopped_at"] is None  # not before the grace
            closed = await waiter.wait_for(
                lambda e: isinstance(e, ev.TransactionStopped) and e.transaction_id == ids["T1"])
            assert isinstance(closed, ev.TransactionStopped) and closed.closed_by == "closed-after-reboot"
        row = await system.store.transaction(ids["T1"])
        assert row["closed_by"] == "closed-after-reboot" and row["stop_reason"] == "closed-after-reboot"
        assert (row["meter_stop"], row["stop_timestamp"], row["energy_wh"]) == (2100, "2026-11-25T08:20:00.000Z", 2000)
        (charge,) = await billed_once(system.store, ids["T1"])
        assert charge["amount"] == -(50 + 60)
        stopped = await system.store.transaction(ids["T2"])
        assert stopped["closed_by"] is None and stopped["stop_reason"] == "PowerLoss" and stopped["meter_stop"] == 2200
        assert [r["kind"] for r in await system.store.ledger_for_transaction(ids["T2"])] == ["charge"]
        await ledger_is_consistent(system.store)


async def test_a_connector_back_in_session_after_the_reboot_is_left_alone(settings_factory: Callable[..., Settings]) -> None:
    """Some chargers send BootNotification on every reconnect and carry on charging: a connector
    reported Charging after the boot keeps its transaction, whatever the grace."""
    system = CentralSystem(settings_factory(stale_transaction_grace=0.2))
    async with system, charger(system, "CP1") as cp:
        await system.store.upsert_id_tag("T1")
        await cp.boot()
        tx = (await cp.call(call.StartTransaction(connector_id=1, id_tag="T1", meter_start=0,
                                                  timestamp=at("08:00")))).transaction_id
        await cp.boot()
        await cp.status(1, ChargePointStatus.charging)
        await asyncio.sleep(0.2)  # the grace passes (what is asserted is that nothing happens)
        assert await system.sweeper.sweep() == []
        assert (await system.store.transaction(tx))["stopped_at"] is None


async def test_the_sweep_works_from_the_database_after_a_restart(settings_factory: Callable[..., Settings]) -> None:
    """The reboot is seen by one run of the central system, the grace ends during the next: the
    closing happens all the same, on start, from what the database holds."""
    async with CentralSystem(settings_factory(stale_transaction_grace=3600)) as system:
        await system.store.upsert_id_tag("T1")
        async with charger(system, "CP1") as cp:
            await cp.boot()
            tx = (await cp.call(call.StartTransaction(connector_id=1, id_tag="T1", meter_start=0,
                                                      timestamp=at("08:00")))).transaction_id
            await cp.boot()
            await cp.status(1, ChargePointStatus.available)
        assert await system.sweeper.sweep() == []
    async with CentralSystem(settings_factory(stale_transaction_grace=0.05)) as system:
        row = await eventually(lambda: _stopped(system, tx))
        assert row["closed_by"] == "closed-after-reboot" and row["meter_stop"] == 0


async def _stopped(system: CentralSystem, tx: int) -> dict[str, Any] | None:
    row = await system.store.transaction(tx)
    return row if row and row["stopped_at"] else None


async def test_the_sweep_reads_only_the_open_transactions(settings_factory: Callable[..., Settings]) -> None:
    async with CentralSystem(settings_factory()) as system:
        path = system.store.path
    from ocpp_console.store.transactions import _AFTER_REBOOT_SQL

    with sqlite3.connect(path) as conn:
        plan = " ".join(str(r[-1]) for r in conn.execute(f"EXPLAIN QUERY PLAN {_AFTER_REBOOT_SQL}", ("x",)))
    # an index of the open transactions (stopped_at IS NULL), never a scan of them all
    assert "SEARCH t USING INDEX" in plan and "SCAN t" not in plan, plan


async def test_operator_closes_a_stuck_transaction_through_the_api(settings_factory: Callable[..., Settings]) -> None:
    system = CentralSystem(settings_factory(api_port=0, **PRICED))
    async with system, charger(system, "CP1") as cp:
        waiter = EventWaiter(system)
        await wallet(system, "T1")
        await cp.boot()
        tx = (await cp.call(call.StartTransaction(connector_id=1, id_tag="T1", meter_start=500,
                                                  timestamp=at("08:00")))).transaction_id
        await cp.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=energy(at("08:10"), 1500)))
        api = ApiServer(system)
        await api.start()
        try:
            async with aiohttp.ClientSession(api.url, headers={"Authorization": f"Bearer {api.token}"}) as http:
                async with http.post(f"/api/transactions/{tx}/close", json={}) as response:
                    assert response.status == 200
                    order = await response.json()
                assert order["id"] == tx and not order["running"] and order["closed_by"] == "closed-by-operator"
                assert order["meter_stop"] == 1500 and order["cost"] == "0.80" and "closed-by-operator" in order["flags"]
                async with http.post(f"/api/transactions/{tx}/close", json={}) as response:
                    assert response.status == 409 and (await response.json())["error"] == "already_stopped"
                async with http.post("/api/transactions/99999/close", json={}) as response:
                    assert response.status == 404
                async with http.post(f"/api/transactions/{tx}/close", json={"why": 1}) as response:
                    assert response.status == 400
        finally:
            await api.stop()
        closed = await waiter.wait_for(lambda e: isinstance(e, ev.TransactionStopped) and e.transaction_id == tx)
        assert isinstance(closed, ev.TransactionStopped) and closed.closed_by == "closed-by-operator"
        (charge,) = await billed_once(system.store, tx)
        assert charge["amount"] == -80
        # The charger was still running it after all: its stop settles the rest, once.
        await cp.call(call.StopTransaction(meter_stop=2500, timestamp=at("08:20"), transaction_id=tx))
        assert [r["amount"] for r in await billed_once(system.store, tx)] == [-80, -30]
        await ledger_is_consistent(system.store)


def test_stale_grace_is_a_setting(settings_factory: Callable[..., Settings], monkeypatch: Any) -> None:
    assert settings_factory().stale_transaction_grace == 300
    monkeypatch.setenv("OCPP_CONSOLE_STALE_TRANSACTION_GRACE", "12.5")
    assert settings_factory().stale_transaction_grace == 12.5
    from ocpp_console.cli import build_parser

    args = build_parser().parse_args(["serve", "--stale-transaction-grace", "7"])
    assert args.stale_transaction_grace == 7.0


def test_the_sweep_keeps_to_the_grace_within_a_few_per_cent(settings_factory: Callable[..., Settings]) -> None:
    sweeper = StaleSweeper(CentralSystem(settings_factory()))
    assert sweeper.interval == 15.0  # 5 % of the default 300 s
    sweeper.csms.settings.stale_transaction_grace = 0.3
    assert sweeper.interval == 0.05
