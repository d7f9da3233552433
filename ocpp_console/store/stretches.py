"""Tables written by many chargers at once, indexed by stretch of ids first (issue 17).

The message log and the meter readings key their per-charger index by `id >> STRETCH_BITS`
first: a group commit's rows from a thousand chargers then land in the newest stretch's few
index pages, where an index led by the charger put each charger's newest entry on a page of its
own. A charger's rows are read stretch by stretch: one index look-up each.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ocpp_console.store.models import Row, rows_of

STRETCH_BITS = 12  # 4,096 ids; the migrations' `id >> 12`


def newest_first(conn: sqlite3.Connection, table: str, sql: str, key: Any, limit: int) -> list[Row]:
    """Up to `limit` rows of `sql` (a query with parameters stretch, key, limit, newest first
    within a stretch), from the newest stretch of `table` back to its oldest."""
    low, high = conn.execute(f"SELECT min(id), max(id) FROM {table}").fetchone()
    rows: list[Row] = []
    if high is None:
        return rows
    for stretch in range(high >> STRETCH_BITS, (low >> STRETCH_BITS) - 1, -1):
        rows.extend(rows_of(conn.execute(sql, (stretch, key, limit - len(rows)))))
        if len(rows) >= limit:
            break
    return rows


def first_id_at_or_after(conn: sqlite3.Connection, table: str, column: str, value: Any) -> int | None:
    """The first id whose `column` is at least `value`, for a column that grows with the id (a
    receive time): a binary search over the ids, ~30 look-ups by rowid; None if there is none."""
    low, high = conn.execute(f"SELECT min(id), max(id) FROM {table}").fetchone()
    if high is None:
        return None
    probe = f"SELECT id, {column} FROM {table} WHERE id >= ? ORDER BY id LIMIT 1"
    found = None
    while low <= high:
        middle = (low + high) // 2
        row = conn.execute(probe, (middle,)).fetchone()
        if row is None:
            high = middle - 1
        elif row[1] >= value:
            found, high = row[0], middle - 1
        else:
            low = row[0] + 1
    return found
