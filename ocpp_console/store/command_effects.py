"""What the operator's commands leave behind once a charger accepted them: the command record,
configuration, reservations, local list version, charging profiles."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import TYPE_CHECKING, Any

from ocpp_console.secret_keys import mask_value
from ocpp_console.timeutil import now_iso


class CommandEffectsMixin:
    if TYPE_CHECKING:  # provided by Store
        def _write(self, fn: Any, one_statement: bool = False) -> asyncio.Future[Any]: ...

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
