"""Meter readings indexed by stretch of ids (migration 16, issue 17): a transaction's readings are
its charger's within the span of ids recorded on it, a charger's charts read the stretches
received since their window, and nothing is lost across stretches. A real SQLite file; ids are
moved on by a filler reading so that a few readings span several stretches of 4,096."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ocpp_console.store import Store
from ocpp_console.store.models import SampledValue
from ocpp_console.store.stretches import STRETCH_BITS
from ocpp_console.store.transactions import settlement_samples
from ocpp_console.timeutil import iso, set_clock

ENERGY, POWER = "Energy.Active.Import.Register", "Power.Active.Import"
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)


def at(minute: float) -> str:
    return iso(T0 + timedelta(minutes=minute))


def reading(minute: float, wh: float, power: float | None = None) -> list[SampledValue]:
    samples = [SampledValue(at(minute), str(wh), ENERGY, "Wh", "Sample.Periodic", "Outlet", "Raw", None, wh)]
    if power is not None:
        samples.append(SampledValue(at(minute), str(power), POWER, "W", "Sample.Periodic", "Outlet", "Raw", None, power))
    return samples


@pytest.fixture
def clock() -> Callable[[float], None]:
    """Our receive time, set by the test (minutes after T0)."""
    now = [T0]
    set_clock(lambda: now[0])

    def move(minute: float) -> None:
        now[0] = T0 + timedelta(minutes=minute)

    yield move
    set_clock(None)


async def skip_stretches(store: Store, count: int, received: str) -> None:
    """Another charger's reading `count` stretches further on: the next ids start past it."""
    def fn(conn: sqlite3.Connection) -> None:
        newest = conn.execute("SELECT coalesce(max(id), 0) FROM meter_readings").fetchone()[0]
        conn.execute(
            "INSERT INTO meter_readings (id, charger_id, connector_id, source, timestamp, samples, received_at)"
            " VALUES (?, 'FILLER', 1, 'MeterValues', ?, '[]', ?)",
            (newest + count * (1 << STRETCH_BITS), received, received),
        )
    await store._write(fn)


async def test_a_transaction_s_readings_are_its_charger_s_within_its_span(tmp_path: Path, clock: Callable[[float], None]) -> None:
    store = await Store(tmp_path / "s.sqlite").open()
    try:
        await store.meter_values("A", 1, None, reading(0, 900))  # before the transaction: not its
        tx = (await store.start_transaction("A", 1, "TAG", 1000, at(1), at(1), None, "accept")).transaction_id
        expected = []
        for n in range(5):
            clock(2 + n)
            await store.meter_values("A", 1, tx, reading(2 + n, 1000 + 100 * n, 7000 + n))
            expected += [str(1000 + 100 * n), str(7000 + n)]
            await store.meter_values("B", 1, tx, reading(2 + n, 5))  # another charger's claim: flagged, not its
            await store.meter_values("A", 2, None, reading(2 + n, 50))  # its other connector
            await skip_stretches(store, 3, at(2 + n))
        ids = [r["id"] for r in await store.meter_values_for(tx)]
        assert [r["value"] for r in await store.meter_values_for(tx)] == expected
        assert len({i >> STRETCH_BITS for i in ids}) == 5 and ids == sorted(ids)
        latest = {r["measurand"]: r["value_num"] for r in await store.latest_samples([tx])}
        assert latest == {ENERGY: 1400.0, POWER: 7004.0}

        stop = await store.stop_transaction("A", tx, 1500, at(8), "Local", None, "accept", reading(8, 1500), "{}")
        assert stop.outcome == "stopped"
        span = (await store._query("SELECT readings_from, readings_to FROM transactions WHERE id = ?", (tx,)))[0]
        assert span["readings_to"] == (await store._query("SELECT max(id) AS id FROM meter_readings"))[0]["id"]
        # The charger's queue delivers a reading of the stopped transaction after all: stored,
        # its own, and the span's end moves to it.
        await skip_stretches(store, 2, at(9))
        late = await store.meter_values("A", 1, tx, reading(7.5, 1450))
        assert late.stored == 1 and not late.unknown_transaction
        assert [r["value"] for r in await store.meter_values_for(tx)][-2:] == ["1500", "1450"]
        on_writer = await store._write(lambda conn: settlement_samples(conn, tx))
        assert [v for (_, m, v) in on_writer if m == ENERGY] == [1000.0, 1100.0, 1200.0, 1300.0, 1400.0, 1450.0, 1500.0]
        assert [r["transaction_id"] for r in await store.meter_values_of("B")] == [tx] * 5  # kept, flagged
    finally:
        await store.close()


async def test_a_closed_transaction_finds_readings_that_come_after_its_close(
    tmp_path: Path, clock: Callable[[float], None]
) -> None:
    """Closed by the operator while its charger was away: the readings the charger queued come
    after the close and belong to it, for its order and its late stop's settlement."""
    store = await Store(tmp_path / "s.sqlite").open()
    try:
        tx = (await store.start_transaction("A", 1, "TAG", 0, at(0), at(0), None, "accept")).transaction_id
        await store.meter_values("A", 1, tx, reading(1, 100))
        assert (await store.close_transaction(tx, "closed-by-operator", None)).outcome == "closed"
        await skip_stretches(store, 1, at(2))
        for n in range(3):
            await store.meter_values("A", 1, tx, reading(2 + n, 200 + 100 * n))
        assert [r["value_num"] for r in await store.meter_values_for(tx)] == [100.0, 200.0, 300.0, 400.0]
        late = await store.stop_transaction("A", tx, 500, at(6), "Local", None, "accept", reading(6, 500), "{}")
        assert late.outcome == "late"
        assert [r["value_num"] for r in await store.meter_values_for(tx)] == [100.0, 200.0, 300.0, 400.0, 500.0]
    finally:
        await store.close()


async def test_a_charger_s_chart_reads_the_stretches_received_in_its_window(
    tmp_path: Path, clock: Callable[[float], None]
) -> None:
    store = await Store(tmp_path / "s.sqlite").open()
    try:
        for minute in range(0, 180, 10):  # three hours, a reading each 10 minutes, stretches apart
            clock(minute)
            await store.meter_values("A", 1, None, reading(minute, minute, 1000 + minute))
            await store.meter_values("B", 1, None, reading(minute, 0, 1))
            await skip_stretches(store, 2, at(minute))
            if minute == 90:
                # sent at our 95 by a clock 40.5 minutes ahead: inside the window by its stamp
                clock(95)
                await store.meter_values("A", 1, None, reading(135.5, 135.5))
        clock(181)
        await store.meter_values("A", 1, None, reading(125, 125.0))  # queued while offline: old, received now
        rows = await store.charger_samples_since("A", at(120), (POWER, ENERGY))
        got = [(r["timestamp"], r["value_num"]) for r in rows if r["measurand"] == ENERGY]
        assert got == [(at(120), 120.0), (at(125), 125.0), (at(130), 130.0), (at(135.5), 135.5), (at(140), 140.0),
                       (at(150), 150.0), (at(160), 160.0), (at(170), 170.0)]
        assert [r["value_num"] for r in rows if r["measurand"] == POWER] == [1120.0, 1130.0, 1140.0, 1150.0, 1160.0, 1170.0]
        assert await store.charger_samples_since("NOBODY", at(0), (POWER,)) == []
        assert await store.charger_samples_since("A", at(200), (POWER,)) == []
        newest = await store.meter_values_of("A", limit=4)
        assert [(r["timestamp"], r["measurand"]) for r in newest] == [
            (at(125), ENERGY), (at(170), POWER), (at(170), ENERGY), (at(160), POWER)]
    finally:
        await store.close()


async def test_the_readings_queries_look_up_their_indexes(tmp_path: Path) -> None:
    """Each per-charger or per-transaction read is one index look-up per stretch (or one range of
    the time index), never a scan of every reading."""
    from ocpp_console.store import meter

    store = await Store(tmp_path / "s.sqlite").open()
    await store.close()
    conn = sqlite3.connect(tmp_path / "s.sqlite")
    try:
        queries = [
            ("SELECT samples FROM meter_readings WHERE charger_id = ? AND timestamp = ? ORDER BY id DESC LIMIT ?",
             ("A", at(0), 5), "USING INDEX meter_readings_time (timestamp=? AND charger_id=?)"),
            ("SELECT power_w FROM meter_readings WHERE power_w IS NOT NULL AND timestamp >= ? ORDER BY timestamp, id",
             (at(0),), "USING INDEX meter_readings_time (timestamp>?)"),
            (f"{meter.TX_READINGS} SELECT * FROM tx_samples ORDER BY id, position", (1,),
             "SEARCH m USING INDEX meter_readings_charger (<expr>=? AND charger_id=?)"),
            (f"{meter._CHARGER_READINGS} SELECT * FROM charger_samples WHERE timestamp >= ?3", (0, "A", at(0)),
             "SEARCH m USING INDEX meter_readings_charger (<expr>=? AND charger_id=?)"),
            (meter._NEWEST_OF_CHARGER, (0, "A", 5), "USING INDEX meter_readings_charger (<expr>=? AND charger_id=?)"),
        ]
        for sql, params, expected in queries:
            plan = [row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            assert any(expected in step for step in plan), plan
            assert not any(step.startswith("SCAN m") or step == "SCAN meter_readings" for step in plan), plan
    finally:
        conn.close()
