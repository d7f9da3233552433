"""One-time credentials for file transfers: each UpdateFirmware, GetDiagnostics or GetLog gets
its own grant, valid for that charger and that request only, until it expires or is used.

A grant is a URL path token for HTTP (`/t/<token>/<name>`) and a user and password for FTP
(`ftp://<user>:<token>@host:port/<name>`). The file servers ask `check_token` / `check_ftp`
and call `consume` when a transfer has completed; a download may be retried until then (a
charger that lost its link half-way asks again), an upload not.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Kind = Literal["firmware", "diagnostics", "log"]
DEFAULT_TTL_S = 24 * 3600.0  # a charger may download at its retrieveDate, hours later
UPLOAD_LIMIT = 50 * 1024 * 1024  # bytes a diagnostics or log upload may have


@dataclass(frozen=True, slots=True)
class Grant:
    token: str  # the HTTP path token, and the FTP password
    user: str  # the FTP user name
    charger_id: str
    kind: Kind
    name: str  # firmware: the image's file name in the library; uploads: the file name the charger chose (or "")
    expires_at: float  # time.time()
    max_bytes: int | None = None  # uploads
    address: str | None = None  # the charger's address when it was issued: the only one it works from (None: any)

    @property
    def upload(self) -> bool:
        return self.kind != "firmware"


class Grants:
    """The live grants of this process (they do not outlive it: a restart makes the charger ask
    the operator again, as any expired URL would)."""

    def __init__(self, files_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.files_dir = files_dir
        self.clock = clock
        self._by_token: dict[str, Grant] = {}
        self._by_user: dict[str, Grant] = {}
        # The FTP server checks and consumes from its own thread (files/ftp.py).
        self._lock = threading.Lock()

    # -- where files live --------------------------------------------------------------

    @property
    def firmware_dir(self) -> Path:
        return self.files_dir / "firmware"

    def firmware_path(self, name: str) -> Path:
        return self.firmware_dir / _plain(name)

    def upload_dir(self, charger_id: str) -> Path:
        """A charger's uploads (diagnostics, logs): one folder each, named safely after it."""
        return self.files_dir / "uploads" / _plain(charger_id.replace("/", "_") or "_")

    # -- grants --------------------------------------------------------------------------

    def issue(self, charger_id: str, kind: Kind, name: str = "", ttl_s: float = DEFAULT_TTL_S,
              max_bytes: int | None = UPLOAD_LIMIT, address: str | None = None) -> Grant:
        self._expire()
        grant = Grant(token=secrets.token_urlsafe(18), user="cp" + secrets.token_hex(5), charger_id=charger_id,
                      kind=kind, name=name, expires_at=self.clock() + ttl_s,
                      max_bytes=max_bytes if kind != "firmware" else None, address=plain_ip(address))
        with self._lock:
            self._by_token[grant.token] = grant
            self._by_user[grant.user] = grant
        return grant

    def check_token(self, token: str, address: str | None = None) -> Grant | None:
        """The live grant of an HTTP path token, asked from `address` (None: not checked)."""
        grant = self._by_token.get(token)
        return grant if grant is not None and self._valid(grant, address) else None

    def check_ftp(self, user: str, password: str, address: str | None = None) -> Grant | None:
        """The live grant of an FTP login, made from `address` (None: not checked)."""
        grant = self._by_user.get(user)
        if grant is None or not secrets.compare_digest(grant.token, password):
            return None
        return grant if self._valid(grant, address) else None

    def _valid(self, grant: Grant, address: str | None) -> bool:
        # A URL for one charger is no good to another: it must come from where that charger connects from.
        if address is not None and grant.address is not None and plain_ip(address) != grant.address:
            return False
        return grant.expires_at > self.clock()

    def consume(self, grant: Grant) -> None:
        """The transfer it was for has completed: the credential is no good any more."""
        with self._lock:
            self._by_token.pop(grant.token, None)
            self._by_user.pop(grant.user, None)

    def _expire(self) -> None:
        now = self.clock()
        with self._lock:
            expired = [g for g in self._by_token.values() if g.expires_at <= now]
        for grant in expired:
            self.consume(grant)


def plain_ip(address: str | None) -> str | None:
    """An IPv4 address seen through an IPv6 socket (::ffff:10.0.0.5) as itself."""
    if address is None:
        return None
    return address.removeprefix("::ffff:") if address.startswith("::ffff:") and "." in address else address


def _plain(name: str) -> str:
    """A file name that stays in its folder: no path, no parent, no hidden file."""
    base = Path(name).name
    if base in ("", ".", "..") or base.startswith("."):
        raise ValueError(f"not a plain file name: {name!r}")
    return base


def unused_path(folder: Path, name: str) -> Path:
    """`folder/name`, or `name-2`, `name-3`, ... (before the extensions) when that is taken:
    chargers often call every diagnostics file the same, and the last one must not be lost."""
    path = folder / name
    if not path.exists():
        return path
    leading = len(name) - len(name.lstrip("."))  # a leading dot belongs to the stem
    stem, dot, extensions = name[leading:].partition(".")
    stem = name[:leading] + stem
    number = 2
    while (path := folder / f"{stem}-{number}{dot}{extensions}").exists():
        number += 1
    return path
