"""The store: migrations, durability before the answer, grouped commits."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from ocpp_console.csms import CentralSystem
from ocpp_console.store import Store, StoreError
from ocpp_console.store.models import Frame, SampledValue
from ocpp_console.store import schema as schema_module
from tests.clients import TS
from tests.conftest import charger


async def test_older_database_is_migrated_and_keeps_its_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.sqlite"
    store = await Store(path).open()
    await store.upsert_id_tag("KEEP")
    await store.close()
    # A newer ocpp-console with one more migration opens the file.
    newer = [*schema_module.MIGRATIONS, "ALTER TABLE id_tags ADD COLUMN colour TEXT DEFAULT 'blue';"]
    monkeypatch.setattr("ocpp_console.store.store.MIGRATIONS", newer)
    monkeypatch.setattr("ocpp_console.store.store.SCHEMA_VERSION", len(newer))
    store = await Store(path).open()
    try:
        assert store.migrated_from == len(schema_module.MIGRATIONS)
        assert await store.schema_version() == len(newer)
        tag = await store.id_tag("KEEP")
        assert tag is not None and tag["colour"] == "blue"
    finally:
        await store.close()


async def test_meter_values_of_an_older_database_become_readings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 14: the per-sample rows of version 13 become one reading per meterValue element;
    the meter_values view reads back every sample as it was, in the same order, and a reading
    resent after the upgrade is still recognised as stored. Migration 16: a transaction's readings
    are found by the span of ids recorded on it."""
    path = tmp_path / "v13.sqlite"
    monkeypatch.setattr("ocpp_console.store.store.MIGRATIONS", schema_module.MIGRATIONS[:13])
    monkeypatch.setattr("ocpp_console.store.store.SCHEMA_VERSION", 13)
    store = await Store(path).open()
    await store.close()
    columns = ("charger_id", "connector_id", "transaction_id", "unknown_transaction", "source", "timestamp",
               "measurand", "phase", "unit", "context", "location", "format", "value", "value_num", "received_at")
    t1, t2, now = "2026-01-01T10:00:00Z", "2026-01-01T10:01:00Z", "2026-01-01T10:01:05.000Z"
    e, p = "Energy.Active.Import.Register", "Power.Active.Import"
    sample = ("Sample.Periodic", "Outlet", "Raw")
    old = [  # two chargers' rows interleaved, as concurrent calls stored them
        ("A", 1, 7, 0, "MeterValues", t1, e, None, "Wh", *sample, "100", 100.0, now),
        ("B", 1, None, 0, "MeterValues", t1, p, None, "W", *sample, "7200", 7200.0, now),
        ("A", 1, 7, 0, "MeterValues", t1, p, None, "W", *sample, "3700.5", 3700.5, now),
        ("A", 1, 7, 0, "MeterValues", t1, p, "L1", "W", *sample, "1200", 1200.0, now),
        ("A", 1, 7, 0, "MeterValues", t2, e, None, "kWh", *sample, "0.2", 200.0, now),
        ("A", 1, 7, 0, "MeterValues", t2, e, None, "Wh", "Sample.Periodic", "Outlet", "SignedData", "QUJD", None, now),
        ("A", 1, 7, 0, "StopTransaction", t2, e, None, "Wh", "Transaction.End", "Outlet", "Raw", "210", 210.0, now),
    ]
    con = sqlite3.connect(path)
    con.executemany(f"INSERT INTO meter_values ({', '.join(columns)}) VALUES ({', '.join('?' * 15)})", old)
    con.execute(
        "INSERT INTO transactions (id, charger_id, connector_id, id_tag, auth_status, meter_start, start_timestamp,"
        " start_timestamp_raw, started_at, stopped_at) VALUES (7, 'A', 1, 'T', 'Accepted', 0, ?, ?, ?, ?)",
        (t1, t1, t1, now),
    )
    con.commit()
    con.close()
    monkeypatch.undo()
    store = await Store(path).open()
    try:
        assert store.migrated_from == 13
        readings = await store._query("SELECT charger_id, timestamp, source, power_w FROM meter_readings ORDER BY id")
        assert [tuple(r.values()) for r in readings] == [
            ("A", t1, "MeterValues", 3700.5), ("B", t1, "MeterValues", 7200.0), ("A", t2, "MeterValues", None),
            ("A", t2, "StopTransaction", None),
        ]
        view = await store._query(f"SELECT {', '.join(columns)} FROM meter_values ORDER BY id, position")
        assert [tuple(r.values()) for r in view] == [old[0], old[2], old[3], old[1], old[4], old[5], old[6]]
        # migration 16: the transaction's readings lie between its first and last (ids 1 and 7)
        assert await store._query("SELECT readings_from, readings_to FROM transactions") == [
            {"readings_from": 1, "readings_to": 7}
        ]
        assert [r["value"] for r in await store.meter_values_for(7)] == ["100", "3700.5", "1200", "0.2", "QUJD", "210"]
        samples = await store.power_samples_since(t1)
        assert [(r["charger_id"], r["value_num"]) for r in samples] == [("A", 3700.5), ("B", 7200.0)]
        # the charger sends its first reading again (its answer was lost just before the upgrade)
        resent = [SampledValue(t1, row[12], row[6], row[8], *row[9:12], row[7], row[13]) for row in (old[0], old[2], old[3])]
        assert (await store.meter_values("A", 1, 7, resent)).stored == 0
        changed = [*resent[:2], SampledValue(t1, "1300", p, "W", *sample, "L1", 1300.0)]
        assert (await store.meter_values("A", 1, 7, changed)).stored == 3  # not the same reading
    finally:
        await store.close()


async def test_newer_database_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 999")
    con.close()
    with pytest.raises(StoreError, match="newer"):
        await Store(path).open()


async def test_wal_mode_and_synchronous_setting(tmp_path: Path) -> None:
    store = await Store(tmp_path / "a.sqlite", synchronous="FULL").open()
    try:
        con = sqlite3.connect(tmp_path / "a.sqlite")
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        await store.close()


async def test_answer_comes_after_commit(csms: CentralSystem) -> None:
    """A separate connection sees the rows the moment the charger has its answer."""
    async with charger(csms, "CP1") as cp:
        await cp.boot()
        tx = (await cp.call(call.StartTransaction(connector_id=1, id_tag="A", meter_start=0, timestamp=TS))).transaction_id
        con = sqlite3.connect(csms.settings.db)
        assert con.execute("SELECT count(*) FROM transactions WHERE id = ?", (tx,)).fetchone()[0] == 1
        await cp.call(call.MeterValues(connector_id=1, transaction_id=tx,
                                       meter_value=[{"timestamp": TS, "sampledValue": [{"value": "5"}]}]))
        assert con.execute("SELECT count(*) FROM meter_values WHERE transaction_id = ?", (tx,)).fetchone()[0] == 1
        await cp.call(call.StopTransaction(meter_stop=9, timestamp=TS, transaction_id=tx))
        assert con.execute("SELECT energy_wh FROM transactions WHERE id = ?", (tx,)).fetchone()[0] == 9
        con.close()


async def test_concurrent_calls_share_commits(csms: CentralSystem) -> None:
    n = 20

    async def one(i: int) -> int:
        async with charger(csms, f"G{i}") as cp:
            await cp.boot()
            tx = (await cp.call(call.StartTransaction(connector_id=1, id_tag=f"T{i}", meter_start=0, timestamp=TS))).transaction_id
            for k in range(10):
                await cp.call(call.MeterValues(connector_id=1, transaction_id=tx,
                                               meter_value=[{"timestamp": TS, "sampledValue": [{"value": str(k)}]}]))
            return tx

    writer = csms.store.writer
    assert writer is not None
    before_commits, before_writes = writer.commits, writer.writes
    txs = await asyncio.gather(*(one(i) for i in range(n)))
    assert len(set(txs)) == n
    commits, writes = writer.commits - before_commits, writer.writes - before_writes
    assert writes >= n * 12
    assert commits < writes  # grouped, not one fsync per call
    con = sqlite3.connect(csms.settings.db)
    assert con.execute("SELECT count(*) FROM meter_values").fetchone()[0] == n * 10


async def test_message_log_is_kept_to_its_size(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(message_log_max_rows=100)) as system:
        async with charger(system, "CP1") as cp:
            await cp.boot()
            for _ in range(600):
                await cp.call(call.Heartbeat())
        await system.store.flush()
        rows = await system.store.message_log(limit=10_000)
    assert 100 <= len(rows) <= 100 + 1000 + 2
    assert len(rows) < 1202  # pruned: 1,202 frames were exchanged


async def test_failing_write_does_not_undo_others(tmp_path: Path) -> None:
    store = await Store(tmp_path / "s.sqlite").open()
    try:
        def bad(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO id_tags (id_tag, created_at) VALUES ('HALF', 'x')")
            raise RuntimeError("boom")

        results = await asyncio.gather(store.upsert_id_tag("A"), store._write(bad), store.upsert_id_tag("B"),
                                       return_exceptions=True)
        assert isinstance(results[1], RuntimeError)
        assert [t["id_tag"] for t in await store.id_tags()] == ["A", "B"]
    finally:
        await store.close()


async def test_a_one_statement_write_fails_alone_without_a_savepoint(tmp_path: Path) -> None:
    """A write submitted as one statement runs without a savepoint: SQLite undoes the failed
    statement, half-done rows included, and the group's other writes stay."""
    store = await Store(tmp_path / "s.sqlite").open()
    try:
        def bad(conn: sqlite3.Connection) -> None:  # the first row is fine, the second is a duplicate
            conn.execute("INSERT INTO id_tags (id_tag, created_at) VALUES ('HALF', 'x'), ('HALF', 'x')")

        results = await asyncio.gather(store.upsert_id_tag("A"), store._write(bad, one_statement=True),
                                       store.upsert_id_tag("B"), return_exceptions=True)
        assert isinstance(results[1], sqlite3.IntegrityError)
        assert [t["id_tag"] for t in await store.id_tags()] == ["A", "B"]
    finally:
        await store.close()


async def test_a_call_with_several_readings_is_stored_whole(tmp_path: Path) -> None:
    """Several meterValue elements in one MeterValues: one reading each, inserted by one statement;
    the log's frames, written many to a statement, keep their order."""
    store = await Store(tmp_path / "s.sqlite").open()
    try:
        samples = [SampledValue(f"2026-01-01T10:{m:02d}:00Z", str(m), "Energy.Active.Import.Register", "Wh",
                                "Sample.Periodic", "Outlet", "Raw", None, float(m)) for m in range(40)]
        batch = await store.meter_values("CP", 1, None, samples)
        assert batch.stored == 40 and batch.latest == {"Energy.Active.Import.Register": 39.0}
        rows = await store._query("SELECT timestamp, samples FROM meter_readings ORDER BY id")
        assert [r["timestamp"] for r in rows] == [s.timestamp for s in samples]
        for n in range(150):
            store.log_frame(Frame("CP", "in", TS, 2, str(n), "Heartbeat", "[2,\"%d\",\"Heartbeat\",{}]" % n))
        await store.flush()
        assert [r["unique_id"] for r in reversed(await store.message_log("CP"))] == [str(n) for n in range(150)]
    finally:
        await store.close()


async def test_a_reading_with_nothing_to_look_up_joins_the_group_s_one_insert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A charger's first reading is a write of its own (is it a resend?); a later, newer one of a
    transaction whose charger is known is a row of the group's shared insert, and the caller
    still waits for its commit and learns whether the transaction is someone else's."""
    import ocpp_console.store.meter as meter

    grouped: list[int] = []
    original = meter._insert_group_readings

    def spy(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        grouped.append(len(rows))
        original(conn, rows)

    monkeypatch.setattr(meter, "_insert_group_readings", spy)
    store = await Store(tmp_path / "s.sqlite").open()
    try:
        await store.add_charger("A")
        await store.add_charger("B")
        tx = (await store.start_transaction("A", 1, "TAG", 0, TS, TS, None, "accept")).transaction_id

        def reading(minute: int) -> list[SampledValue]:
            return [SampledValue(f"2026-01-01T10:{minute:02d}:00Z", str(minute), "Energy.Active.Import.Register",
                                 "Wh", "Sample.Periodic", "Outlet", "Raw", None, float(minute))]

        first = await store.meter_values("A", 1, tx, reading(1))
        assert grouped == [] and first.stored == 1 and not first.unknown_transaction
        batches = await asyncio.gather(store.meter_values("A", 1, tx, reading(2)), store.meter_values("B", 1, tx, reading(1)))
        assert grouped == [1]  # B's first reading is looked up; A's second joins the group
        assert [(b.stored, b.unknown_transaction) for b in batches] == [(1, False), (1, True)]
        again = await store.meter_values("B", 1, tx, reading(2))
        assert grouped == [1, 1] and again.unknown_transaction  # B's is a transaction of A's
        rows = await store._query("SELECT charger_id, timestamp, unknown_transaction FROM meter_readings ORDER BY id")
        assert [(r["charger_id"], r["timestamp"][14:16], r["unknown_transaction"]) for r in rows] == [
            ("A", "01", 0), ("A", "02", 0), ("B", "01", 1), ("B", "02", 1)]
    finally:
        await store.close()


async def test_rows_that_fail_fail_their_waiters_and_nothing_else(tmp_path: Path) -> None:
    store = await Store(tmp_path / "s.sqlite").open()
    try:
        def bad_rows(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
            conn.executemany("INSERT INTO id_tags (id_tag, created_at) VALUES (?, 'x')", rows)
            raise RuntimeError("disk says no")

        assert store.writer is not None
        results = await asyncio.gather(
            store.writer.submit_row_waited(bad_rows, ("HALF",), "never"), store.upsert_id_tag("A"),
            store.writer.submit_row_waited(bad_rows, ("HALF2",), "never"), return_exceptions=True,
        )
        assert isinstance(results[0], RuntimeError) and isinstance(results[2], RuntimeError)
        assert [t["id_tag"] for t in await store.id_tags()] == ["A"]  # the failed rows undone, the rest kept
    finally:
        await store.close()


async def test_resent_meter_values_are_stored_once(csms: CentralSystem) -> None:
    """A MeterValues sent again (its answer was lost) adds nothing; a sample that differs in any
    of connector, phase, measurand, value or transaction is a sample of its own."""
    async with charger(csms, "CP1") as cp:
        await cp.boot()
        tx = (await cp.call(call.StartTransaction(connector_id=1, id_tag="A", meter_start=0, timestamp=TS))).transaction_id
        sampled = [
            {"value": "5"},
            {"value": "7", "measurand": "Power.Active.Import", "unit": "W"},
            {"value": "7", "measurand": "Power.Active.Import", "unit": "W", "phase": "L1"},
            {"value": "5"},  # the same sample twice in one message: one row
        ]
        for _ in range(3):
            await cp.call(call.MeterValues(connector_id=1, transaction_id=tx,
                                           meter_value=[{"timestamp": TS, "sampledValue": sampled}]))
        await cp.call(call.MeterValues(connector_id=2, meter_value=[{"timestamp": TS, "sampledValue": sampled}]))
        await cp.call(call.MeterValues(connector_id=1, transaction_id=tx,
                                       meter_value=[{"timestamp": TS, "sampledValue": [{"value": "6"}]}]))
    con = sqlite3.connect(csms.settings.db)
    rows = con.execute("SELECT connector_id, transaction_id, measurand, phase, value FROM meter_values"
                       " ORDER BY id, position").fetchall()
    energy = "Energy.Active.Import.Register"
    assert rows == [
        (1, tx, energy, None, "5"), (1, tx, "Power.Active.Import", None, "7"), (1, tx, "Power.Active.Import", "L1", "7"),
        (2, None, energy, None, "5"), (2, None, "Power.Active.Import", None, "7"), (2, None, "Power.Active.Import", "L1", "7"),
        (1, tx, energy, None, "6"),
    ]


async def test_the_wal_is_checkpointed_beside_the_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer leaves checkpoints to a connection of its own (its own would come only at
    ~200 MB of WAL): what is committed reaches the database file within a few rounds."""
    monkeypatch.setattr("ocpp_console.store.store.CHECKPOINT_EVERY", 0.1)
    path = tmp_path / "c.sqlite"
    store = await Store(path).open()
    try:
        size_before = path.stat().st_size
        from ocpp_console.store import Frame

        for i in range(200):
            store.log_frame(Frame("CP1", "in", TS, 2, str(i), "DataTransfer", "x" * 8000))
        await store.flush()
        deadline = asyncio.get_running_loop().time() + 5
        while path.stat().st_size < size_before + 1_000_000:
            assert asyncio.get_running_loop().time() < deadline, "the WAL was not checkpointed into the database"
            await asyncio.sleep(0.05)
    finally:
        await store.close()


async def test_the_writer_takes_its_big_cache_after_a_run_of_big_groups(tmp_path: Path) -> None:
    """Small groups never spill SQLite's 2 MB cache, so a quiet site does not hold 16 MB for it,
    nor does a site after one big group (a stall, a boot storm); a run of them takes it."""
    from ocpp_console.store import Frame
    from ocpp_console.store.store import BIG_GROUP_WRITES, BIG_GROUPS_IN_A_ROW, WRITER_CACHE_KIB

    store = await Store(tmp_path / "g.sqlite").open()
    try:
        assert store.writer is not None and store._db is not None
        cache = lambda conn: conn.execute("PRAGMA cache_size").fetchone()[0]  # noqa: E731

        async def big_group() -> None:
            for i in range(BIG_GROUP_WRITES):  # queued before the writer runs: one group
                store.log_frame(Frame("CP1", "in", TS, 2, str(i), "Heartbeat", "[2,\"1\",\"Heartbeat\",{}]"))
            await store.flush()

        await store.upsert_id_tag("A")
        assert not store.writer.cache_grown
        assert await store._db._execute(cache, store._db._conn) == -2000  # SQLite's default
        for _ in range(BIG_GROUPS_IN_A_ROW - 1):
            await big_group()
        await store.upsert_id_tag("B")  # a small group breaks the run
        for _ in range(BIG_GROUPS_IN_A_ROW - 1):
            await big_group()
        assert not store.writer.cache_grown
        await big_group()
        assert store.writer.cache_grown
        assert await store._db._execute(cache, store._db._conn) == -WRITER_CACHE_KIB
    finally:
        await store.close()


async def test_a_charger_s_frames_are_read_across_the_log_s_stretches(tmp_path: Path) -> None:
    """The log's index is keyed by stretches of 4,096 frames (migration 15): a charger's newest
    frames come newest first from as many stretches as it takes, a quiet charger's from the
    whole log, and what pruning removed is gone."""
    store = await Store(tmp_path / "s.sqlite", message_log_max_rows=9_000).open()
    try:
        for n in range(12_000):  # A every frame but each tenth, which is Q's
            store.log_frame(Frame("Q" if n % 10 == 0 else "A", "in", TS, 2, str(n), "Heartbeat", "[]"))
        store.log_frame(Frame("RARE", "in", TS, 2, "only", "Heartbeat", "[]"))
        await store.flush()
        newest_a = [int(r["unique_id"]) for r in await store.message_log("A", limit=5_000)]
        assert newest_a == [n for n in range(11_999, -1, -1) if n % 10][:5_000]  # three stretches at least
        q = [int(r["unique_id"]) for r in await store.message_log("Q", limit=10_000)]
        oldest_kept = (await store._query("SELECT min(id) AS id FROM message_log"))[0]["id"]
        assert q == [n for n in range(11_990, oldest_kept - 2, -10) if n >= oldest_kept - 1]
        assert len(q) < 1_200  # pruned: 12,001 frames came, about 9,000 are kept
        assert [r["unique_id"] for r in await store.message_log("RARE")] == ["only"]
        assert await store.message_log("NOBODY") == []
    finally:
        await store.close()
