"""The SQL of the wallet guard (stop_on_empty_wallet) and of the running instance's record.

`WalletMixin` is part of `Store`; its methods run on the store's writer and reader.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ocpp_console.store.models import Row, rows_of
from ocpp_console.store.transactions import (
    TransactionsMixin,
    _add_flag,
    settlement_samples,
)
from ocpp_console.timeutil import now_iso

Samples = list[tuple[str, str, float]]


@dataclass(frozen=True, slots=True)
class WalletSessions:
    """A wallet and every open transaction that spends it (the one asked about first), each with
    the samples settlement would price it by."""

    owner: str  # the id tag whose wallet it is (the root of the parent chain)
    balance: int  # minor units
    sessions: list[tuple[Row, Samples]]


class WalletMixin:
    if TYPE_CHECKING:  # provided by Store
        _reader: Any

        def _write(self, fn: Any) -> asyncio.Future[Any]: ...
        async def _query(self, sql: str, params: Any = ()) -> list[Row]: ...
        async def _query_one(self, sql: str, params: Any = ()) -> Row | None: ...
        async def _read(self, fn: Any) -> Any: ...

    async def open_transaction_ids(self) -> list[int]:
        rows = await self._query("SELECT id FROM transactions WHERE stopped_at IS NULL ORDER BY id")
        return [r["id"] for r in rows]

    async def wallet_sessions(self, transaction_id: int) -> WalletSessions | None:
        """The wallet an open transaction spends and all its open transactions; None when the
        transaction is not open or its tag has no wallet (not provisioned)."""

        def fn(conn: sqlite3.Connection) -> WalletSessions | None:
            rows = rows_of(conn.execute("SELECT * FROM transactions WHERE id = ? AND stopped_at IS NULL",
                                       (transaction_id,)))
            if not rows:
                return None
            owner = TransactionsMixin._wallet_owner(conn, rows[0]["id_tag"])
            if owner is None:
                return None
            balance = conn.execute("SELECT balance FROM id_tags WHERE id_tag = ?", (owner,)).fetchone()
            # Every tag that spends this wallet: the owner and its descendants (a fleet's cards).
            spenders, frontier = {owner}, [owner]
            while frontier:
                marks = ",".join("?" * len(frontier))
                children = [r[0] for r in conn.execute(
                    f"SELECT id_tag FROM id_tags WHERE parent_id_tag IN ({marks})", frontier) if r[0] not in spenders]
                spenders.update(children)
                frontier = children
            marks = ",".join("?" * len(spenders))
            others = rows_of(conn.execute(
                f"SELECT * FROM transactions WHERE stopped_at IS NULL AND id != ? AND id_tag IN ({marks}) ORDER BY id",
                (transaction_id, *sorted(spenders)),
            ))
            sessions = [(tx, settlement_samples(conn, tx["id"])) for tx in (rows[0], *others)]
            return WalletSessions(owner, int(balance[0]) if balance else 0, sessions)

        return await self._read(fn)

    def note_stop_request(self, transaction_id: int, note: str, flag: str) -> asyncio.Future[bool]:
        """Say why we asked the charger to stop a transaction (kept with the order whatever reason
        its StopTransaction gives); the first note stands. True if the note was written now."""

        def fn(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT flags, stop_note FROM transactions WHERE id = ?", (transaction_id,)).fetchone()
            if row is None or row[1] is not None:
                return False
            conn.execute("UPDATE transactions SET stop_note = ?, flags = ? WHERE id = ?",
                         (note, _add_flag(row[0], flag), transaction_id))
            return True

        return self._write(fn)

    # -- the running instance ---------------------------------------------------------------

    def record_instance(self, pid: int, host: str, started_at: str, settings_json: str) -> asyncio.Future[None]:
        """This process runs the central system on this database, with these effective settings."""
        now = started_at

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO instance (id, pid, host, started_at, stopped_at, settings) VALUES (1, ?, ?, ?, NULL, ?)"
                " ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, host = excluded.host,"
                " started_at = excluded.started_at, stopped_at = NULL, settings = excluded.settings",
                (pid, host, now, settings_json),
            )

        return self._write(fn)

    def end_instance(self, pid: int, host: str) -> asyncio.Future[None]:
        """This process stops; a later instance's record (another process started since) stays."""
        now = now_iso()

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE instance SET stopped_at = ? WHERE pid = ? AND host = ? AND stopped_at IS NULL",
                         (now, pid, host))

        return self._write(fn)

    async def instance(self) -> Row | None:
        return await self._query_one("SELECT * FROM instance WHERE id = 1")
