"""Transactions stay consistent: deduplication, unknown ids, restarts, energy."""

from __future__ import annotations

from typing import Any

from ocpp.v16 import call

from ocpp_console.csms import CentralSystem
from tests.clients import TS
from tests.conftest import charger


def start(tag: str = "T1", connector: int = 1, meter: int = 100, ts: str = TS) -> call.StartTransaction:
    return call.StartTransaction(connector_id=connector, id_tag=tag, meter_start=meter, timestamp=ts)


async def test_repeated_start_returns_same_id_and_creates_no_duplicate(csms: CentralSystem) -> None:
    await csms.store.upsert_id_tag("T1")
    async with charger(csms, "CP1") as cp:
        await cp.boot()
        first = await cp.call(start())
    # The answer was lost; the charger reconnects and sends the same StartTransaction again.
    async with charger(csms, "CP1") as cp:
        await cp.boot()
        again = await cp.call(start())
    assert again.transaction_id == first.transaction_id
    assert again.id_tag_info["status"] == "Accepted"  # not ConcurrentTx with itself
    assert len(await csms.store.transactions("CP1")) == 1


async def test_stop_for_unknown_transaction_is_accepted_and_flagged(csms: CentralSystem) -> None:
    async with charger(csms, "CP1") as cp:
        await cp.boot()
        stop = await cp.call(
            call.StopTransaction(
                meter_stop=500, timestamp=TS, transaction_id=99999, id_tag="X",
                transaction_data=[{"timestamp": TS, "sampledValue": [{"value": "500"}]}],
            )
        )
        assert stop.id_tag_info["status"] == "Invalid"
        # Sent twice (answer lost): still recorded once.
        await cp.call(call.StopTransaction(meter_stop=500, timestamp=TS, transaction_id=99999, id_tag="X"))
    stops = await csms.store.unknown_stops("CP1")
    assert [(s["transaction_id"], s["meter_stop"]) for s in stops] == [(99999, 500)]
    # its transactionData is kept with the charger's readings, flagged (no transaction 99999 owns it)
    samples = await csms.store.meter_values_of("CP1")
    assert [(s["transaction_id"], s["unknown_transaction"], s["source"]) for s in samples] == [
        (99999, 1, "StopTransaction")
    ]
    assert await csms.store.meter_values_for(99999) == []
    assert await csms.store.transaction(99999) is None


async def test_repeated_stop_changes_nothing(csms: CentralSystem) -> None:
    async with charger(csms, "CP1") as cp:
        await cp.boot()
        tx = (await cp.call(start(meter=0))).transaction_id
        await cp.call(call.StopTransaction(meter_stop=1000, timestamp="2026-11-25T09:00:00Z", transaction_id=tx))
        before = await csms.store.transaction(tx)
        await cp.call(call.StopTransaction(meter_stop=1000, timestamp="2026-11-25T09:00:00Z", transaction_id=tx))
        await cp.call(call.StopTransaction(meter_stop=5000, timestamp="2026-11-25T10:00:00Z", transaction_id=tx))
    assert await csms.store.transaction(tx) == before
    assert before is not None and before["energy_wh"] == 1000 and before["stop_reason"] == "Local"


async def test_inconsistent_stop_is_kept_and_flagged(csms: CentralSystem) -> None:
    async with charger(csms, "CP1") as cp:
        await cp.boot()
        tx = (await cp.call(start(meter=5000))).transaction_id
        await cp.call(call.StopTransaction(meter_stop=4000, timestamp="2020-01-01T00:00:00Z", transaction_id=tx))
    row = await csms.store.transaction(tx)
    assert row is not None and row["energy_wh"] == -1000
    assert "meter_decreased" in row["flags"] and "stop_before_start" in row["flags"]


async def test_meter_values_for_unknown_transaction_are_kept_and_flagged(csms: CentralSystem) -> None:
    async with charger(csms, "CP1") as cp:
        await cp.boot()
        mv = [{"timestamp": TS, "sampledValue": [{"value": "12.5", "unit": "kWh"}]}]
        await cp.call(call.MeterValues(connector_id=1, transaction_id=777, meter_value=mv))
        await cp.call(call.MeterValues(connector_id=1, transaction_id=0, meter_value=mv))  # 0: no transaction
    rows = await csms.store.meter_values_of("CP1")
    by_tx = {r["transaction_id"]: r["unknown_transaction"] for r in rows}
    assert by_tx == {777: 1, None: 0}
    assert all(r["value_num"] == 12500.0 for r in rows)


async def test_naive_and_odd_timestamps_are_flagged_not_rejected(csms: CentralSystem) -> None:
    async with charger(csms, "CP1") as cp:
        await cp.boot()
        answer = await cp.call(start(ts="2026-11-25T08:00:00"), skip_schema_validation=True)
    row = await csms.store.transaction(answer.transaction_id)
    assert row is not None and "timestamp_no_timezone" in row["flags"]
    assert row["start_timestamp"] == "2026-11-25T08:00:00.000Z"


async def test_restart_between_start_and_stop(settings_factory: Any) -> None:
    settings = settings_factory()
    first = CentralSystem(settings)
    async with first:
        async with charger(first, "CP1") as cp:
            await cp.boot()
            tx1 = (await cp.call(start(meter=0))).transaction_id
            tx2 = (await cp.call(start(tag="T2", connector=2, meter=0))).transaction_id
            await cp.call(call.StopTransaction(meter_stop=10, timestamp=TS, transaction_id=tx2))
    # A new process on the same database file: the running transaction completes, ids go on.
    second = CentralSystem(settings)
    async with second:
        async with charger(second, "CP1") as cp:
            # A reconnecting charger that was accepted before need not boot again.
            await cp.call(call.StopTransaction(meter_stop=2500, timestamp=TS, transaction_id=tx1))
            tx3 = (await cp.call(start(tag="T3", meter=2500))).transaction_id
        row = await second.store.transaction(tx1)
        assert row is not None and row["energy_wh"] == 2500 and row["stopped_at"] is not None
    assert tx3 > tx2 > tx1


async def test_transaction_ids_are_not_reused_after_deleting_the_newest(settings_factory: Any, tmp_path: Any) -> None:
    import sqlite3

    settings = settings_factory()
    async with CentralSystem(settings) as system:
        async with charger(system, "CP1") as cp:
            await cp.boot()
            tx1 = (await cp.call(start())).transaction_id
    con = sqlite3.connect(settings.db)
    con.execute("DELETE FROM transactions")
    con.commit()
    con.close()
    async with CentralSystem(settings) as system:
        async with charger(system, "CP1") as cp:
            tx2 = (await cp.call(start(tag="T9"))).transaction_id
    assert tx2 > tx1
