"""The SQLite store: the only place SQL lives.

One writer connection (group commits, see writer.py) and one reader connection for
queries, both in WAL mode, so the console reading never blocks a charger being answered.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from ocpp_console.store.chargers import ChargersMixin
from ocpp_console.store.command_effects import CommandEffectsMixin
from ocpp_console.store.files import FilesMixin
from ocpp_console.store.message_log import MessageLogMixin
from ocpp_console.store.meter import MeterMixin
from ocpp_console.store.models import Row, StoreError
from ocpp_console.store.provisioning import TARIFF_COLUMNS, ProvisioningMixin
from ocpp_console.store.schema import MIGRATIONS, SCHEMA_VERSION
from ocpp_console.store.transactions import TransactionsMixin
from ocpp_console.store.wallets import WalletMixin
from ocpp_console.store.writer import GroupWriter

log = logging.getLogger(__name__)


def _migrate(conn: sqlite3.Connection) -> int:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the database has schema version {version}, newer than this ocpp-console knows "
            f"({SCHEMA_VERSION}); upgrade ocpp-console"
        )
    for index in range(version, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_sql(MIGRATIONS[index]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {index + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit behind our back)."""
    statements, current = [], []
    for line in script.splitlines():
        current.append(line)
        candidate = "\n".join(current)
        if sqlite3.complete_statement(candidate):
            if candidate.strip():
                statements.append(candidate)
            current = []
    rest = "\n".join(current).strip()
    if rest and not all(part.strip().startswith("--") for part in rest.splitlines() if part.strip()):
        raise StoreError(f"incomplete SQL statement in migration: {rest[:80]}")
    return statements


def _where(*conditions: tuple[str, Any], always: Sequence[str] = ()) -> tuple[str, list[Any]]:
    """A WHERE clause of the conditions whose value is not None ('column = ?', value), and `always`."""
    parts, params = list(always), []
    for sql, value in conditions:
        if value is not None:
            parts.append(sql)
            params.append(value)
    return (f"WHERE {' AND '.join(parts)}" if parts else ""), params


# The WAL is checkpointed this often, beside the writer; the writer does it itself past this size
# (pages of 4 KiB: ~200 MB), which only happens when the checkpoints cannot keep up.
CHECKPOINT_EVERY = 1.0
WAL_SAFETY_PAGES = 50_000
WRITER_CACHE_KIB = 16 * 1024
# Writes in one group (calls, log frames, readings) from which a group is big: about where the
# default 2 MB cache (512 pages) spills dirty pages to the WAL mid-group. A MeterValues is three
# writes (its reading, two log frames), and from different chargers each dirties index pages of
# its own. The cache above is taken after BIG_GROUPS_IN_A_ROW big groups: a site at its limit,
# not a stall (a slow fsync) after which one group carried what had piled up, nor the burst of
# 10,000 chargers booting, after which the 16 MB would be held for nothing.
BIG_GROUP_WRITES = 500
BIG_GROUPS_IN_A_ROW = 20


class Store(ChargersMixin, MeterMixin, MessageLogMixin, TransactionsMixin, WalletMixin, ProvisioningMixin,
            CommandEffectsMixin, FilesMixin):
    def __init__(self, path: Path, synchronous: str = "FULL", message_log_max_rows: int = 200_000,
                 message_log_max_bytes: int = 256 * 1024 * 1024) -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self.message_log_max_rows = message_log_max_rows
        self.message_log_max_bytes = message_log_max_bytes
        # characters of `raw` in the message log; kept on the writer thread only (no lock needed)
        self._log_bytes = 0
        self._log_bytes_since_prune = 0
        self._db: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._checkpoints: aiosqlite.Connection | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self.writer: GroupWriter | None = None
        self._frames_since_prune = 0
        self.migrated_from: int | None = None
        # see MeterMixin: the newest reading per charger (both threads, under the lock), transactions' chargers
        self._newest_sample: dict[str, str] = {}
        self._newest_lock = threading.Lock()
        self._tx_charger: dict[int, str] = {}

    # -- life cycle -------------------------------------------------------------------

    async def open(self) -> Store:
        try:
            await self._open()
        except BaseException:
            await self.close()  # an aiosqlite thread left open would keep the process alive
            raise
        return self

    async def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute(f"PRAGMA synchronous={self.synchronous}")
        await self._db.execute("PRAGMA busy_timeout=5000")
        await self._db.execute("PRAGMA foreign_keys=ON")
        self.migrated_from = await self._db._execute(_migrate, self._db._conn)
        # once per start, so that the size bound holds from the first frame (one scan of the log)
        self._log_bytes = await self._db._execute(
            lambda conn: conn.execute("SELECT coalesce(sum(length(raw)), 0) FROM message_log").fetchone()[0],
            self._db._conn,
        )
        self._reader = await aiosqlite.connect(self.path, isolation_level=None)
        await self._reader.execute("PRAGMA busy_timeout=5000")
        await self._reader.execute("PRAGMA query_only=ON")
        # A group commit at saturation (thousands of calls) dirties thousands of index pages; with
        # SQLite's default 2 MB cache they spill to the WAL and are read back mid-transaction
        # (measured: writer system time 56 -> 36 us per call with 16 MB; 64 MB gains nothing
        # more). Groups that small never spill, and a site that never has a big one keeps the
        # 14 MB (at 10,000 chargers, 1.4 KB of RSS per charger).
        self.writer = GroupWriter(self._db, big_group=BIG_GROUP_WRITES, big_group_cache_kib=WRITER_CACHE_KIB,
                                  big_groups_in_a_row=BIG_GROUPS_IN_A_ROW)
        self.writer.start()
        # WAL checkpoints on a connection (and thread) of their own, so that a group commit never
        # waits for one; the writer checkpoints itself only if this falls far behind.
        await self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_SAFETY_PAGES}")
        self._checkpoints = await aiosqlite.connect(self.path, isolation_level=None)
        await self._checkpoints.execute("PRAGMA busy_timeout=5000")
        self._checkpointer = asyncio.create_task(self._checkpoint_loop(), name="sqlite-checkpoints")

    async def _checkpoint_loop(self) -> None:
        """Copy the WAL into the database every CHECKPOINT_EVERY seconds, beside the writer
        (PASSIVE: it waits for nobody and nobody waits for it)."""
        assert self._checkpoints is not None
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY)
            try:
                await self._checkpoints.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # busy or the like: the next round, or the writer's own, catches up
                log.debug("checkpoint skipped: %s", exc)

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            try:
                await self._checkpointer
            except asyncio.CancelledError:
                pass
            self._checkpointer = None
        if self.writer is not None:
            await self.writer.close()
            self.writer = None
        for conn in (self._checkpoints, self._reader, self._db):
            if conn is not None:
                await conn.close()
        self._db = self._reader = self._checkpoints = None

    async def flush(self) -> None:
        if self.writer is not None:
            await self.writer.flush()

    def _write(self, fn: Any, one_statement: bool = False) -> asyncio.Future[Any]:
        if self.writer is None:
            raise StoreError("the store is not open")
        return self.writer.submit(fn, one_statement)

    async def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        assert self._reader is not None, "the store is not open"
        cursor = await self._reader.execute(sql, params)
        try:
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in await cursor.fetchall()]
        finally:
            await cursor.close()

    async def _read(self, fn: Any) -> Any:
        """Run `fn(conn)` on the reader connection's thread: several queries, one consistent view."""
        assert self._reader is not None, "the store is not open"
        reader = self._reader

        def in_transaction(conn: sqlite3.Connection) -> Any:
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")

        return await reader._execute(in_transaction, reader._conn)

    async def _query_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self._query(sql, params)
        return rows[0] if rows else None

    # -- queries (reader connection) --------------------------------------------------

    async def charger(self, charger_id: str) -> Row | None:
        return await self._query_one("SELECT * FROM chargers WHERE id = ?", (charger_id,))

    async def chargers(self) -> list[Row]:
        return await self._query("SELECT * FROM chargers ORDER BY id")

    async def connectors(self, charger_id: str | None = None) -> list[Row]:
        if charger_id is None:
            return await self._query("SELECT * FROM connectors ORDER BY charger_id, connector_id")
        return await self._query(
            "SELECT * FROM connectors WHERE charger_id = ? ORDER BY connector_id", (charger_id,)
        )

    async def status_history(self, charger_id: str) -> list[Row]:
        return await self._query("SELECT * FROM status_history WHERE charger_id = ? ORDER BY id", (charger_id,))

    async def load_inputs(self) -> list[Row]:
        """What the load manager reads at each decision, in one query: every charger's maximum and
        priority (kind 'charger'), its connectors (kind 'connector', `number`), and the id tags
        that have a priority of their own (kind 'tag': few, whatever the site's size)."""
        return await self._query(
            "SELECT 'charger' AS kind, id AS key, NULL AS number, max_power_w, priority FROM chargers"
            " UNION ALL SELECT 'connector', charger_id, connector_id, NULL, NULL FROM connectors WHERE connector_id > 0"
            " UNION ALL SELECT 'tag', id_tag, NULL, NULL, priority FROM id_tags WHERE priority IS NOT NULL"
        )

    async def id_tag(self, id_tag: str) -> Row | None:
        return await self._query_one("SELECT * FROM id_tags WHERE id_tag = ?", (id_tag,))

    async def id_tags(self) -> list[Row]:
        return await self._query("SELECT * FROM id_tags ORDER BY id_tag")

    async def transaction(self, transaction_id: int) -> Row | None:
        return await self._query_one("SELECT * FROM transactions WHERE id = ?", (transaction_id,))

    async def transactions(self, charger_id: str | None = None, running: bool | None = None, limit: int = 500) -> list[Row]:
        state = [] if running is None else ["stopped_at IS NULL" if running else "stopped_at IS NOT NULL"]
        clause, params = _where(("charger_id = ?", charger_id), always=state)
        return await self._query(f"SELECT * FROM transactions {clause} ORDER BY id DESC LIMIT ?", (*params, limit))

    async def ledger(self, id_tag: str | None = None, since: str | None = None, until: str | None = None) -> list[Row]:
        clause, params = _where(("id_tag = ?", id_tag), ("created_at >= ?", since), ("created_at < ?", until))
        return await self._query(f"SELECT * FROM ledger {clause} ORDER BY id", params)

    async def ledger_for_transaction(self, transaction_id: int) -> list[Row]:
        return await self._query("SELECT * FROM ledger WHERE transaction_id = ? ORDER BY id", (transaction_id,))

    async def orders(self, since: str | None = None, until: str | None = None) -> list[Row]:
        """Finished transactions whose stop (the charger's time) lies in [since, until)."""
        clause, params = _where(
            ("stop_timestamp >= ?", since), ("stop_timestamp < ?", until), always=["stopped_at IS NOT NULL"]
        )
        return await self._query(f"SELECT * FROM transactions {clause} ORDER BY id", params)

    async def revenue_since(self, since: str) -> dict[str, int]:
        """Settled revenue per currency of the transactions stopped since a time (our clock)."""
        rows = await self._query(
            "SELECT currency, coalesce(sum(cost_total), 0) AS total FROM transactions"
            " WHERE stopped_at >= ? AND cost_total IS NOT NULL GROUP BY currency",
            (since,),
        )
        return {r["currency"]: int(r["total"]) for r in rows if r["currency"]}

    async def energy_stopped_since(self, since: str) -> float:
        row = await self._query_one(
            "SELECT coalesce(sum(energy_wh), 0) AS wh FROM transactions WHERE stopped_at >= ? AND energy_wh > 0", (since,)
        )
        return float(row["wh"]) if row else 0.0

    async def unknown_stops(self, charger_id: str | None = None) -> list[Row]:
        if charger_id is None:
            return await self._query("SELECT * FROM unknown_stops ORDER BY id")
        return await self._query("SELECT * FROM unknown_stops WHERE charger_id = ? ORDER BY id", (charger_id,))

    async def data_transfers(self, charger_id: str) -> list[Row]:
        return await self._query("SELECT * FROM data_transfers WHERE charger_id = ? ORDER BY id", (charger_id,))

    async def notifications(self, charger_id: str) -> list[Row]:
        return await self._query("SELECT * FROM notifications WHERE charger_id = ? ORDER BY id", (charger_id,))

    async def configuration(self, charger_id: str) -> list[Row]:
        return await self._query("SELECT * FROM configuration WHERE charger_id = ? ORDER BY key", (charger_id,))

    async def reservations(self, charger_id: str | None = None) -> list[Row]:
        if charger_id is None:
            return await self._query("SELECT * FROM reservations ORDER BY id")
        return await self._query("SELECT * FROM reservations WHERE charger_id = ? ORDER BY id", (charger_id,))

    async def charging_profiles(self, charger_id: str) -> list[Row]:
        return await self._query(
            "SELECT * FROM charging_profiles WHERE charger_id = ? ORDER BY connector_id, stack_level", (charger_id,)
        )

    async def commands(self, charger_id: str) -> list[Row]:
        return await self._query("SELECT * FROM commands WHERE charger_id = ? ORDER BY id", (charger_id,))

    async def tariffs(self) -> dict[str, dict[str, str]]:
        """Stored tariffs by scope ('*' the site, else a charger id), only the keys that are set."""
        rows = await self._query("SELECT * FROM tariffs ORDER BY scope")
        return {r["scope"]: {k: r[k] for k in TARIFF_COLUMNS if r[k] is not None} for r in rows}

    async def data_version(self) -> int:
        """SQLite's PRAGMA data_version on the writer connection: it changes only when another
        connection (another process: the CLI, a script) has committed, never for our own writes."""
        assert self._db is not None, "the store is not open"
        db = self._db
        return int(await db._execute(lambda: db._conn.execute("PRAGMA data_version").fetchone()[0]))

    async def schema_version(self) -> int:
        row = await self._query_one("PRAGMA user_version")
        assert row is not None
        return int(next(iter(row.values())))
