"""Chargers as they register and report: boot, connection, last seen, passwords and
certificates, connector status, and the other messages they send (DataTransfer, notifications)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import TYPE_CHECKING, Any

from ocpp_console.store.models import BootResult, Row
from ocpp_console.store.writer import GroupWriter
from ocpp_console.timeutil import now_iso

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


def _touch_chargers(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    conn.executemany("UPDATE chargers SET last_seen = ? WHERE id = ?", rows)


class ChargersMixin:
    if TYPE_CHECKING:  # provided by Store
        writer: GroupWriter | None

        def _write(self, fn: Any, one_statement: bool = False) -> asyncio.Future[Any]: ...
        async def _query(self, sql: str, params: Any = ()) -> list[Row]: ...
        async def _query_one(self, sql: str, params: Any = ()) -> Row | None: ...

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
