"""Provisioning: chargers, id tags, wallets and tariffs as the operator sets them (the shell, an
import file), and removing a charger or an id tag."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ocpp_console.store.models import StoreError
from ocpp_console.timeutil import now_iso

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


class ProvisioningMixin:
    if TYPE_CHECKING:  # provided by Store
        def _write(self, fn: Any, one_statement: bool = False) -> asyncio.Future[Any]: ...
        def _move(self, conn: sqlite3.Connection, id_tag: str, amount: int, currency: str, kind: str, reason: str,
                  transaction_id: int | None, now: str) -> Any: ...

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
