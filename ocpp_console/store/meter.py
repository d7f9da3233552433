"""Meter values: stored one reading (a meterValue element) per row, read as sampled values.

A MeterValues of four sampled values is one row of `meter_readings`, its samples together as
JSON, rather than four rows each written into three indexes (issue 17: the writer's cost per
call halved). Everything that reads per sample goes through the `meter_values` view, which
expands a reading's samples (migration 14).

The readings are indexed by charger within a stretch of ids and by (timestamp, charger_id),
so that a group's readings land together (migration 16, store/stretches.py). A transaction's
readings are its charger's within the span of ids recorded on it (`readings_from`,
`readings_to`): a transaction's readings come after its StartTransaction was stored, and its
stop records the newest id. A reading of a stopped transaction that comes later moves its end.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from ocpp_console.store.models import MeterBatch, Row, SampledValue
from ocpp_console.store.stretches import (
    STRETCH_BITS,
    first_id_at_or_after,
    newest_first,
    rows_of,
)
from ocpp_console.store.writer import GroupWriter, insert_rows, savepoint
from ocpp_console.timeutil import now_iso, shift_iso

# Readings of one charger and timestamp that a resent one is compared with (the newest).
DEDUPE_WINDOW = 256
_POWER = "Power.Active.Import"
_INSERT = ("INSERT INTO meter_readings (charger_id, connector_id, transaction_id, unknown_transaction, source,"
           " timestamp, samples, power_w, received_at) VALUES ")
_ROW = "(?,?,?,?,?,?,?,?,?)"
# A charger's clock may run ahead of ours: its charts look this much further back, by our receive
# time, for readings its clock puts inside their window.
CHART_CLOCK_SLACK_S = 3600

# The samples of the readings `r`, one row each: the columns of the meter_values view.
_SAMPLES = (
    "SELECT r.id, s.key AS position, r.charger_id, r.connector_id, r.transaction_id, r.unknown_transaction,"
    " r.source, r.timestamp, json_extract(s.value, '$[0]') AS measurand, json_extract(s.value, '$[1]') AS phase,"
    " json_extract(s.value, '$[2]') AS unit, json_extract(s.value, '$[3]') AS context,"
    " json_extract(s.value, '$[4]') AS location, json_extract(s.value, '$[5]') AS format,"
    " json_extract(s.value, '$[6]') AS value, json_extract(s.value, '$[7]') AS value_num, r.received_at"
    " FROM {readings} AS r, json_each(r.samples) AS s"
)

# A transaction's readings (`tx_readings`) and their samples (`tx_samples`), for a query with the
# transaction's id as ?1: its charger's readings of it, one index look-up per stretch of its span
# (the CROSS JOIN keeps the stretches the outer loop).
TX_READINGS = (
    "WITH RECURSIVE span(charger_id, stretch, last) AS ("
    f" SELECT charger_id, readings_from >> {STRETCH_BITS},"
    f" coalesce(readings_to, (SELECT max(id) FROM meter_readings)) >> {STRETCH_BITS}"
    " FROM transactions WHERE id = ?1"
    " UNION ALL SELECT charger_id, stretch + 1, last FROM span WHERE stretch < last),"
    " tx_readings AS (SELECT m.* FROM span CROSS JOIN meter_readings AS m"
    f" WHERE m.id >> {STRETCH_BITS} = span.stretch AND m.charger_id = span.charger_id AND m.transaction_id = ?1),"
    f" tx_samples AS ({_SAMPLES.format(readings='tx_readings')}) "
)

# Charger ?2's readings from stretch ?1 to the newest (`charger_readings`) and their samples.
_CHARGER_READINGS = (
    "WITH RECURSIVE span(stretch, last) AS ("
    f" SELECT ?1, (SELECT max(id) FROM meter_readings) >> {STRETCH_BITS}"
    " UNION ALL SELECT stretch + 1, last FROM span WHERE stretch < last),"
    " charger_readings AS (SELECT m.* FROM span CROSS JOIN meter_readings AS m"
    f" WHERE m.id >> {STRETCH_BITS} = span.stretch AND m.charger_id = ?2),"
    f" charger_samples AS ({_SAMPLES.format(readings='charger_readings')}) "
)
_NEWEST_OF_CHARGER = (
    f"{_SAMPLES.format(readings='meter_readings')} WHERE r.id >> {STRETCH_BITS} = ? AND r.charger_id = ?"
    " ORDER BY r.id DESC, s.key DESC LIMIT ?"
)


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
    with savepoint(conn, "readings"):
        insert_rows(conn, _INSERT, _ROW, rows)


def _end_span_at_newest(conn: sqlite3.Connection, transaction_id: int) -> None:
    """The transaction's readings end, for now, at the newest reading stored (ids only grow)."""
    conn.execute(
        "UPDATE transactions SET readings_to = (SELECT coalesce(max(id), 0) FROM meter_readings) WHERE id = ?",
        (transaction_id,),
    )


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
        async def _read(self, fn: Any) -> Any: ...

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

    def _insert_after_stop(
        self, conn: sqlite3.Connection, charger_id: str, connector_id: int, transaction_id: int | None,
        samples: Sequence[SampledValue], now: str,
    ) -> int:
        """Readings of a transaction already stopped (a charger's queue delivered after we closed
        it): stored, and its span's end moved to them, atomically."""
        with savepoint(conn, "late_readings"):
            stored = self._insert_samples(conn, charger_id, connector_id, transaction_id, False, "MeterValues",
                                          samples, now)
            _end_span_at_newest(conn, transaction_id)
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

    def _transaction_charger(self, conn: sqlite3.Connection, transaction_id: int) -> tuple[str | None, bool]:
        """Whose transaction this is, and whether it is stopped (writer thread). A transaction's
        charger never changes, so a running one's is remembered: one query less per MeterValues,
        and its readings may take the group's row path (meter_values). A stop forgets it
        (forget_transaction), so that a later reading of it comes here and moves its span's end."""
        owner = self._tx_charger.get(transaction_id)
        if owner is not None:
            return owner, False
        row = conn.execute("SELECT charger_id, stopped_at FROM transactions WHERE id = ?", (transaction_id,)).fetchone()
        if row is None:
            return None, False
        if row[1] is None:
            if len(self._tx_charger) >= 100_000:
                self._tx_charger.clear()
            self._tx_charger[transaction_id] = row[0]
        return row[0], row[1] is not None

    def forget_transaction(self, conn: sqlite3.Connection, transaction_id: int) -> None:
        """A transaction is stopped or closed (writer thread): its span ends at the newest reading,
        and its charger is no longer taken from memory, so that a reading that still comes for
        it is stored by the look-up path, which moves the end (_insert_after_stop)."""
        _end_span_at_newest(conn, transaction_id)
        self._tx_charger.pop(transaction_id, None)

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
            unknown = stopped = False
            if transaction_id is not None:
                owner, stopped = self._transaction_charger(conn, transaction_id)
                unknown = owner != charger_id
            if stopped and not unknown:
                stored = self._insert_after_stop(conn, charger_id, connector_id, transaction_id, samples, now)
            else:
                stored = self._insert_samples(
                    conn, charger_id, connector_id, transaction_id, unknown, "MeterValues", samples, now
                )
            return MeterBatch(stored, unknown, latest)

        return self._write(fn, one_statement=True)

    # -- reads ------------------------------------------------------------------------

    async def latest_samples(self, transaction_ids: Sequence[int]) -> list[Row]:
        """The newest whole-connector value of each measurand of each of these transactions."""
        ids = list(transaction_ids)
        return await self._read(lambda conn: _latest_samples(conn, ids))

    async def charger_samples_since(self, charger_id: str, since: str, measurands: Sequence[str]) -> list[Row]:
        """The charger's whole-connector samples of these measurands at or after a time (its clock),
        oldest first."""
        wanted = tuple(measurands)
        return await self._read(lambda conn: _charger_samples_since(conn, charger_id, since, wanted))

    async def power_samples_since(self, since: str) -> list[Row]:
        """Whole-connector power samples (no phase) since a time, oldest first."""
        return await self._query(
            "SELECT charger_id, connector_id, timestamp, power_w AS value_num FROM meter_readings"
            " WHERE power_w IS NOT NULL AND timestamp >= ? ORDER BY timestamp, id",
            (since,),
        )

    async def meter_values_for(self, transaction_id: int) -> list[Row]:
        """Every sample of a transaction, in the order stored."""
        return await self._query(f"{TX_READINGS} SELECT * FROM tx_samples ORDER BY id, position", (transaction_id,))

    async def meter_values_of(self, charger_id: str, limit: int = 1000) -> list[Row]:
        """A charger's newest samples, newest first."""
        return await self._read(lambda conn: newest_first(conn, "meter_readings", _NEWEST_OF_CHARGER, charger_id, limit))


def _latest_samples(conn: sqlite3.Connection, transaction_ids: list[int]) -> list[Row]:
    rows: list[Row] = []
    for transaction_id in transaction_ids:
        # SQLite returns the other columns from the row holding the max() (the newest sample).
        rows += rows_of(conn.execute(
            f"{TX_READINGS} SELECT transaction_id, measurand, value_num, max(id * 65536 + position) AS newest"
            " FROM tx_samples WHERE phase IS NULL AND value_num IS NOT NULL GROUP BY measurand",
            (transaction_id,),
        ))
    return rows


def _charger_samples_since(conn: sqlite3.Connection, charger_id: str, since: str, measurands: tuple[str, ...]) -> list[Row]:
    """Readings are kept in the order received: the stretches from the first one received since
    `since` (less the slack for a clock ahead of ours) to the newest hold the window's."""
    first = first_id_at_or_after(conn, "meter_readings", "received_at", shift_iso(since, -CHART_CLOCK_SLACK_S))
    if first is None:
        return []
    marks = ",".join("?" * len(measurands))
    return rows_of(conn.execute(
        f"{_CHARGER_READINGS} SELECT connector_id, timestamp, measurand, value_num FROM charger_samples"
        f" WHERE timestamp >= ?3 AND measurand IN ({marks}) AND phase IS NULL AND value_num IS NOT NULL"
        " ORDER BY timestamp, id, position",
        (first >> STRETCH_BITS, charger_id, since, *measurands),
    ))
