"""Firmware downloads and diagnostics uploads: real HTTP or FTP when asked to, else simulated.

urllib and ftplib are blocking, so they run in a worker thread (asyncio.to_thread): the
charger's event loop, and with it its heartbeats and answers, never waits on a slow file server.
"""

from __future__ import annotations

import asyncio
import ftplib
import hashlib
import io
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import SplitResult, unquote, urlsplit

MAX_FIRMWARE_BYTES = 512 * 1024 * 1024
TIMEOUT_S = 60.0
_VERSION = re.compile(r"\d+(?:\.\d+)+")


def firmware_version_from(location: str, current: str) -> str:
    """The version an image brings: the dotted number in its file name (`sim-2.0.0.bin` -> 2.0.0),
    else the current version with its last number raised (1.4.9 -> 1.4.10)."""
    name = unquote(PurePosixPath(urlsplit(location).path).name)
    stem = name
    for suffix in (".bin", ".img", ".tar.gz", ".tgz", ".zip", ".hex", ".fw"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    found = _VERSION.findall(stem)
    if found:
        return found[-1]
    return bump_version(current)


def bump_version(version: str) -> str:
    numbers = list(re.finditer(r"\d+", version))
    if not numbers:
        return f"{version}.1" if version else "1"
    last = numbers[-1]
    return f"{version[: last.start()]}{int(last.group()) + 1}{version[last.end():]}"


@dataclass(frozen=True, slots=True)
class Fetched:
    """A firmware image as the charger received it: what a real one would verify before flashing."""

    size: int
    sha256: str


class _Image:
    """The bytes of an image as they arrive, counted and hashed, never kept."""

    def __init__(self) -> None:
        self.size = 0
        self.hash = hashlib.sha256()

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > MAX_FIRMWARE_BYTES:
            raise ValueError(f"firmware image larger than {MAX_FIRMWARE_BYTES} bytes")
        self.hash.update(chunk)

    def fetched(self) -> Fetched:
        return Fetched(self.size, self.hash.hexdigest())


def _fetch(location: str) -> Fetched:
    request = urllib.request.Request(location, headers={"User-Agent": "ocpp-console-sim"})
    image = _Image()
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - the operator's URL
        while chunk := response.read(64 * 1024):
            image.add(chunk)
    return image.fetched()


async def fetch_firmware(location: str) -> Fetched:
    """Fetch the firmware image by HTTP(S) or FTP (discarded: nothing is flashed); its size and SHA-256."""
    if is_ftp(location):
        return await asyncio.to_thread(_fetch_ftp, location)
    return await asyncio.to_thread(_fetch, location)


# -- FTP ------------------------------------------------------------------------------------------


def redact_url(location: str) -> str:
    """The URL without its password, for logs (a one-time credential is still a credential)."""
    url = urlsplit(location)
    if url.password is None:
        return location
    host = url.netloc.rpartition("@")[2]
    return url._replace(netloc=f"{url.username}:***@{host}").geturl()


def is_ftp(location: str) -> bool:
    return urlsplit(location).scheme.lower() == "ftp"


def _ftp_session(url: SplitResult) -> ftplib.FTP:
    """Logged in with the URL's user and password (anonymous without), in passive mode: the
    charger opens every connection, which is what gets through NAT and firewalls."""
    ftp = ftplib.FTP(timeout=TIMEOUT_S)
    try:
        ftp.connect(url.hostname or "", url.port or 21)
        ftp.login(unquote(url.username or "anonymous"), unquote(url.password or ""))
        ftp.set_pasv(True)
    except BaseException:
        ftp.close()
        raise
    return ftp


def _ftp_path(ftp: ftplib.FTP, path: str) -> str:
    """RFC 1738: each directory of the URL's path is a CWD from the login folder, then the file name."""
    *folders, name = path.lstrip("/").split("/")
    for folder in folders:
        if folder:
            ftp.cwd(unquote(folder))
    return unquote(name)


def _fetch_ftp(location: str) -> Fetched:
    url = urlsplit(location)
    image = _Image()
    with _ftp_session(url) as ftp:
        ftp.retrbinary(f"RETR {_ftp_path(ftp, url.path)}", image.add, blocksize=64 * 1024)
    return image.fetched()


def _upload_ftp(url: str, body: bytes) -> int:
    parts = urlsplit(url)
    with _ftp_session(parts) as ftp:
        reply = ftp.storbinary(f"STOR {_ftp_path(ftp, parts.path)}", io.BytesIO(body))
    return int(reply[:3])


def upload_url(location: str, file_name: str) -> str:
    """A location ending in / is a directory: the file goes inside it."""
    return location + file_name if location.endswith("/") else location


def _upload(url: str, body: bytes) -> int:
    headers = {"Content-Type": "text/plain; charset=utf-8", "User-Agent": "ocpp-console-sim"}
    try:
        request = urllib.request.Request(url, data=body, method="PUT", headers=headers)
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        if exc.code not in (405, 501):
            raise
    # The server does not take PUT: try a plain POST of the same body.
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
        return response.status


async def upload_diagnostics(location: str, file_name: str, body: bytes) -> int:
    """HTTP PUT (or POST) the diagnostics file, or FTP STOR it; returns the HTTP status or FTP reply code."""
    url = upload_url(location, file_name)
    if is_ftp(url):
        return await asyncio.to_thread(_upload_ftp, url, body)
    return await asyncio.to_thread(_upload, url, body)
