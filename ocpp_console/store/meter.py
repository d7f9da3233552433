"""Meter values: stored one reading (a meterValue element) per row, read as sampled values.

A MeterValues of four sampled values is one row of `meter_readings`, its samples together as
JSON, rather than four rows each written into three indexes (issue 17: the writer's cost per
call halved). Everything that reads per sample goes through the `meter_values` view, which
expands a reading's samples (migration 14).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from ocpp_console.store.models import MeterBatch, Row, SampledValue
from ocpp_console.store.writer import GroupWriter, insert_rows
from ocpp_console.timeutil import now_iso

# Readings of one charger and timestamp that a resent one is compared with (the newest).
DEDUPE_WINDOW = 256
_POWER = "Power.Active.Import"
_INSERT = ("INSERT INTO meter_readings (charger_id, connector_id, transaction_id, unknown_transaction, source,"
           " timestamp, samples, power_w, received_at) VALUES ")
_ROW = "(?,?,?,?,?,?,?,?,?)"


def _insert_group_readings(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """The readings of a group's calls that needed no look-up (MeterMixin.meter_values), together."""
    insert_rows(conn, _INSERT, _ROW, rows)


def _latest(samples: Sequence[SampledValue]) -> dict[str, float]:
    """The newest whole-charger value per measurand; a per-phase value only when that is all."""
    latest: dict[str, float] = {}
    whole: set[str] = set()
    for sv in samples:
        if sv.value_num is None or (sv.phase is not None and sv.measurand in whole):
            continue
        latest[sv.measurand] = sv.value_num
        if sv.phase is None:
            whole.add(sv.measurand)
    return latest


def _insert_readings(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert the readings of one call atomically, so that its write needs no savepoint from the
    writer (GroupWriter.submit's one_statement): one statement, which SQLite undoes by itself if
    it fails, or, for a call of several readings, a savepoint of its own."""
    if len(rows) == 1:
        conn.execute(_INSERT + _ROW, rows[0])
        return
    conn.execute("SAVEPOINT readings")
    try:
        insert_rows(conn, _INSERT, _ROW, rows)
    except BaseException:
        conn.execute("ROLLBACK TO readings")
        raise
    finally:
        conn.execute("RELEASE readings")


def reading_samples(samples: Sequence[SampledValue]) -> tuple[str, int, float | None]:
    """A reading's samples as stored (the JSON of meter_readings.samples), how many, and its
    whole-connector power."""
    power = None
    for sv in samples:
        if sv.measurand == _POWER and sv.phase is None and sv.value_num is not None:
            power = sv.value_num if power is None else max(power, sv.value_num)
    values = [(sv.measurand, sv.phase, sv.unit, sv.context, sv.location, sv.format, sv.value, sv.value_num)
              for sv in samples]
    if len(values) > 1:
        values = list(dict.fromkeys(values))  # the same sample twice in one reading is stored once
    return orjson.dumps(values).decode(), len(values), power  # text: SQLite's JSON functions read no blob before 3.45


class MeterMixin:
    """Writing meter readings (writer thread) and reading them back."""

    if TYPE_CHECKING:  # provided by Store
        _newest_sample: dict[str, str]
        _newest_lock: threading.Lock
        _tx_charger: dict[int, str]
        writer: GroupWriter | None

        def _write(self, fn: Any, one_statement: bool = False) -> asyncio.Future[Any]: ...
        async def _query(self, sql: str, params: Any = ()) -> list[Row]: ...

    def _insert_samples(
        self,
        conn: sqlite3.Connection,
        charger_id: str,
        connector_id: int,
        transaction_id: int | None,
        unknown: bool,
        source: str,
        samples: Sequence[SampledValue],
        now: str,
    ) -> int:
        """Store the samples as readings, one per timestamp (a meterValue element); the number of
        samples stored."""
        # The same reading sent again (its answer was lost) is already stored: the newest readings
        # this charger has at its timestamp (one look-up on meter_readings_charger_time, usually
        # empty) say so. A charger resends only its last unanswered calls, so the newest
        # DEDUPE_WINDOW readings suffice, and a charger whose clock is stuck at one time costs no
        # more. A timestamp newer than any this charger has had stored by this process cannot be
        # a resend, so the look-up is skipped (after a restart, each charger's first call looks).
        readings: dict[str, list[SampledValue]] = {}
        for sv in samples:
            at = readings.get(sv.timestamp)
            if at is None:
                readings[sv.timestamp] = [sv]
            else:
                at.append(sv)
        newest = self._newest_sample.get(charger_id)
        tx_key = -1 if transaction_id is None else transaction_id
        rows = []
        stored = 0
        for timestamp, group in readings.items():
            text, count, power = reading_samples(group)
            if newest is None or timestamp <= newest:
                key = (connector_id, tx_key, source, text)
                if key in conn.execute(
                    "SELECT connector_id, coalesce(transaction_id, -1), source, samples FROM meter_readings"
                    " WHERE charger_id = ? AND timestamp = ? ORDER BY id DESC LIMIT ?",
                    (charger_id, timestamp, DEDUPE_WINDOW),
                ).fetchall():
                    continue
            rows.append((charger_id, connector_id, transaction_id, int(unknown), source, timestamp, text, power, now))
            stored += count
        if rows:
            _insert_readings(conn, rows)
        if readings:
            self._stored_up_to(charger_id, max(readings))
        return stored

    def _stored_up_to(self, charger_id: str, timestamp: str) -> bool:
        """Note a reading of the charger at this time; True if it is the newest so far. Called from
        both threads; the lock keeps the newest time from ever going back, which would skip the
        look-up of a resend."""
        with self._newest_lock:
            newest = self._newest_sample.get(charger_id)
            if newest is None or timestamp > newest:
                self._newest_sample[charger_id] = timestamp
                return True
            return False

    def _transaction_charger(self, conn: sqlite3.Connection, transaction_id: int) -> str | None:
        """Whose transaction this is (writer thread). A transaction's charger never changes and
        no transaction is deleted, so a known one is remembered: one query less per MeterValues."""
        owner = self._tx_charger.get(transaction_id)
        if owner is None:
            row = conn.execute("SELECT charger_id FROM transactions WHERE id = ?", (transaction_id,)).fetchone()
            if row is not None:
                if len(self._tx_charger) >= 100_000:
                    self._tx_charger.clear()
                owner = self._tx_charger[transaction_id] = row[0]
        return owner

    def meter_values(
        self, charger_id: str, connector_id: int, transaction_id: int | None, samples: list[SampledValue]
    ) -> asyncio.Future[MeterBatch]:
        now = now_iso()
        latest = _latest(samples)
        # The usual call: one reading, newer than any of this charger's stored since the start,
        # of no transaction or one whose charger is known. Nothing to look up, so its row joins
        # the group's other readings, all inserted by one statement, instead of being a write of
        # its own (issue 17). The time is taken as the newest at once: were the commit to fail,
        # the charger's resend would only be looked up.
        owner = self._tx_charger.get(transaction_id) if transaction_id is not None else None
        if (samples and self.writer is not None and self._newest_sample.get(charger_id) is not None
                and (transaction_id is None or owner is not None)):
            timestamp = samples[0].timestamp
            if all(sv.timestamp == timestamp for sv in samples) and self._stored_up_to(charger_id, timestamp):
                unknown = transaction_id is not None and owner != charger_id
                text, count, power = reading_samples(samples)
                row = (charger_id, connector_id, transaction_id, int(unknown), "MeterValues", timestamp, text, power, now)
                return self.writer.submit_row_waited(_insert_group_readings, row, MeterBatch(count, unknown, latest))

        def fn(conn: sqlite3.Connection) -> MeterBatch:
            unknown = False
            if transaction_id is not None:
                unknown = self._transaction_charger(conn, transaction_id) != charger_id
            stored = self._insert_samples(
                conn, charger_id, connector_id, transaction_id, unknown, "MeterValues", samples, now
            )
            return MeterBatch(stored, unknown, latest)

        return self._write(fn, one_statement=True)

    # -- reads ------------------------------------------------------------------------

    async def latest_samples(self, transaction_ids: Sequence[int]) -> list[Row]:
        """The newest whole-connector value of each measurand of each of these transactions."""
        if not transaction_ids:
            return []
        marks = ",".join("?" * len(transaction_ids))
        # SQLite returns the other columns from the row holding the max() (the newest sample).
        return await self._query(
            f"SELECT transaction_id, measurand, value_num, max(id * 65536 + position) AS newest FROM meter_values"
            f" WHERE transaction_id IN ({marks}) AND phase IS NULL AND value_num IS NOT NULL"
            f" GROUP BY transaction_id, measurand",
            tuple(transaction_ids),
        )

    async def charger_samples_since(self, charger_id: str, since: str, measurands: Sequence[str]) -> list[Row]:
        marks = ",".join("?" * len(measurands))
        return await self._query(
            f"SELECT connector_id, timestamp, measurand, value_num FROM meter_values WHERE charger_id = ?"
            f" AND timestamp >= ? AND measurand IN ({marks}) AND phase IS NULL AND value_num IS NOT NULL"
            f" ORDER BY timestamp, id, position",
            (charger_id, since, *measurands),
        )

    async def power_samples_since(self, since: str) -> list[Row]:
        """Whole-connector power samples (no phase) since a time, oldest first."""
        return await self._query(
            "SELECT charger_id, connector_id, timestamp, power_w AS value_num FROM meter_readings"
            " WHERE power_w IS NOT NULL AND timestamp >= ? ORDER BY timestamp, id",
            (since,),
        )

    async def meter_values_for(self, transaction_id: int) -> list[Row]:
        return await self._query(
            "SELECT * FROM meter_values WHERE transaction_id = ? ORDER BY id, position", (transaction_id,)
        )

    async def meter_values_of(self, charger_id: str, limit: int = 1000) -> list[Row]:
        return await self._query(
            "SELECT * FROM meter_values WHERE charger_id = ? ORDER BY id DESC, position DESC LIMIT ?", (charger_id, limit)
        )
