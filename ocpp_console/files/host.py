"""What the central system hosts for its chargers, as one part of it: the grants, the HTTP file
server (and the FTP one, files/ftp.py, when there is one), the URLs a charger is given, and the
diagnostics and logs received."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocpp_console.csms.errors import InvalidCommand
from ocpp_console.files.grants import Grant, Grants, Kind, _plain
from ocpp_console.files.http import HttpFileServer
from ocpp_console.files.urls import ftp_url, http_url, url_host

if TYPE_CHECKING:
    from ocpp_console.csms.events import Event
    from ocpp_console.settings import Settings
    from ocpp_console.store import Store

log = logging.getLogger("ocpp_console.files")

PROTOCOLS = ("http", "ftp")
# Not OCPP: what the console and the API add to an UpdateFirmware / GetDiagnostics / GetLog payload
# to have the central system fill in the location with one of its own URLs.
FIRMWARE_KEY = "firmware"
PROTOCOL_KEY = "transferProtocol"


class UnknownImage(InvalidCommand):
    """UpdateFirmware names an image the library does not hold."""


class NoFileServer(InvalidCommand):
    """A hosted URL was asked for, but this central system serves no files (that way)."""


@dataclass(frozen=True, slots=True)
class Received:
    name: str
    size: int
    modified: str  # UTC ISO 8601

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "receivedAt": self.modified}


class FileHost:
    def __init__(self, settings: Settings, publish: Callable[[Event], None],
                 local_host: Callable[[str], str | None],
                 remote_host: Callable[[str], str | None] = lambda charger_id: None) -> None:
        """`local_host(charger_id)`: the address the charger's connection reached us on, if connected;
        `remote_host(charger_id)`: the address it connects from (its one-time URLs work from there only)."""
        self.settings = settings
        self.grants = Grants(settings.files_path)
        self.http = HttpFileServer(self.grants, publish)
        self.local_host = local_host
        self.remote_host = remote_host
        self.http_port: int | None = None
        self.ftp_port: int | None = None  # set by the FTP server when it listens (files/ftp.py)

    async def start(self) -> None:
        if self.settings.files_port is None:
            return
        self.http_port = await self.http.start(self.settings.host, self.settings.files_port)
        host = self.settings.host if self.settings.host not in ("", "0.0.0.0", "::") else "<address the charger used>"
        log.info("file server for chargers on http://%s:%d/t/<token>/<name> (firmware library %s)",
                 url_host(host), self.http_port, self.grants.firmware_dir)

    async def stop(self) -> None:
        await self.http.stop()
        self.http_port = None

    # -- URLs ---------------------------------------------------------------------------

    def transfer_url(self, charger_id: str, grant: Grant, protocol: str = "http") -> str:
        """The URL the charger is given for `grant`: FTP when asked and served, else HTTP."""
        host = self._host_for(charger_id)
        if protocol == "ftp":
            port = self.ftp_port or self.settings.ftp_port
            if not port:
                raise NoFileServer("no FTP server: start the central system with --ftp-port")
            return ftp_url(host, port, grant)
        if self.http_port is None:
            raise NoFileServer("no file server: start the central system with --files-port")
        return http_url(host, self.http_port, grant)

    def _host_for(self, charger_id: str) -> str:
        host = self.local_host(charger_id)
        if host:
            return host
        if self.settings.host not in ("", "0.0.0.0", "::"):
            return self.settings.host
        raise InvalidCommand(f"{charger_id} is not connected: the address it reaches us on is not known")

    def hosted_payload(self, charger_id: str, action: str, payload: dict[str, Any], image: Any = None) -> dict[str, Any]:
        """The payload with our own URL where the operator left the location out (UpdateFirmware
        with a library image, GetDiagnostics, GetLog); other payloads as they are."""
        payload = dict(payload)
        protocol = payload.pop(PROTOCOL_KEY, "http")
        if protocol not in PROTOCOLS:
            raise InvalidCommand(f"{PROTOCOL_KEY} must be one of {', '.join(PROTOCOLS)}")
        if action == "UpdateFirmware" and FIRMWARE_KEY in payload:
            name = payload.pop(FIRMWARE_KEY)
            if "location" in payload:
                raise InvalidCommand("give either firmware (a library image) or location, not both")
            if image is None:
                raise UnknownImage(f"no firmware image {name!r} in the library (ocpp-console firmware add FILE)")
            payload["location"] = self.transfer_url(charger_id, self._issue(charger_id, "firmware", str(name)), protocol)
        elif action == "GetDiagnostics" and "location" not in payload:
            payload["location"] = self.transfer_url(charger_id, self._issue(charger_id, "diagnostics"), protocol)
        elif action == "GetLog" and isinstance(payload.get("log"), dict) and "remoteLocation" not in payload["log"]:
            payload["log"] = {**payload["log"],
                              "remoteLocation": self.transfer_url(charger_id, self._issue(charger_id, "log"), protocol)}
        return payload

    def _issue(self, charger_id: str, kind: Kind, name: str = "") -> Grant:
        if self.http_port is None and not (self.ftp_port or self.settings.ftp_port):
            raise NoFileServer("no file server: start the central system with --files-port (or --ftp-port)")
        address = None if self.settings.files_any_address else self.remote_host(charger_id)
        return self.grants.issue(charger_id, kind, name, address=address)

    # -- what chargers sent ----------------------------------------------------------------

    def received(self, charger_id: str) -> list[Received]:
        """The diagnostics and logs a charger uploaded, newest first."""
        folder = self.grants.upload_dir(charger_id)
        try:
            entries = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
        except OSError:
            return []
        files = []
        for path in entries:
            stat = path.stat()
            when = datetime.fromtimestamp(stat.st_mtime, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
            files.append(Received(path.name, stat.st_size, when))
        return sorted(files, key=lambda f: (f.modified, f.name), reverse=True)

    def received_path(self, charger_id: str, name: str) -> Path | None:
        try:
            path = self.grants.upload_dir(charger_id) / _plain(name)
        except ValueError:
            return None
        return path if path.is_file() else None


async def library_image(store: Store, payload: dict[str, Any]) -> Any:
    """The library row an UpdateFirmware payload's `firmware` names, if it names one."""
    name = payload.get(FIRMWARE_KEY)
    if not isinstance(name, str):
        return None
    return await store.firmware_image(name)
