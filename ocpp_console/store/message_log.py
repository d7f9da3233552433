"""The message log: every frame in and out, written behind the answers, pruned in bulk.

Frames ride along with the next group commit as rows (GroupWriter.submit_row), many to a
statement. The per-charger index is keyed by the log's stretch of 4,096 frames first
(migration 15), so that a group's frames from many chargers dirty a few index pages and pruning
empties whole stretches; a charger's frames are read stretch by stretch, newest first.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from ocpp_console.store.models import Frame, Row
from ocpp_console.store.stretches import STRETCH_BITS, newest_first
from ocpp_console.store.writer import GroupWriter, insert_rows

PRUNE_EVERY_FRAMES = 100  # at least; a tenth of message_log_max_rows
PRUNE_EVERY_BYTES = 1024 * 1024

_INSERT_FRAMES = "INSERT INTO message_log (charger_id, direction, timestamp, message_type, unique_id, action, raw) VALUES "
_FRAME = "(?,?,?,?,?,?,?)"


_CHARGER_FRAMES = (f"SELECT * FROM message_log WHERE id >> {STRETCH_BITS} = ? AND charger_id = ?"
                   " ORDER BY id DESC LIMIT ?")


def _charger_frames(conn: sqlite3.Connection, charger_id: str, limit: int) -> list[Row]:
    """A charger's newest frames (reader thread), newest stretch of the log first."""
    return newest_first(conn, "message_log", _CHARGER_FRAMES, charger_id, limit)


class MessageLogMixin:
    if TYPE_CHECKING:  # provided by Store
        writer: GroupWriter | None
        message_log_max_rows: int
        message_log_max_bytes: int
        _log_bytes: int
        _log_bytes_since_prune: int
        _frames_since_prune: int

        async def _query(self, sql: str, params: Any = ()) -> list[Row]: ...
        async def _read(self, fn: Any) -> Any: ...

    def log_frame(self, frame: Frame) -> None:
        if self.writer is not None:
            self.writer.submit_row(self._insert_frames, frame)  # the columns' order is the tuple's

    def _insert_frames(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        """The message-log frames of one group (writer thread), then pruning when it is due."""
        insert_rows(conn, _INSERT_FRAMES, _FRAME, rows)
        size = sum(len(row[6]) for row in rows)
        self._log_bytes += size
        self._log_bytes_since_prune += size
        self._frames_since_prune += len(rows)
        # by rows every tenth of the log, by size as soon as big frames have added up: in bulk,
        # so that a prune empties whole stretches of the log's index
        every = max(PRUNE_EVERY_FRAMES, self.message_log_max_rows // 10)
        if (self._frames_since_prune >= every or self._log_bytes_since_prune >= PRUNE_EVERY_BYTES
                or self._log_bytes > self.message_log_max_bytes):
            self._frames_since_prune = 0
            self._prune_message_log(conn)

    def _prune_message_log(self, conn: sqlite3.Connection) -> None:
        """Keep at most message_log_max_rows frames and message_log_max_bytes of them (then down
        to 90% of it, so that a full log is not pruned again on every frame). Runs on the writer
        thread; reads only the rows it deletes."""
        self._log_bytes_since_prune = 0
        cutoff = conn.execute("SELECT max(id) FROM message_log").fetchone()[0] - self.message_log_max_rows
        if self._log_bytes > self.message_log_max_bytes:
            excess = self._log_bytes - self.message_log_max_bytes * 9 // 10
            after, freed = cutoff, 0
            while freed < excess:
                chunk = conn.execute(
                    "SELECT id, length(raw) FROM message_log WHERE id > ? ORDER BY id LIMIT 500", (after,)
                ).fetchall()
                if not chunk:
                    break
                for row_id, length in chunk:
                    after, freed = row_id, freed + length
                    if freed >= excess:
                        break
            cutoff = max(cutoff, after)
        if conn.execute("SELECT 1 FROM message_log WHERE id <= ? LIMIT 1", (cutoff,)).fetchone() is None:
            return
        freed = conn.execute("SELECT coalesce(sum(length(raw)), 0) FROM message_log WHERE id <= ?", (cutoff,)).fetchone()[0]
        conn.execute("DELETE FROM message_log WHERE id <= ?", (cutoff,))
        self._log_bytes = max(0, self._log_bytes - freed)

    async def message_log(self, charger_id: str | None = None, limit: int = 1000) -> list[Row]:
        """The newest frames, newest first: the site's, or one charger's."""
        if charger_id is None:
            return await self._query("SELECT * FROM message_log ORDER BY id DESC LIMIT ?", (limit,))
        return await self._read(lambda conn: _charger_frames(conn, charger_id, limit))
