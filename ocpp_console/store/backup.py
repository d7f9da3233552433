"""A consistent copy of the database while the central system writes to it (SQLite's online
backup API): what `ocpp-console backup FILE` makes."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

PAGES_PER_STEP = 1024  # copy in steps, so that the writer is never held up for long


class BackupError(Exception):
    pass


def backup(source: Path, target: Path, force: bool = False) -> int:
    """Copy `source` to `target` page by page through a read-only connection; the copy is one
    consistent snapshot even while another process commits (a commit during the copy makes
    SQLite restart it). Written beside the target and renamed into place, so a failed copy
    leaves no half file. The number of pages copied; BackupError saying what is wrong."""
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    if target.exists() and not force:
        raise BackupError(f"{target} exists: give --force to overwrite it")
    if target.exists() and target.resolve() == source.resolve():
        raise BackupError(f"{target} is the database itself")
    partial = target.with_name(target.name + ".partial")
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            src.execute("PRAGMA busy_timeout=10000")
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst, pages=PAGES_PER_STEP)
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
                pages = dst.execute("PRAGMA page_count").fetchone()[0]
            finally:
                dst.close()
        finally:
            src.close()
        os.replace(partial, target)
    except sqlite3.Error as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise BackupError(f"backup of {source} failed: {exc}") from None
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return int(pages)
