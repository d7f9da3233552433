"""Group commit: the writes of all concurrent calls go into one SQLite transaction.

Each write is a plain function run on aiosqlite's database thread. The writer takes every
write queued since its last commit, runs them in one BEGIN IMMEDIATE ... COMMIT (each inside
a savepoint, so one failing write does not undo the others) and only then resolves the
callers' futures. A charger is therefore answered only after its rows are on disk, while a
busy site pays for one fsync per group instead of one per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import aiosqlite

log = logging.getLogger(__name__)

T = TypeVar("T")
WriteFn = Callable[[sqlite3.Connection], Any]
# Writes all the rows of one kind queued since the last group, in one call (one executemany).
RowsFn = Callable[[sqlite3.Connection, list[tuple[Any, ...]]], None]


@functools.lru_cache(maxsize=16)
def _insert_sql(insert: str, row: str, count: int) -> str:
    return insert + ",".join([row] * count)


def insert_rows(conn: sqlite3.Connection, insert: str, row: str, rows: list[tuple[Any, ...]]) -> None:
    """INSERT `rows` with few statements: up to 64 rows to a statement (`insert` + `row` * n), the
    rest by halves, so that the statement cache holds every text used. Each statement is one
    handover of the GIL to the event loop and back, which costs more than a row while the loop
    is busy (issue 17)."""
    done, count, size = 0, len(rows), 64
    while done < count:
        while size > count - done:
            size //= 2
        conn.execute(_insert_sql(insert, row, size), [value for r in rows[done:done + size] for value in r])
        done += size


@contextlib.contextmanager
def savepoint(conn: sqlite3.Connection, name: str) -> Iterator[None]:
    """The block's statements as one: undone together if it raises (writer thread)."""
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        conn.execute(f"ROLLBACK TO {name}")
        raise
    finally:
        conn.execute(f"RELEASE {name}")


class GroupWriter:
    def __init__(self, db: aiosqlite.Connection, big_group: int = 0, big_group_cache_kib: int = 0,
                 big_groups_in_a_row: int = 1) -> None:
        self._db = db
        # The cache grows (once, for good) when `big_groups_in_a_row` groups in a row had
        # `big_group` writes or more: a site at its limit, not one stall that let writes pile up.
        self._big_group = big_group
        self._big_group_cache_kib = big_group_cache_kib
        self._big_groups_in_a_row = big_groups_in_a_row
        self._big_run = 0
        self.cache_grown = False
        # (fn, its future, whether it runs in a savepoint of its own)
        self._pending: list[tuple[WriteFn, asyncio.Future[Any] | None, bool]] = []
        self._rows: dict[RowsFn, list[tuple[Any, ...]]] = {}
        # callers waiting for rows of theirs to be committed: (future, the result it resolves with)
        self._row_waiters: dict[RowsFn, list[tuple[asyncio.Future[Any], Any]]] = {}
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.commits = 0
        self.writes = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sqlite-group-writer")

    def submit(self, fn: Callable[[sqlite3.Connection], T], one_statement: bool = False) -> asyncio.Future[T]:
        """Queue a write; the future resolves with fn's result once it is committed.

        A write runs in a savepoint of its own, so that a failing one undoes only itself. A write
        that changes the database with one statement at most (`one_statement`) needs none: SQLite
        undoes a failed statement by itself. That saves two statements per write, and each is a
        handover of the GIL to the event loop and back (issue 17)."""
        if self._closing:
            raise RuntimeError("the store is closed")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((fn, fut, not one_statement))
        self._wake()
        return fut

    def submit_nowait(self, fn: WriteFn) -> None:
        """Queue a write nobody waits for (the message log); it rides along with the next group."""
        if self._closing:
            return
        self._pending.append((fn, None, True))
        self._wake()

    def submit_row(self, fn: RowsFn, row: tuple[Any, ...]) -> None:
        """Queue a row nobody waits for (a message-log frame). The rows queued for the same `fn`
        go to one call of it in the next group: no closure, savepoint or statement per row."""
        if self._closing:
            return
        rows = self._rows.get(fn)
        if rows is None:
            rows = self._rows[fn] = []
        rows.append(row)
        self._wake()

    def submit_row_waited(self, fn: RowsFn, row: tuple[Any, ...], result: T) -> asyncio.Future[T]:
        """Queue a row as submit_row does, for a caller who waits: the future resolves with
        `result` once the row is committed, or fails if `fn` (all its rows of the group) or the
        commit failed. A meter reading whose checks were all answered without the database."""
        if self._closing:
            raise RuntimeError("the store is closed")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        waiters = self._row_waiters.get(fn)
        if waiters is None:
            waiters = self._row_waiters[fn] = []
        waiters.append((fut, result))
        self.submit_row(fn, row)
        return fut

    def _wake(self) -> None:
        self._idle.clear()
        self._wakeup.set()

    async def flush(self) -> None:
        await self._idle.wait()

    async def close(self) -> None:
        await self.flush()
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            batch, self._pending = self._pending, []
            rows, self._rows = self._rows, {}
            row_waiters, self._row_waiters = self._row_waiters, {}
            row_count = sum(map(len, rows.values()))
            if not batch and not rows:
                self._idle.set()
                continue
            failed_rows: dict[RowsFn, Exception] = {}
            try:
                # aiosqlite runs the function on its database thread, after any queued statement.
                results = await self._db._execute(self._apply, batch, rows, row_count, failed_rows)
            except Exception as exc:  # the COMMIT itself failed: nothing of the group is stored
                log.exception("group commit of %d writes failed", len(batch) + row_count)
                results = [(False, exc)] * len(batch)
                failed_rows = dict.fromkeys(rows, exc)
            self.commits += 1
            self.writes += len(batch) + row_count
            for (_, fut, _), (ok, value) in zip(batch, results):
                if fut is None or fut.done():
                    if not ok and fut is None:
                        log.error("background write failed: %s", value)
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)
            for rows_fn, waiters in row_waiters.items():
                error = failed_rows.get(rows_fn)
                for fut, result in waiters:
                    if fut.done():
                        continue
                    if error is None:
                        fut.set_result(result)
                    else:
                        fut.set_exception(error)
            if not self._pending and not self._rows:
                self._idle.set()

    def _apply(
        self, batch: list[tuple[WriteFn, asyncio.Future[Any] | None, bool]], rows: dict[RowsFn, list[tuple[Any, ...]]],
        row_count: int, failed_rows: dict[RowsFn, Exception],
    ) -> list[tuple[bool, Any]]:
        conn: sqlite3.Connection = self._db._conn  # on the database thread
        results: list[tuple[bool, Any]] = []
        if self._big_group and not self.cache_grown:
            self._big_run = self._big_run + 1 if len(batch) + row_count >= self._big_group else 0
            if self._big_run >= self._big_groups_in_a_row:
                conn.execute(f"PRAGMA cache_size=-{self._big_group_cache_kib}")
                self.cache_grown = True
                log.info("%d groups in a row of %d writes or more: the writer's cache grows to %d KiB",
                         self._big_run, self._big_group, self._big_group_cache_kib)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for rows_fn, group in rows.items():
                conn.execute("SAVEPOINT w")
                try:
                    rows_fn(conn, group)
                except Exception as exc:  # the group's other writes stay
                    conn.execute("ROLLBACK TO w")
                    failed_rows[rows_fn] = exc
                    log.error("write of %d rows failed: %s", len(group), exc)
                conn.execute("RELEASE w")
            for fn, _, savepoint in batch:
                if savepoint:
                    conn.execute("SAVEPOINT w")
                try:
                    value = fn(conn)
                except Exception as exc:
                    if savepoint:
                        conn.execute("ROLLBACK TO w")
                        conn.execute("RELEASE w")
                    results.append((False, exc))
                else:
                    if savepoint:
                        conn.execute("RELEASE w")
                    results.append((True, value))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return results
