"""The SQL of the firmware library (files/): which images it holds, their size and SHA-256.

`FilesMixin` is part of `Store`; its methods run on the store's writer and reader.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING, Any

from ocpp_console.store.models import Row
from ocpp_console.timeutil import now_iso


class FilesMixin:
    if TYPE_CHECKING:  # provided by Store
        def _write(self, fn: Any) -> asyncio.Future[Any]: ...
        async def _query(self, sql: str, params: Any = ()) -> list[Row]: ...
        async def _query_one(self, sql: str, params: Any = ()) -> Row | None: ...

    def add_firmware(self, name: str, size: int, sha256: str) -> asyncio.Future[None]:
        """Record an image (a new one, or the same name copied in again)."""
        now = now_iso()

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO firmware (name, size, sha256, added_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256, "
                "added_at = excluded.added_at",
                (name, size, sha256, now),
            )

        return self._write(fn)

    async def firmware_images(self) -> list[Row]:
        return await self._query("SELECT name, size, sha256, added_at FROM firmware ORDER BY name")

    async def firmware_image(self, name: str) -> Row | None:
        return await self._query_one("SELECT name, size, sha256, added_at FROM firmware WHERE name = ?", (name,))
