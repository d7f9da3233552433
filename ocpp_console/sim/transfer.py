"""Firmware downloads and diagnostics uploads: real HTTP when asked to, else simulated.

urllib is blocking, so it runs in a worker thread (asyncio.to_thread): the charger's event
loop, and with it its heartbeats and answers, never waits on a slow file server.
"""

from __future__ import annotations

import asyncio
import re
import urllib.error
import urllib.request
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

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


def _fetch(location: str) -> int:
    request = urllib.request.Request(location, headers={"User-Agent": "ocpp-console-sim"})
    size = 0
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - the operator's URL
        while chunk := response.read(64 * 1024):
            size += len(chunk)
            if size > MAX_FIRMWARE_BYTES:
                raise ValueError(f"firmware image larger than {MAX_FIRMWARE_BYTES} bytes")
    return size


async def fetch_firmware(location: str) -> int:
    """GET the firmware image (discarded: nothing is flashed); returns its size in bytes."""
    return await asyncio.to_thread(_fetch, location)


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
    """HTTP PUT (or POST) the diagnostics file; returns the HTTP status."""
    return await asyncio.to_thread(_upload, upload_url(location, file_name), body)
