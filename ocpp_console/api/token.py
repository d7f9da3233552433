"""The API's bearer token by default, as Jupyter does it: made on first start, kept beside the
database readable only by its owner, and read from there by our own local clients (`call`), so
that a script on this machine needs no flag while a web page in the operator's browser, which
cannot read the file, cannot drive the API.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from ocpp_console.private_files import OWNER_ONLY
from ocpp_console.settings import Settings

log = logging.getLogger("ocpp_console.api")

TOKEN_FILE = "api-token"


def token_path(settings: Settings) -> Path:
    """The token file: in the data directory, beside the database."""
    return Path(settings.db).parent / TOKEN_FILE


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return text or None


def ensure_token(path: Path) -> str:
    """The token in `path`, made (owner-only, 0600) when there is none yet; a file others could
    read is narrowed to its owner first, since anyone who can read it can drive the API."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two instances starting at once never overwrite each other's token
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("API token file %s was readable by others (mode %o): now 0600", path, mode)
            os.chmod(path, OWNER_ONLY)
        token = _read(path)
        if token is not None:
            return token
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC, OWNER_ONLY)  # empty: make one
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    log.info("API token made in %s", path)
    return token


def server_token(settings: Settings) -> tuple[str, str]:
    """The token the API requires and where it comes from (for the operator)."""
    if settings.api_token:
        return settings.api_token.get_secret_value(), "--api-token"
    path = token_path(settings)
    return ensure_token(path), str(path)


def client_token(settings: Settings) -> str | None:
    """What a local client sends: --api-token / the environment / TOML, else the token file."""
    if settings.api_token:
        return settings.api_token.get_secret_value()
    try:
        return _read(token_path(settings))
    except OSError:  # not ours to read: the API answers 401 and says so
        return None
