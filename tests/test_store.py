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
                       " ORDER BY id").fetchall()
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


async def test_the_writer_takes_its_big_cache_at_the_first_big_group(tmp_path: Path) -> None:
    """Small groups never spill SQLite's 2 MB cache, so a quiet site does not hold 16 MB for it."""
    from ocpp_console.store import Frame
    from ocpp_console.store.store import BIG_GROUP_WRITES, WRITER_CACHE_KIB

    store = await Store(tmp_path / "g.sqlite").open()
    try:
        assert store.writer is not None and store._db is not None
        cache = lambda conn: conn.execute("PRAGMA cache_size").fetchone()[0]  # noqa: E731
        await store.upsert_id_tag("A")
        assert not store.writer.cache_grown
        assert await store._db._execute(cache, store._db._conn) == -2000  # SQLite's default
        for i in range(BIG_GROUP_WRITES):  # queued before the writer runs: one group
            store.log_frame(Frame("CP1", "in", TS, 2, str(i), "Heartbeat", "[2,\"1\",\"Heartbeat\",{}]"))
        await store.flush()
        assert store.writer.cache_grown
        assert await store._db._execute(cache, store._db._conn) == -WRITER_CACHE_KIB
    finally:
        await store.close()
