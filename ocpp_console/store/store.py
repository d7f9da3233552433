"""The SQLite store: the only place SQL lives.

One writer connection (group commits, see writer.py) and one reader connection for
queries, both in WAL mode, so the console reading never blocks a charger being answered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiosqlite

from ocpp_console.secret_keys import mask_value
from ocpp_console.store.files import FilesMixin
from ocpp_console.store.message_log import MessageLogMixin
from ocpp_console.store.meter import MeterMixin
from ocpp_console.store.models import (
    BootResult,
    Row,
    StoreError,
)
from ocpp_console.store.schema import MIGRATIONS, SCHEMA_VERSION
from ocpp_console.store.transactions import TransactionsMixin
from ocpp_console.store.wallets import WalletMixin
from ocpp_console.store.writer import GroupWriter
from ocpp_console.timeutil import now_iso

log = logging.getLogger(__name__)

BOOT_FIELDS = (
    "vendor",
    "model",
    "charge_point_serial",
    "charge_box_serial",
    "firmware_version",
    "iccid",
    "imsi",
    "meter_type",
    "meter_serial",
)


# A number the operator may also clear: None leaves the stored value, "" clears it (NULL).
Clearable = int | Literal[""] | None

TARIFF_COLUMNS = ("currency", "price_per_kwh", "price_per_minute", "idle_price_per_minute", "idle_grace_minutes",
                  "session_fee", "tou_windows", "timezone")


@dataclass(frozen=True, slots=True)
class ChargerSpec:
    """A charger to provision: registration Accepted. None leaves a value as it is; "" clears the note."""

    id: str
    password_hash: str | None = None
    note: str | None = None
    security_profile: int | None = None  # set as given, lower too: the operator's way back from a lock-out
    max_power_w: Clearable = None  # what it (or its cable) can give; NULL: the setting charger_max_kw
    priority: Clearable = None  # its sessions' priority under load_policy "priority"; NULL: 0


@dataclass(frozen=True, slots=True)
class TagSpec:
    """An id tag to add or update. None leaves a value as it is (a new tag: Accepted); "" clears it."""

    id_tag: str
    status: str | None = None
    expiry_date: str | None = None
    parent_id_tag: str | None = None
    balance: int | None = None  # minor units: the wallet is moved to this amount by a ledger row
    note: str | None = None
    priority: Clearable = None  # its sessions' priority under load_policy "priority"; NULL: the charger's


@dataclass(frozen=True, slots=True)
class TariffSpec:
    """A stored tariff replaces the one of its scope ('*' the site, or a charger id); keys left out
    fall through to the settings. No keys at all: the scope's stored tariff is removed."""

    scope: str
    values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProvisionCounts:
    chargers_added: int = 0
    chargers_updated: int = 0
    tags_added: int = 0
    tags_updated: int = 0
    tariffs: int = 0
    wallet_movements: int = 0


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


def _touch_chargers(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    conn.executemany("UPDATE chargers SET last_seen = ? WHERE id = ?", rows)


class Store(MeterMixin, MessageLogMixin, TransactionsMixin, WalletMixin, FilesMixin):
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

    # -- chargers ---------------------------------------------------------------------

    def boot(self, charger_id: str, info: dict[str, str | None], unknown_policy: str) -> asyncio.Future[BootResult]:
        """Register a BootNotification; the answer follows the charger's stored registration."""
        now = now_iso()

        def fn(conn: sqlite3.Connection) -> BootResult:
            row = conn.execute("SELECT registration FROM chargers WHERE id = ?", (charger_id,)).fetchone()
            new = row is None
            if new:
                registration = {"accept": "Accepted", "pending": "Pending", "reject": "Rejected"}[unknown_policy]
                # A boot arrives over a live connection, which could not be marked before the row existed.
                conn.execute(
                    "INSERT INTO chargers (id, registration, first_seen, connected) VALUES (?, ?, ?, 1)",
                    (charger_id, registration, now),
                )
            else:
                registration = row[0]
            assignments = ", ".join(f"{name} = ?" for name in BOOT_FIELDS)
            conn.execute(
                f"UPDATE chargers SET {assignments}, last_seen = ?, last_boot = ? WHERE id = ?",
                (*(info.get(name) for name in BOOT_FIELDS), now, now, charger_id),
            )
            return BootResult(registration, new)

        return self._write(fn)

    def set_connected(self, charger_id: str, connected: bool, address: str | None) -> asyncio.Future[str | None]:
        """Mark a charger (dis)connected; returns its registration, None when it was never seen."""
        now = now_iso()

        def fn(conn: sqlite3.Connection) -> str | None:
            if connected:
                conn.execute(
                    "UPDATE chargers SET connected = 1, remote_address = ?, last_seen = ? WHERE id = ?",
                    (address, now, charger_id),
                )
            else:
                conn.execute("UPDATE chargers SET connected = 0 WHERE id = ?", (charger_id,))
            row = conn.execute("SELECT registration FROM chargers WHERE id = ?", (charger_id,)).fetchone()
            return row[0] if row else None

        return self._write(fn)

    def mark_all_disconnected(self) -> asyncio.Future[None]:
        return self._write(lambda conn: conn.execute("UPDATE chargers SET connected = 0 WHERE connected = 1") and None)

    def touch(self, charger_id: str, at: str | None = None) -> None:
        """Last seen (Heartbeat, any message): not worth waiting for."""
        if self.writer is not None:
            self.writer.submit_row(_touch_chargers, (at or now_iso(), charger_id))

    def set_registration(self, charger_id: str, registration: str) -> asyncio.Future[bool]:
        def fn(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("UPDATE chargers SET registration = ? WHERE id = ?", (registration, charger_id))
            return cur.rowcount == 1

        return self._write(fn)

    def add_charger(self, charger_id: str, registration: str = "Accepted", note: str | None = None) -> asyncio.Future[None]:
        now = now_iso()

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO chargers (id, registration, note, first_seen) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET registration = excluded.registration, "
                "note = coalesce(excluded.note, chargers.note)",
                (charger_id, registration, note, now),
            )

        return self._write(fn)

    def set_password(self, charger_id: str, password_hash: str | None) -> asyncio.Future[None]:
        """Store a charger's password hash (None: no password); a charger so provisioned is accepted."""
        now = now_iso()

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO chargers (id, registration, password_hash, first_seen) VALUES (?, 'Accepted', ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET password_hash = excluded.password_hash, pending_password_hash = NULL",
                (charger_id, password_hash, now),
            )

        return self._write(fn)

    async def password_hashes(self, charger_id: str) -> tuple[str | None, str | None]:
        """(current, pending) password hashes of a charger."""
        row = await self._query_one(
            "SELECT password_hash, pending_password_hash FROM chargers WHERE id = ?", (charger_id,)
        )
        return (row["password_hash"], row["pending_password_hash"]) if row else (None, None)

    async def login_record(self, charger_id: str) -> tuple[str | None, str | None, int]:
        """(current password hash, pending password hash, stored security profile) of a charger;
        an unknown one has no password and profile 0."""
        row = await self._query_one(
            "SELECT password_hash, pending_password_hash, security_profile FROM chargers WHERE id = ?", (charger_id,)
        )
        return (row["password_hash"], row["pending_password_hash"], row["security_profile"]) if row else (None, None, 0)

    def raise_security_profile(self, charger_id: str, profile: int) -> asyncio.Future[int | None]:
        """The charger accepted SecurityProfile = `profile`: from now on it is refused below it. Only
        raised, never lowered by this (provisioning lowers it). The stored profile after, None if the
        charger is unknown."""

        def fn(conn: sqlite3.Connection) -> int | None:
            conn.execute(
                "UPDATE chargers SET security_profile = max(security_profile, ?) WHERE id = ?", (profile, charger_id)
            )
            row = conn.execute("SELECT security_profile FROM chargers WHERE id = ?", (charger_id,)).fetchone()
            return None if row is None else row[0]

        return self._write(fn)

    def set_pending_password(self, charger_id: str, password_hash: str) -> asyncio.Future[None]:
        return self._write(
            lambda conn: conn.execute(
                "UPDATE chargers SET pending_password_hash = ? WHERE id = ?", (password_hash, charger_id)
            )
            and None
        )

    def promote_pending_password(self, charger_id: str) -> asyncio.Future[None]:
        """The charger logged in with its new key: from now on only that one is valid."""
        return self._write(
            lambda conn: conn.execute(
                "UPDATE chargers SET password_hash = pending_password_hash, pending_password_hash = NULL"
                " WHERE id = ? AND pending_password_hash IS NOT NULL",
                (charger_id,),
            )
            and None
        )

    def set_certificate(self, charger_id: str, serial: str | None, expiry: str | None, pem: str) -> asyncio.Future[None]:
        """The client certificate (chain) a charger accepted with CertificateSigned."""
        return self._write(
            lambda conn: conn.execute(
                "UPDATE chargers SET certificate_serial = ?, certificate_expiry = ?, certificate_pem = ? WHERE id = ?",
                (serial, expiry, pem, charger_id),
            )
            and None
        )

    def status(
        self,
        charger_id: str,
        connector_id: int,
        status: str,
        error_code: str,
        info: str | None,
        vendor_id: str | None,
        vendor_error_code: str | None,
        timestamp: str | None,
    ) -> asyncio.Future[list[int]]:
        """Store a StatusNotification; returns reservations cancelled by it (Faulted/Unavailable)."""
        now = now_iso()

        def fn(conn: sqlite3.Connection) -> list[int]:
            conn.execute(
                "INSERT INTO connectors (charger_id, connector_id, status, error_code, info, vendor_id,"
                " vendor_error_code, status_timestamp, updated_at) VALUES (?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(charger_id, connector_id) DO UPDATE SET status = excluded.status,"
                " error_code = excluded.error_code, info = excluded.info, vendor_id = excluded.vendor_id,"
                " vendor_error_code = excluded.vendor_error_code, status_timestamp = excluded.status_timestamp,"
                " updated_at = excluded.updated_at",
                (charger_id, connector_id, status, error_code, info, vendor_id, vendor_error_code, timestamp, now),
            )
            conn.execute(
                "INSERT INTO status_history (charger_id, connector_id, status, error_code, info, vendor_id,"
                " vendor_error_code, status_timestamp, received_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (charger_id, connector_id, status, error_code, info, vendor_id, vendor_error_code, timestamp, now),
            )
            conn.execute("UPDATE chargers SET last_seen = ? WHERE id = ?", (now, charger_id))
            cancelled: list[int] = []
            if status in ("Faulted", "Unavailable"):
                # A reservation cannot be honoured on a connector that is out of service.
                scope = "" if connector_id == 0 else " AND connector_id = ?"
                params: tuple[Any, ...] = (charger_id,) if connector_id == 0 else (charger_id, connector_id)
                rows = conn.execute(
                    f"SELECT id FROM reservations WHERE charger_id = ? AND status = 'Accepted'{scope}", params
                ).fetchall()
                cancelled = [r[0] for r in rows]
                conn.executemany(
                    "UPDATE reservations SET status = 'Cancelled', updated_at = ? WHERE id = ?",
                    [(now, r) for r in cancelled],
                )
            return cancelled

        return self._write(fn)

    # -- id tags ----------------------------------------------------------------------

    def upsert_id_tag(
        self,
        id_tag: str,
        status: str = "Accepted",
        expiry_date: str | None = None,
        parent_id_tag: str | None = None,
        note: str | None = None,
    ) -> asyncio.Future[None]:
        now = now_iso()

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO id_tags (id_tag, status, expiry_date, parent_id_tag, note, created_at)"
                " VALUES (?,?,?,?,?,?) ON CONFLICT(id_tag) DO UPDATE SET status = excluded.status,"
                " expiry_date = excluded.expiry_date, parent_id_tag = excluded.parent_id_tag,"
                " note = coalesce(excluded.note, id_tags.note)",
                (id_tag, status, expiry_date, parent_id_tag, note, now),
            )

        return self._write(fn)

    # -- provisioning (the shell, an import file) ---------------------------------------

    def provision(
        self,
        chargers: Sequence[ChargerSpec] = (),
        tags: Sequence[TagSpec] = (),
        tariffs: Sequence[TariffSpec] = (),
        *,
        currency: str | None = None,
        reason: str = "provisioning",
    ) -> asyncio.Future[ProvisionCounts]:
        """Chargers, id tags and tariffs in one database transaction: all of them or, on any error
        (StoreError), none. Balances become ledger movements in `currency`, never a bare overwrite."""
        now = now_iso()
        if currency is None and any(spec.balance is not None for spec in tags):
            raise StoreError("a balance needs the currency of the site")

        def fn(conn: sqlite3.Connection) -> ProvisionCounts:
            added, updated = self._provision_chargers(conn, chargers, now)
            tags_added, tags_updated = self._provision_tags(conn, tags, now)
            self._check_parents(conn, tags)
            moves = sum(self._set_balance(conn, spec, currency, reason, now) for spec in tags if spec.balance is not None)
            for spec in tariffs:
                self._provision_tariff(conn, spec, now)
            return ProvisionCounts(added, updated, tags_added, tags_updated, len(tariffs), moves)

        return self._write(fn)

    @staticmethod
    def _provision_chargers(conn: sqlite3.Connection, specs: Sequence[ChargerSpec], now: str) -> tuple[int, int]:
        added = updated = 0
        for spec in specs:
            exists = conn.execute("SELECT 1 FROM chargers WHERE id = ?", (spec.id,)).fetchone() is not None
            note = None if spec.note == "" else spec.note
            conn.execute(
                "INSERT INTO chargers (id, registration, password_hash, note, first_seen) VALUES (?, 'Accepted', ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET registration = 'Accepted',"
                " note = CASE WHEN ? THEN excluded.note ELSE chargers.note END",
                (spec.id, spec.password_hash, note, now, spec.note is not None),
            )
            if exists and spec.password_hash is not None:
                # A new password replaces any key a ChangeConfiguration left pending.
                conn.execute(
                    "UPDATE chargers SET password_hash = ?, pending_password_hash = NULL WHERE id = ?",
                    (spec.password_hash, spec.id),
                )
            if spec.security_profile is not None:
                conn.execute(
                    "UPDATE chargers SET security_profile = ? WHERE id = ?", (spec.security_profile, spec.id)
                )
            for column, value in (("max_power_w", spec.max_power_w), ("priority", spec.priority)):
                if value is not None:  # column names are ours, never the operator's
                    conn.execute(f"UPDATE chargers SET {column} = ? WHERE id = ?", (value if value != "" else None, spec.id))
            added, updated = added + (not exists), updated + exists
        return added, updated

    @staticmethod
    def _provision_tags(conn: sqlite3.Connection, specs: Sequence[TagSpec], now: str) -> tuple[int, int]:
        added = updated = 0
        for spec in specs:
            row = conn.execute(
                "SELECT status, expiry_date, parent_id_tag, note FROM id_tags WHERE id_tag = ?", (spec.id_tag,)
            ).fetchone()
            old = row or ("Accepted", None, None, None)
            given = (spec.status, spec.expiry_date, spec.parent_id_tag, spec.note)
            # None keeps the stored value, "" clears it
            status, expiry, parent, note = (
                (value or None) if value is not None else current for value, current in zip(given, old)
            )
            conn.execute(
                "INSERT INTO id_tags (id_tag, status, expiry_date, parent_id_tag, note, created_at) VALUES (?,?,?,?,?,?)"
                " ON CONFLICT(id_tag) DO UPDATE SET status = excluded.status, expiry_date = excluded.expiry_date,"
                " parent_id_tag = excluded.parent_id_tag, note = excluded.note",
                (spec.id_tag, status or "Accepted", expiry, parent, note, now),
            )
            if spec.priority is not None:
                conn.execute("UPDATE id_tags SET priority = ? WHERE id_tag = ?",
                             (spec.priority if spec.priority != "" else None, spec.id_tag))
            added, updated = added + (row is None), updated + (row is not None)
        return added, updated

    @staticmethod
    def _check_parents(conn: sqlite3.Connection, specs: Sequence[TagSpec]) -> None:
        """After every tag of the batch is in: each parent must exist and no parent chain may loop."""
        for spec in specs:
            seen, current = {spec.id_tag}, spec.id_tag
            while True:
                row = conn.execute("SELECT parent_id_tag FROM id_tags WHERE id_tag = ?", (current,)).fetchone()
                parent = row[0] if row else None
                if not parent:
                    break
                if conn.execute("SELECT 1 FROM id_tags WHERE id_tag = ?", (parent,)).fetchone() is None:
                    raise StoreError(f"id tag {current}: parent tag {parent} does not exist")
                if parent in seen:
                    raise StoreError(f"id tag {spec.id_tag}: its parent chain loops back to {parent}")
                seen.add(parent)
                current = parent

    def _set_balance(self, conn: sqlite3.Connection, spec: TagSpec, currency: str | None, reason: str, now: str) -> int:
        """Move the tag's wallet to the target balance; returns the number of ledger rows written."""
        assert spec.balance is not None
        parent, balance = conn.execute(
            "SELECT parent_id_tag, balance FROM id_tags WHERE id_tag = ?", (spec.id_tag,)
        ).fetchone()
        if parent:
            # Its sessions are paid from the fleet account: money on the tag itself would never be spent.
            raise StoreError(f"id tag {spec.id_tag} spends the wallet of its parent {parent}: give the balance to {parent}")
        difference = spec.balance - balance
        if not difference:
            return 0
        assert currency is not None
        kind = "topup" if difference > 0 else "adjustment"
        self._move(conn, spec.id_tag, difference, currency, kind, f"{reason}: balance set", None, now)
        return 1

    @staticmethod
    def _provision_tariff(conn: sqlite3.Connection, spec: TariffSpec, now: str) -> None:
        unknown = set(spec.values) - set(TARIFF_COLUMNS)
        if unknown:
            raise StoreError(f"tariff {spec.scope}: unknown keys {', '.join(sorted(unknown))}")
        if not spec.values:
            conn.execute("DELETE FROM tariffs WHERE scope = ?", (spec.scope,))
            return
        columns = ", ".join(TARIFF_COLUMNS)
        marks = ", ".join("?" * len(TARIFF_COLUMNS))
        conn.execute(
            f"INSERT OR REPLACE INTO tariffs (scope, {columns}, updated_at) VALUES (?, {marks}, ?)",
            (spec.scope, *(spec.values.get(c) for c in TARIFF_COLUMNS), now),
        )

    def remove_charger(self, charger_id: str) -> asyncio.Future[bool]:
        """Forget a charger (its row, connectors, configuration and charging profiles); its
        transactions, meter values, status history and message log stay for the record."""

        def fn(conn: sqlite3.Connection) -> bool:
            for table in ("connectors", "configuration", "charging_profiles"):
                conn.execute(f"DELETE FROM {table} WHERE charger_id = ?", (charger_id,))
            return conn.execute("DELETE FROM chargers WHERE id = ?", (charger_id,)).rowcount == 1

        return self._write(fn)

    def remove_id_tag(self, id_tag: str) -> asyncio.Future[bool]:
        """Forget an id tag; refused (StoreError) while money, sessions or child tags depend on it.
        Its ledger rows and transactions stay for the record."""

        def fn(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT balance FROM id_tags WHERE id_tag = ?", (id_tag,)).fetchone()
            if row is None:
                return False
            if row[0]:
                raise StoreError(f"id tag {id_tag} still has money in its wallet: set its balance to 0 first")
            children = [r[0] for r in conn.execute(
                "SELECT id_tag FROM id_tags WHERE parent_id_tag = ? ORDER BY id_tag", (id_tag,)
            ).fetchall()]
            if children:
                raise StoreError(f"id tag {id_tag} is the parent of {', '.join(children)}: remove or re-parent them first")
            running = conn.execute(
                "SELECT id FROM transactions WHERE id_tag = ? AND stopped_at IS NULL LIMIT 1", (id_tag,)
            ).fetchone()
            if running:
                raise StoreError(f"id tag {id_tag} has transaction {running[0]} running: block it instead")
            conn.execute("DELETE FROM id_tags WHERE id_tag = ?", (id_tag,))
            return True

        return self._write(fn)

    # -- other charger messages -------------------------------------------------------

    def data_transfer(
        self,
        charger_id: str,
        direction: str,
        vendor_id: str,
        message_id: str | None,
        data: str | None,
        status: str | None,
        response_data: str | None = None,
    ) -> asyncio.Future[None]:
        now = now_iso()
        return self._write(
            lambda conn: conn.execute(
                "INSERT INTO data_transfers (charger_id, direction, vendor_id, message_id, data, status,"
                " response_data, created_at) VALUES (?,?,?,?,?,?,?,?)",
                (charger_id, direction, vendor_id, message_id, data, status, response_data, now),
            )
            and None
        )

    def notification(self, charger_id: str, action: str, status: str | None, payload: dict[str, Any]) -> asyncio.Future[None]:
        """Diagnostics/Firmware/Security/Log notifications; the latest status is kept on the charger."""
        now = now_iso()
        column = {
            "FirmwareStatusNotification": "firmware_status",
            "SignedFirmwareStatusNotification": "firmware_status",
            "DiagnosticsStatusNotification": "diagnostics_status",
        }.get(action)

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO notifications (charger_id, action, status, payload, received_at) VALUES (?,?,?,?,?)",
                (charger_id, action, status, json.dumps(payload), now),
            )
            if column:
                conn.execute(
                    f"UPDATE chargers SET {column} = ?, {column}_at = ?, last_seen = ? WHERE id = ?",
                    (status, now, now, charger_id),
                )

        return self._write(fn)

    # -- operator command effects -----------------------------------------------------

    def record_command(
        self,
        charger_id: str,
        action: str,
        request: dict[str, Any],
        outcome: str,
        response: dict[str, Any] | None,
        error: str | None,
        created_at: str,
    ) -> asyncio.Future[None]:
        now = now_iso()
        return self._write(
            lambda conn: conn.execute(
                "INSERT INTO commands (charger_id, action, request, outcome, response, error, created_at,"
                " finished_at) VALUES (?,?,?,?,?,?,?,?)",
                (
                    charger_id,
                    action,
                    json.dumps(request, default=str),
                    outcome,
                    json.dumps(response, default=str) if response is not None else None,
                    error,
                    created_at,
                    now,
                ),
            )
            and None
        )

    def save_configuration(
        self, charger_id: str, keys: list[dict[str, Any]], unknown: list[str], full: bool
    ) -> asyncio.Future[None]:
        now = now_iso()

        def fn(conn: sqlite3.Connection) -> None:
            if full:
                conn.execute("DELETE FROM configuration WHERE charger_id = ?", (charger_id,))
            conn.executemany(
                "INSERT INTO configuration (charger_id, key, value, readonly, known, updated_at)"
                " VALUES (?,?,?,?,1,?) ON CONFLICT(charger_id, key) DO UPDATE SET value = excluded.value,"
                " readonly = excluded.readonly, known = 1, updated_at = excluded.updated_at",
                [(charger_id, k["key"], mask_value(k["key"], k.get("value")), int(bool(k.get("readonly"))), now)
                 for k in keys],
            )
            conn.executemany(
                "INSERT INTO configuration (charger_id, key, value, readonly, known, updated_at)"
                " VALUES (?,?,NULL,0,0,?) ON CONFLICT(charger_id, key) DO UPDATE SET known = 0,"
                " updated_at = excluded.updated_at",
                [(charger_id, key, now) for key in unknown],
            )
            conn.execute("UPDATE chargers SET config_fetched_at = ? WHERE id = ?", (now, charger_id))

        return self._write(fn)

    def set_configuration_value(self, charger_id: str, key: str, value: str) -> asyncio.Future[None]:
        now = now_iso()
        return self._write(
            lambda conn: conn.execute(
                "INSERT INTO configuration (charger_id, key, value, readonly, known, updated_at) VALUES (?,?,?,0,1,?)"
                " ON CONFLICT(charger_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (charger_id, key, mask_value(key, value), now),
            )
            and None
        )

    def save_reservation(
        self,
        reservation_id: int,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        parent_id_tag: str | None,
        expiry_date: str,
        status: str,
    ) -> asyncio.Future[None]:
        now = now_iso()
        return self._write(
            lambda conn: conn.execute(
                "INSERT INTO reservations (id, charger_id, connector_id, id_tag, parent_id_tag, expiry_date, status,"
                " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET"
                " charger_id = excluded.charger_id, connector_id = excluded.connector_id, id_tag = excluded.id_tag,"
                " parent_id_tag = excluded.parent_id_tag, expiry_date = excluded.expiry_date,"
                " status = excluded.status, updated_at = excluded.updated_at",
                (reservation_id, charger_id, connector_id, id_tag, parent_id_tag, expiry_date, status, now, now),
            )
            and None
        )

    def next_reservation_id(self) -> asyncio.Future[int]:
        return self._write(
            # below the 32-bit ceiling OCPP integers have, whatever number someone gave by hand
            lambda conn: int(conn.execute(
                "SELECT coalesce(max(id), 0) + 1 FROM reservations WHERE id BETWEEN 0 AND 2147483645").fetchone()[0])
        )

    def set_reservation_status(self, reservation_id: int, status: str) -> asyncio.Future[None]:
        now = now_iso()
        return self._write(
            lambda conn: conn.execute(
                "UPDATE reservations SET status = ?, updated_at = ? WHERE id = ?", (status, now, reservation_id)
            )
            and None
        )

    def set_local_list_version(self, charger_id: str, version: int) -> asyncio.Future[None]:
        return self._write(
            lambda conn: conn.execute(
                "UPDATE chargers SET local_list_version = ? WHERE id = ?", (version, charger_id)
            )
            and None
        )

    def save_charging_profile(
        self, charger_id: str, connector_id: int, profile: dict[str, Any], status: str
    ) -> asyncio.Future[None]:
        """Record a profile the charger accepted; it replaces one of the same purpose and stack level."""
        now = now_iso()

        def fn(conn: sqlite3.Connection) -> None:
            if status != "Accepted":
                return
            purpose, stack = str(profile["chargingProfilePurpose"]), int(profile["stackLevel"])
            conn.execute(
                "DELETE FROM charging_profiles WHERE charger_id = ? AND connector_id = ? AND purpose = ?"
                " AND stack_level = ?",
                (charger_id, connector_id, purpose, stack),
            )
            conn.execute(
                "INSERT INTO charging_profiles (charger_id, connector_id, profile_id, stack_level, purpose, profile,"
                " status, set_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(charger_id, connector_id, profile_id)"
                " DO UPDATE SET stack_level = excluded.stack_level, purpose = excluded.purpose,"
                " profile = excluded.profile, status = excluded.status, set_at = excluded.set_at",
                (charger_id, connector_id, int(profile["chargingProfileId"]), stack, purpose,
                 json.dumps(profile, default=str), status, now),
            )

        return self._write(fn)

    def clear_charging_profiles(
        self,
        charger_id: str,
        profile_id: int | None,
        connector_id: int | None,
        purpose: str | None,
        stack_level: int | None,
    ) -> asyncio.Future[int]:
        def fn(conn: sqlite3.Connection) -> int:
            where, params = ["charger_id = ?"], [charger_id]
            if profile_id is not None:
                where.append("profile_id = ?")
                params.append(profile_id)
            else:
                for column, value in (("connector_id", connector_id), ("purpose", purpose), ("stack_level", stack_level)):
                    if value is not None:
                        where.append(f"{column} = ?")
                        params.append(value)
            return conn.execute(f"DELETE FROM charging_profiles WHERE {' AND '.join(where)}", params).rowcount

        return self._write(fn)

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
