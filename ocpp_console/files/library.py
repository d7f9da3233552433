"""The firmware library: images copied into files_path/firmware, recorded with size and SHA-256."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from ocpp_console.files.grants import _plain

if TYPE_CHECKING:
    from ocpp_console.store import Store
    from ocpp_console.store.models import Row


class LibraryError(Exception):
    """An image that cannot be added: say why in one line."""


class NoSuchFile(LibraryError):
    pass


def _copy_and_hash(source: Path, target: Path) -> tuple[int, str]:
    """Copy through a temporary name (a half-copied image is never served), hashing on the way."""
    digest = hashlib.sha256()
    size = 0
    partial = target.with_name(f".{target.name}.part")
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as src, partial.open("wb") as dst:
        while chunk := src.read(1024 * 1024):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
    partial.replace(target)
    return size, digest.hexdigest()


async def add_image(store: Store, firmware_dir: Path, source: Path, name: str | None = None) -> Row:
    """Copy `source` into the library as `name` (default: its own file name); its row."""
    source = source.expanduser()
    if not source.is_file():
        raise NoSuchFile(f"{source}: no such file")
    try:
        plain = _plain(name or source.name)
        if plain != (name or source.name):
            raise ValueError
    except ValueError:
        raise LibraryError(f"{name or source.name!r} is not a plain file name (no folders, no leading dot)") from None
    target = firmware_dir / plain
    try:
        if source.resolve() == target.resolve():
            raise LibraryError(f"{source} is already the library's copy")
        size, sha256 = await asyncio.to_thread(_copy_and_hash, source, target)
    except OSError as exc:
        raise LibraryError(str(exc)) from None
    await store.add_firmware(plain, size, sha256)
    row = await store.firmware_image(plain)
    assert row is not None
    return row
