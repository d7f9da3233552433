"""Authorization, transactions and wallets: the SQL of a session's life, from Authorize to the
ledger row that pays for it, including the transactions we have to end ourselves.

A charger that loses power, loses its offline queue or is replaced may never send the
StopTransaction of a session. Such a transaction is closed here when the charger has clearly
moved on (a new StartTransaction on its connector, a reboot after which it reports the connector
free, the operator), with the last meter register we know, settled like any other; if the
charger's StopTransaction does come later, its data replaces ours and the wallet is moved by the
difference, once.

`TransactionsMixin` is part of `Store`; its methods run on the store's writer and reader.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ocpp_console.store.meter import TX_READINGS
from ocpp_console.store.models import (
    ClosedTransaction,
    CloseOutcome,
    IdTagInfo,
    Row,
    SampledValue,
    StartResult,
    StopResult,
    StoreError,
    rows_of,
)
from ocpp_console.timeutil import now_iso, utcnow

log = logging.getLogger("ocpp_console.store")

SUPERSEDED = "superseded"
CLOSED_AFTER_REBOOT = "closed-after-reboot"
CLOSED_BY_OPERATOR = "closed-by-operator"
CLOSED_BY = (SUPERSEDED, CLOSED_AFTER_REBOOT, CLOSED_BY_OPERATOR)

ENERGY = "Energy.Active.Import.Register"
# Statuses in which a connector has a session going; Available and Preparing mean it has none.
IN_SESSION = ("Charging", "SuspendedEV", "SuspendedEVSE")
FREE = ("Available", "Preparing")


def _in(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


# An open transaction is stale when nothing says it still runs: its charger is offline, or has
# rebooted since it started and not reported that connector in session since, or the connector
# has reported Available since it started. Both times are our clock (started_at, last_boot and
# updated_at are receive times), never the charger's. Aliases: t transactions, ch chargers,
# k connectors (both LEFT JOINed: a removed charger's transactions are stale too).
STALE_SQL = f"""coalesce((
    coalesce(ch.connected, 0) = 0
    OR (ch.last_boot > t.started_at
        AND NOT coalesce(k.status IN ({_in(IN_SESSION)}) AND k.updated_at >= ch.last_boot, 0))
    OR (k.status = 'Available' AND k.updated_at > t.started_at)
), 0)"""

_JOINS = (
    "LEFT JOIN chargers ch ON ch.id = t.charger_id"
    " LEFT JOIN connectors k ON k.charger_id = t.charger_id AND k.connector_id = t.connector_id"
)

# Open transactions that started before their charger's last boot, on a connector the charger
# has reported free since that boot, and whose StopTransaction has had the grace period (for the
# charger's queued messages) to come since the boot and since that report: both before `cutoff`
# (now minus the grace). Some chargers report the connector free a moment before they send the
# StopTransaction; counting from the report as well leaves them the whole grace.
_AFTER_REBOOT_SQL = (
    "SELECT t.id, t.charger_id, ch.last_boot FROM transactions t"
    " JOIN chargers ch ON ch.id = t.charger_id"
    " JOIN connectors k ON k.charger_id = t.charger_id AND k.connector_id = t.connector_id"
    f" WHERE t.stopped_at IS NULL AND ch.last_boot > t.started_at AND ch.last_boot <= ?1"
    f" AND k.status IN ({_in(FREE)}) AND k.updated_at >= ch.last_boot AND k.updated_at <= ?1"
)

Settle = Callable[[Row, list[tuple[str, str, float | None]]], Any]


def _add_flag(flags: str, flag: str) -> str:
    parts = [f for f in flags.split(",") if f]
    if flag not in parts:
        parts.append(flag)
    return ",".join(parts)


def _end_tx_profiles(conn: sqlite3.Connection, charger_id: str, connector_id: int) -> None:
    """A TxProfile lives only as long as its transaction (OCPP 1.6, 3.13.2)."""
    conn.execute(
        "DELETE FROM charging_profiles WHERE charger_id = ? AND connector_id = ? AND purpose = 'TxProfile'",
        (charger_id, connector_id),
    )


def settlement_samples(conn: sqlite3.Connection, transaction_id: int) -> list[tuple[str, str, float]]:
    """(timestamp, measurand, value) of the samples settlement prices a transaction by: the whole
    connector's energy register and power. The wallet guard reads the same ones for a running one."""
    return conn.execute(
        f"{TX_READINGS} SELECT timestamp, measurand, value_num FROM tx_samples WHERE phase IS NULL"
        f" AND measurand IN ('{ENERGY}', 'Power.Active.Import') AND value_num IS NOT NULL"
        " ORDER BY timestamp, id, position",
        (transaction_id,),
    ).fetchall()


def _flags(flags: str) -> tuple[str, ...]:
    return tuple(f for f in flags.split(",") if f)


class TransactionsMixin:
    """Authorize, StartTransaction, StopTransaction, settlement, wallets, closing stale transactions."""

    if TYPE_CHECKING:  # provided by Store
        def _write(self, fn: Any) -> asyncio.Future[Any]: ...
        async def _query(self, sql: str, params: Any = ()) -> list[Row]: ...
        def _insert_samples(self, conn: sqlite3.Connection, charger_id: str, connector_id: int, transaction_id: int | None,
                            unknown: bool, source: str, samples: list[SampledValue], now: str) -> int: ...
        def forget_transaction(self, conn: sqlite3.Connection, transaction_id: int) -> None: ...

    # -- authorization ----------------------------------------------------------------

    @staticmethod
    def _wallet_owner(conn: sqlite3.Connection, id_tag: str) -> str | None:
        """The tag whose wallet `id_tag` spends: the root of its parent chain (a fleet account)."""
        current, seen = id_tag, set()
        row = conn.execute("SELECT parent_id_tag FROM id_tags WHERE id_tag = ?", (current,)).fetchone()
        if row is None:
            return None
        while row is not None and row[0] and row[0] not in seen:
            seen.add(current)
            parent = conn.execute("SELECT parent_id_tag FROM id_tags WHERE id_tag = ?", (row[0],)).fetchone()
            if parent is None:
                break  # a parent that is not provisioned: the tag pays for itself
            current, row = row[0], parent
        return current

    @classmethod
    def _id_tag_info(
        cls, conn: sqlite3.Connection, id_tag: str, unknown_policy: str, *, min_balance: int | None = None
    ) -> IdTagInfo:
        """The tag's own status (Accepted, Blocked, Expired, Invalid) with its expiry and parent.
        Never ConcurrentTx: that is "only relevant for a StartTransaction.req" (OCPP 1.6, 7.2)."""
        row = conn.execute(
            "SELECT status, expiry_date, parent_id_tag FROM id_tags WHERE id_tag = ?", (id_tag,)
        ).fetchone()
        if row is None:
            if unknown_policy == "accept":
                return IdTagInfo("Accepted")
            return IdTagInfo("Invalid", reason="unknown id tag")
        status, expiry, parent = row
        reason = None
        if status == "Accepted" and expiry:
            try:
                expired = datetime.fromisoformat(expiry) <= utcnow()
            except (ValueError, TypeError):
                expired = False
            if expired:
                status, reason = "Expired", "its expiry date has passed"
        if status == "Accepted" and min_balance is not None:
            owner = cls._wallet_owner(conn, id_tag)
            balance = conn.execute("SELECT balance FROM id_tags WHERE id_tag = ?", (owner,)).fetchone()
            if balance is not None and balance[0] < min_balance:
                status = "Blocked"  # the wallet is below the site's minimum
                reason = "wallet below minimum" if owner == id_tag else f"wallet of {owner} below minimum"
        return IdTagInfo(status, expiry, parent, reason)

    @staticmethod
    def _record_refusal(conn: sqlite3.Connection, id_tag: str, info: IdTagInfo, action: str, charger_id: str | None) -> None:
        """Keep the tag's latest refusal on its row (a tag not provisioned has none to keep it on)."""
        if info.status == "Accepted":
            return
        conn.execute(
            "UPDATE id_tags SET refused_status = ?, refused_reason = ?, refused_action = ?, refused_charger = ?,"
            " refused_at = ? WHERE id_tag = ?",
            (info.status, info.reason, action, charger_id, now_iso(), id_tag),
        )

    @staticmethod
    def _running_elsewhere(conn: sqlite3.Connection, id_tag: str, charger_id: str, connector_id: int) -> str | None:
        """A transaction of this tag really running on another connector (open and not stale), said
        as the reason of a ConcurrentTx."""
        row = conn.execute(
            f"SELECT t.id, t.charger_id, t.connector_id FROM transactions t {_JOINS} WHERE t.id_tag = ?"
            f" AND t.stopped_at IS NULL AND NOT (t.charger_id = ? AND t.connector_id = ?) AND NOT {STALE_SQL} LIMIT 1",
            (id_tag, charger_id, connector_id),
        ).fetchone()
        return f"transaction {row[0]} running on {row[1]} connector {row[2]}" if row else None

    def authorize(
        self, id_tag: str, unknown_policy: str, min_balance: int | None = None, charger_id: str | None = None
    ) -> asyncio.Future[IdTagInfo]:
        def fn(conn: sqlite3.Connection) -> IdTagInfo:
            info = self._id_tag_info(conn, id_tag, unknown_policy, min_balance=min_balance)
            self._record_refusal(conn, id_tag, info, "Authorize", charger_id)
            return info

        return self._write(fn)

    # -- transactions -----------------------------------------------------------------

    def start_transaction(
        self,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        timestamp: str,
        timestamp_raw: str,
        reservation_id: int | None,
        unknown_policy: str,
        flags: Iterable[str] = (),
        *,
        tariff: str | None = None,
        currency: str | None = None,
        min_balance: int | None = None,
        settle: Settle | None = None,
    ) -> asyncio.Future[StartResult]:
        """Store a StartTransaction. A transaction still open on the same connector is over (the
        charger delivers transaction messages in order): it is closed first, in the same database
        transaction, so that it is settled before the new one's wallet check and never counts as
        concurrent."""
        now = now_iso()

        def fn(conn: sqlite3.Connection) -> StartResult:
            existing = conn.execute(
                "SELECT id, auth_status FROM transactions WHERE charger_id = ? AND connector_id = ? AND id_tag = ?"
                " AND start_timestamp_raw = ? AND meter_start = ?",
                (charger_id, connector_id, id_tag, timestamp_raw, meter_start),
            ).fetchone()
            if existing:
                tag = conn.execute(
                    "SELECT expiry_date, parent_id_tag FROM id_tags WHERE id_tag = ?", (id_tag,)
                ).fetchone()
                info = IdTagInfo(existing[1], *(tag or (None, None)))
                return StartResult(existing[0], info, duplicate=True)
            closed: list[ClosedTransaction] = []
            for (old,) in conn.execute(
                "SELECT id FROM transactions WHERE charger_id = ? AND connector_id = ? AND stopped_at IS NULL"
                " ORDER BY id", (charger_id, connector_id),
            ).fetchall():
                if (done := self._close(conn, old, SUPERSEDED, timestamp, now, settle)) is not None:
                    closed.append(done)
            info = self._id_tag_info(conn, id_tag, unknown_policy, min_balance=min_balance)
            if info.status == "Accepted" and (running := self._running_elsewhere(conn, id_tag, charger_id, connector_id)):
                info = IdTagInfo("ConcurrentTx", info.expiry_date, info.parent_id_tag, running)
            all_flags = list(flags)
            known = conn.execute("SELECT 1 FROM id_tags WHERE id_tag = ?", (id_tag,)).fetchone()
            if not known:
                all_flags.append("unknown_id_tag")
                if unknown_policy != "accept":
                    # Seen first in a session (perhaps started offline): keep it on record, blocked
                    # for new sessions until the operator decides.
                    conn.execute(
                        "INSERT INTO id_tags (id_tag, status, note, created_at) VALUES (?, 'Invalid', ?, ?)",
                        (id_tag, f"first seen in a StartTransaction from {charger_id}; not provisioned", now),
                    )
            if info.status != "Accepted":
                all_flags.append(f"auth_{info.status.lower()}")
            self._record_refusal(conn, id_tag, info, "StartTransaction", charger_id)
            cur = conn.execute(
                "INSERT INTO transactions (charger_id, connector_id, id_tag, auth_status, meter_start,"
                " start_timestamp, start_timestamp_raw, reservation_id, started_at, flags, tariff, currency,"
                " readings_from) VALUES (?,?,?,?,?,?,?,?,?,?,?,?, (SELECT coalesce(max(id), 0) + 1 FROM meter_readings))",
                (charger_id, connector_id, id_tag, info.status, meter_start, timestamp, timestamp_raw,
                 reservation_id, now, ",".join(all_flags), tariff, currency),
            )
            tx_id = cur.lastrowid
            if reservation_id is not None:
                conn.execute(
                    "UPDATE reservations SET status = 'Used', transaction_id = ?, updated_at = ?"
                    " WHERE id = ? AND charger_id = ?",
                    (tx_id, now, reservation_id, charger_id),
                )
            return StartResult(int(tx_id), info, duplicate=False, closed=tuple(closed))

        return self._write(fn)

    def stop_transaction(
        self,
        charger_id: str,
        transaction_id: int,
        meter_stop: int,
        timestamp: str,
        reason: str,
        id_tag: str | None,
        unknown_policy: str,
        samples: list[SampledValue],
        payload_json: str,
        flags: Iterable[str] = (),
        *,
        settle: Settle | None = None,
    ) -> asyncio.Future[StopResult]:
        """Stop a transaction, idempotently; transactionData samples are stored once, with it. The
        stop of a transaction we closed ourselves replaces our stop and settles the difference."""
        now = now_iso()

        def fn(conn: sqlite3.Connection) -> StopResult:
            info = self._id_tag_info(conn, id_tag, unknown_policy) if id_tag else None
            row = conn.execute(
                "SELECT charger_id, connector_id, id_tag, meter_start, stopped_at, flags, energy_wh, start_timestamp,"
                " closed_by, late_stop_at FROM transactions WHERE id = ?",
                (transaction_id,),
            ).fetchone()
            if row is None or row[0] != charger_id:
                dup = conn.execute(
                    "SELECT 1 FROM unknown_stops WHERE charger_id = ? AND transaction_id = ? AND meter_stop = ?"
                    " AND stop_timestamp = ?",
                    (charger_id, transaction_id, meter_stop, timestamp),
                ).fetchone()
                if not dup:
                    conn.execute(
                        "INSERT INTO unknown_stops (charger_id, transaction_id, meter_stop, stop_timestamp,"
                        " stop_reason, id_tag, received_at, payload, flags) VALUES (?,?,?,?,?,?,?,?,?)",
                        (charger_id, transaction_id, meter_stop, timestamp, reason, id_tag, now, payload_json,
                         ",".join(sorted(flags))),
                    )
                    self._insert_samples(conn, charger_id, 0, transaction_id, True, "StopTransaction", samples, now)
                return StopResult("unknown", transaction_id, info, None, None, None, ("unknown_transaction",))
            _, connector_id, tx_tag, meter_start, stopped_at, tx_flags, energy, start_ts, closed_by, late_at = row
            late = stopped_at is not None and closed_by is not None and late_at is None
            if stopped_at is not None and not late:
                return StopResult("repeated", transaction_id, info, energy, connector_id, tx_tag)
            before = self._stop_snapshot(conn, transaction_id) if late else None
            energy_wh = meter_stop - meter_start
            new_flags = tx_flags
            for flag in (*flags, *(["late_stop"] if late else [])):
                new_flags = _add_flag(new_flags, flag)
            if energy_wh < 0:
                new_flags = _add_flag(new_flags, "meter_decreased")
            if timestamp < start_ts:
                new_flags = _add_flag(new_flags, "stop_before_start")
            conn.execute(
                "UPDATE transactions SET meter_stop = ?, stop_timestamp = ?, stop_reason = ?, stop_id_tag = ?,"
                " stopped_at = coalesce(stopped_at, ?), energy_wh = ?, flags = ?,"
                " late_stop_at = CASE WHEN ? THEN ? END, closed_stop = CASE WHEN ? THEN ? END WHERE id = ?",
                (meter_stop, timestamp, reason, id_tag, now, energy_wh, new_flags,
                 late, now, late, json.dumps(before) if before else None, transaction_id),
            )
            self._insert_samples(conn, charger_id, connector_id, transaction_id, False, "StopTransaction", samples, now)
            self.forget_transaction(conn, transaction_id)
            cost: tuple[int | None, str | None] = (None, None)
            if settle is not None:
                why = f"late StopTransaction of a transaction {closed_by}" if late else None
                new_flags, cost = self._settle(conn, transaction_id, settle, new_flags, now, why)
            if late:
                assert before is not None
                delta = None if cost[0] is None else cost[0] - (before["cost_total"] or 0)
                return StopResult(
                    "late", transaction_id, info, energy_wh, connector_id, tx_tag, _flags(new_flags), *cost,
                    cost_delta=delta, energy_delta_wh=energy_wh - (before["energy_wh"] or 0),
                )
            _end_tx_profiles(conn, charger_id, connector_id)
            return StopResult("stopped", transaction_id, info, energy_wh, connector_id, tx_tag, _flags(new_flags), *cost)

        return self._write(fn)

    @staticmethod
    def _stop_snapshot(conn: sqlite3.Connection, transaction_id: int) -> dict[str, Any]:
        """Our own stop of a transaction, kept when the charger's replaces it."""
        cursor = conn.execute(
            "SELECT meter_stop, stop_timestamp, stop_reason, energy_wh, cost_total, currency, closed_by, closed_at"
            " FROM transactions WHERE id = ?",
            (transaction_id,),
        )
        return rows_of(cursor)[0]

    # -- closing what the charger never stopped ---------------------------------------------

    def _close(
        self,
        conn: sqlite3.Connection,
        transaction_id: int,
        closed_by: str,
        at_most: str,
        now: str,
        settle: Settle | None,
    ) -> ClosedTransaction | None:
        """Close an open transaction with the last register its meter values hold (meterStart
        without any), at its last meter value or `at_most`, whichever is earlier, and settle it."""
        cursor = conn.execute("SELECT * FROM transactions WHERE id = ? AND stopped_at IS NULL", (transaction_id,))
        rows = rows_of(cursor)
        if not rows:
            return None
        tx = rows[0]
        last = conn.execute(
            f"{TX_READINGS} SELECT value_num FROM tx_samples WHERE measurand = ? AND phase IS NULL"
            " AND value_num IS NOT NULL ORDER BY timestamp DESC, id DESC, position DESC LIMIT 1",
            (transaction_id, ENERGY),
        ).fetchone()
        last_seen = conn.execute(f"{TX_READINGS} SELECT max(timestamp) FROM tx_readings", (transaction_id,)).fetchone()[0]
        meter_stop = max(tx["meter_start"], round(last[0])) if last else tx["meter_start"]
        # A charger clock reset by the power loss can put `at_most` before the start: ignore such times.
        moments = [m for m in (at_most, last_seen) if m and m >= tx["start_timestamp"]]
        stop_ts = min(moments) if moments else tx["start_timestamp"]
        energy_wh = meter_stop - tx["meter_start"]
        flags = _add_flag(tx["flags"], closed_by)
        conn.execute(
            "UPDATE transactions SET meter_stop = ?, stop_timestamp = ?, stop_reason = ?, stopped_at = ?,"
            " energy_wh = ?, flags = ?, closed_by = ?, closed_at = ? WHERE id = ?",
            (meter_stop, stop_ts, closed_by, now, energy_wh, flags, closed_by, now, transaction_id),
        )
        self.forget_transaction(conn, transaction_id)
        cost: tuple[int | None, str | None] = (None, None)
        if settle is not None:
            flags, cost = self._settle(conn, transaction_id, settle, flags, now)
        if closed_by == CLOSED_AFTER_REBOOT:  # the charger rebooted: the transaction is over on it too
            _end_tx_profiles(conn, tx["charger_id"], tx["connector_id"])
        log.warning("transaction %d (%s connector %d) closed: %s, meterStop %d Wh at %s",
                    transaction_id, tx["charger_id"], tx["connector_id"], closed_by, meter_stop, stop_ts)
        return ClosedTransaction(transaction_id, tx["charger_id"], tx["connector_id"], tx["id_tag"], closed_by,
                                 meter_stop, stop_ts, energy_wh, *cost)

    def close_transaction(
        self, transaction_id: int, closed_by: str, settle: Settle | None, *, reboot_cutoff: str | None = None
    ) -> asyncio.Future[CloseOutcome]:
        """Close an open transaction by hand (closed_by = closed-by-operator: stopped now at the
        latest), or, with `reboot_cutoff`, only if it is still one the reboot rule closes (a
        StopTransaction or a new status may have come since it was found)."""
        now = now_iso()

        def fn(conn: sqlite3.Connection) -> CloseOutcome:
            row = conn.execute("SELECT stopped_at FROM transactions WHERE id = ?", (transaction_id,)).fetchone()
            if row is None:
                return CloseOutcome("unknown")
            if row[0] is not None:
                return CloseOutcome("stopped")
            at_most = now
            if reboot_cutoff is not None:
                found = conn.execute(f"{_AFTER_REBOOT_SQL} AND t.id = ?2", (reboot_cutoff, transaction_id)).fetchone()
                if found is None:
                    return CloseOutcome("running")
                at_most = found[2]  # the boot: the session cannot have lasted longer
            return CloseOutcome("closed", self._close(conn, transaction_id, closed_by, at_most, now, settle))

        return self._write(fn)

    async def transactions_closable_after_reboot(self, cutoff: str) -> list[Row]:
        """Open transactions the reboot rule closes now (`cutoff` = now minus the grace period):
        a scan of the open transactions only (partial index transactions_open)."""
        return await self._query(f"{_AFTER_REBOOT_SQL} ORDER BY t.id", (cutoff,))

    async def stale_transactions(self) -> list[Row]:
        """Open transactions nothing says are still running (see STALE_SQL)."""
        return await self._query(
            f"SELECT t.* FROM transactions t {_JOINS} WHERE t.stopped_at IS NULL AND {STALE_SQL} ORDER BY t.id"
        )

    # -- settlement and wallets ---------------------------------------------------------

    def _settle(
        self,
        conn: sqlite3.Connection,
        transaction_id: int,
        settle: Settle,
        flags: str,
        now: str,
        why_again: str | None = None,
    ) -> tuple[str, tuple[int | None, str | None]]:
        """Price the stopped transaction and move its wallet, in the stop's own database transaction.
        Settled again (`why_again`: a late StopTransaction replaced our stop), the wallet moves by
        the difference from what was charged: one adjustment row, never a second charge."""
        cursor = conn.execute("SELECT * FROM transactions WHERE id = ?", (transaction_id,))
        tx = rows_of(cursor)[0]
        samples = settlement_samples(conn, transaction_id)
        try:
            result = settle(tx, samples)
        except Exception:
            # A stop is always answered normally; a session that cannot be priced is kept for the operator.
            log.exception("transaction %d could not be settled", transaction_id)
            return _add_flag(flags, "settlement_failed"), (None, None)
        if result.discrepancy_wh:
            flags = _add_flag(flags, "meter_discrepancy")
        charged, charge_rows = conn.execute(
            "SELECT coalesce(-sum(amount), 0), coalesce(sum(kind = 'charge'), 0) FROM ledger"
            " WHERE transaction_id = ? AND kind IN ('charge', 'adjustment')",
            (transaction_id,),
        ).fetchone()
        # Money already taken stays with the wallet that paid it.
        owner = (tx["wallet_id_tag"] if charge_rows else None) or self._wallet_owner(conn, tx["id_tag"])
        conn.execute(
            "UPDATE transactions SET currency = ?, cost_items = ?, cost_total = ?, charging_seconds = ?,"
            " idle_seconds = ?, meter_register_wh = ?, energy_discrepancy_wh = ?, wallet_id_tag = ?, flags = ?"
            " WHERE id = ?",
            (result.currency, result.items_json(), result.total, result.charging_seconds, result.idle_seconds,
             result.register_wh, result.discrepancy_wh, owner, flags, transaction_id),
        )
        difference = result.total - charged
        if owner is not None and difference:
            if charge_rows:
                reason = f"transaction {transaction_id} settled again: {why_again or 'new stop data'}"
                self._move(conn, owner, -difference, result.currency, "adjustment", reason, transaction_id, now)
            else:
                self._move(conn, owner, -difference, result.currency, "charge", f"transaction {transaction_id}",
                           transaction_id, now)
        return flags, (result.total, result.currency)

    @staticmethod
    def _move(
        conn: sqlite3.Connection,
        id_tag: str,
        amount: int,
        currency: str,
        kind: str,
        reason: str | None,
        transaction_id: int | None,
        now: str,
    ) -> int:
        if conn.execute("UPDATE id_tags SET balance = balance + ? WHERE id_tag = ?", (amount, id_tag)).rowcount != 1:
            raise StoreError(f"unknown id tag {id_tag}")
        balance = conn.execute("SELECT balance FROM id_tags WHERE id_tag = ?", (id_tag,)).fetchone()
        conn.execute(
            "INSERT INTO ledger (id_tag, amount, currency, kind, transaction_id, reason, balance_after, created_at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (id_tag, amount, currency, kind, transaction_id, reason, balance[0], now),
        )
        return int(balance[0])

    def wallet_movement(
        self, id_tag: str, amount: int, currency: str, kind: str, reason: str | None
    ) -> asyncio.Future[tuple[str, int]]:
        """Top-up, refund or adjustment of the wallet `id_tag` spends; returns (wallet, new balance)."""
        now = now_iso()

        def fn(conn: sqlite3.Connection) -> tuple[str, int]:
            owner = self._wallet_owner(conn, id_tag)
            if owner is None:
                raise StoreError(f"unknown id tag {id_tag}")
            return owner, self._move(conn, owner, amount, currency, kind, reason, None, now)

        return self._write(fn)
