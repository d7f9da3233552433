"""The FTP side of the file server, for chargers that only speak FTP (many 1.6 chargers do).

pyftpdlib does the protocol; this module decides who may do what. A login is a one-time grant
(files/grants.py): its user and password, live, or nothing. A firmware grant sees its one image,
read-only; a diagnostics or log grant may only store files into its charger's upload folder,
up to the grant's size limit. The grant is consumed once its transfer has completed.

pyftpdlib's server is not asyncio: it runs its own poll loop in a thread. Everything it reports
(FileTransfer events) is handed to the asyncio loop with call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyftpdlib.authorizers import AuthenticationFailed, DummyAuthorizer
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import DTPHandler, FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

from ocpp_console.csms.events import Event, FileTransfer
from ocpp_console.files.grants import Grant, Grants, unused_path

log = logging.getLogger(__name__)
# pyftpdlib configures the root logger itself when it finds no handler, and logs every command
# at INFO: a handler of its own stops the first, WARNING the second (our own lines say what matters).
_pyftpdlib_log = logging.getLogger("pyftpdlib")
_pyftpdlib_log.addHandler(logging.NullHandler())
_pyftpdlib_log.setLevel(logging.WARNING)

PROGRESS_EVERY_S = 0.25  # a FileTransfer event at most this often while bytes flow
AUTH_FAILED_DELAY_S = 0.5  # pyftpdlib's default is 3 s; tokens are 144 random bits, guessing is hopeless anyway
POLL_S = 0.1  # how quickly the server's thread notices stop()

# What a grant may ever do: fetch, store, move about its one folder, and the session's own
# commands. Everything that changes or names other files is not even understood.
_REMOVED = ("APPE", "DELE", "RMD", "XRMD", "MKD", "XMKD", "RNFR", "RNTO", "STOU", "SITE CHMOD", "MFMT")
_FIRMWARE_PERMS = "elr"
_UPLOAD_PERMS = "ew"


class _GrantAuthorizer(DummyAuthorizer):
    """Users are the live grants; what each may touch follows from its kind."""

    def __init__(self, grants: Grants) -> None:
        super().__init__()
        self.grants = grants
        self._logged_in: dict[str, Grant] = {}  # user -> its grant, from PASS on

    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        grant = self.grants.check_ftp(username, password, handler.remote_ip)
        if grant is None:
            raise AuthenticationFailed("Authentication failed.")
        # Users whose grants are gone (used, expired) need no entry any more.
        for user in [u for u, g in self._logged_in.items() if not self.live(g)]:
            del self._logged_in[user]
        self._logged_in[username] = grant
        handler.grant = grant

    def get_home_dir(self, username: str) -> str:
        grant = self._logged_in[username]
        home = self.grants.upload_dir(grant.charger_id) if grant.upload else self.grants.firmware_dir
        home.mkdir(parents=True, exist_ok=True)
        return os.path.realpath(home)

    def has_user(self, username: str) -> bool:
        return username in self._logged_in

    def get_perms(self, username: str) -> str:
        grant = self._logged_in.get(username)
        if grant is None:
            return ""
        return _UPLOAD_PERMS if grant.upload else _FIRMWARE_PERMS

    def has_perm(self, username: str, perm: str, path: str | None = None) -> bool:
        grant = self._logged_in.get(username)
        if grant is None or perm not in self.get_perms(username) or not self.live(grant):
            return False
        if path is None:
            return True
        home = self.get_home_dir(username)
        path = os.path.realpath(path)
        if perm == "e":
            return path == home  # one folder: nowhere else to go
        if grant.upload:  # "w": a file directly in the charger's folder
            return os.path.dirname(path) == home and not os.path.isdir(path)
        image = os.path.realpath(self.grants.firmware_path(grant.name))
        return path == image or (perm == "l" and path == home)

    def live(self, grant: Grant) -> bool:
        return self.grants.check_ftp(grant.user, grant.token) is not None

    def get_msg_login(self, username: str) -> str:
        return "Logged in."

    def get_msg_quit(self, username: str) -> str:
        return "Goodbye."


class _GrantFS(AbstractedFS):
    """The grant's folder as the whole world: a firmware grant lists only its image, and
    changing directory never touches the process's working directory (pyftpdlib's own
    chdir calls os.chdir, which the asyncio thread beside us would feel)."""

    def chdir(self, path: str) -> None:
        if not os.path.isdir(path):
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        self.cwd = self.fs2ftp(path)

    def listdir(self, path: str) -> list[str]:
        return self._visible(super().listdir(path))

    def listdirinfo(self, path: str) -> list[str]:
        return self._visible(super().listdirinfo(path))

    def _visible(self, names: list[str]) -> list[str]:
        grant: Grant | None = getattr(self.cmd_channel, "grant", None)
        if grant is None or grant.upload:
            return []
        return [n for n in names if n == grant.name]


class _CountingDTP(DTPHandler):
    """The data channel, counting bytes both ways for progress, and cutting an upload at its
    grant's limit."""

    def __init__(self, sock: Any, cmd_channel: Any) -> None:
        super().__init__(sock, cmd_channel)
        self._last_report = 0.0
        self.cut = False

    def send(self, data: bytes) -> int:
        sent = super().send(data)
        if self.file_obj is not None:
            self._progress(self.tot_bytes_sent)
        return sent

    def handle_read(self) -> None:
        DTPHandler.handle_read(self)
        if self._closed or self.file_obj is None:
            return
        grant: Grant | None = getattr(self.cmd_channel, "grant", None)
        limit = grant.max_bytes if grant is not None else None
        if limit is not None and self.tot_bytes_received > limit:
            self.cut = True
            self._resp = (f"552 Upload larger than {limit} bytes; transfer aborted.", log.info)
            self.close()
            return
        self._progress(self.tot_bytes_received)

    handle_read_event = handle_read  # DTPHandler aliases its own handle_read under this name

    def _progress(self, count: int) -> None:
        now = time.monotonic()
        if now - self._last_report >= PROGRESS_EVERY_S:
            self._last_report = now
            self.cmd_channel.report(count)


class _GrantHandler(FTPHandler):
    """One control connection. Class attributes (authorizer, server, ports) are set per
    FtpServer on a subclass made for it."""

    dtp_handler = _CountingDTP
    abstracted_fs = _GrantFS
    use_sendfile = False  # sendfile bypasses the data channel's send(): no progress
    auth_failed_timeout = AUTH_FAILED_DELAY_S
    banner = "ocpp-console file server ready."
    proto_cmds = {cmd: spec for cmd, spec in FTPHandler.proto_cmds.items() if cmd not in _REMOVED}
    owner: FtpServer

    def __init__(self, conn: Any, server: Any, ioloop: Any = None) -> None:
        super().__init__(conn, server, ioloop)
        self.grant: Grant | None = None
        self._total: int | None = None
        self._file_name = ""

    def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
        # pyftpdlib would read "../../x" as "/x", inside the folder; a charger asking for a parent
        # is asking for somewhere else, and is told no rather than quietly given its own folder.
        if ".." in arg.replace("\\", "/").split("/") and cmd in self.proto_cmds and self.proto_cmds[cmd]["perm"]:
            self.respond("550 Path outside your folder.")
            self.log_cmd(cmd, arg, 550, "path outside the grant's folder")
            return
        super().pre_process_command(line, cmd, arg)

    # -- transfers ------------------------------------------------------------------------

    def ftp_RETR(self, file: str) -> str | None:
        self._file_name, self._total = os.path.basename(file), None
        with contextlib.suppress(OSError):
            self._total = os.path.getsize(file)
        return super().ftp_RETR(file)

    def ftp_STOR(self, file: str, mode: str = "w") -> str | None:
        if self._restart_position:  # a resumed upload would escape the size count
            self._restart_position = 0
            self.respond("554 Resuming an upload is not supported; send the whole file.")
            return None
        file = str(unused_path(Path(file).parent, os.path.basename(file)))  # an earlier upload is kept
        self._file_name, self._total = os.path.basename(file), None
        return super().ftp_STOR(file, mode)

    def report(self, count: int, done: bool = False, error: str | None = None) -> None:
        if self.grant is not None:
            self.owner.report(self.grant, self._file_name or self.grant.name, count, self._total, done, error)

    def on_file_sent(self, file: str) -> None:
        self._completed(file)

    def on_file_received(self, file: str) -> None:
        self._completed(file)

    def _completed(self, file: str) -> None:
        dtp = self._last_dtp
        if self.grant is None or dtp is None:
            return
        self.owner.grants.consume(self.grant)
        self.report(dtp.get_transmitted_bytes(), done=True)
        log.info("%s: %s %s over FTP (%d bytes)", self.grant.charger_id,
                 "received" if self.grant.upload else "sent", os.path.basename(file), dtp.get_transmitted_bytes())

    def on_incomplete_file_sent(self, file: str) -> None:
        dtp = self._last_dtp
        self.report(dtp.get_transmitted_bytes() if dtp else 0, done=True, error="download interrupted")

    def on_incomplete_file_received(self, file: str) -> None:
        dtp = self._last_dtp
        with contextlib.suppress(OSError):
            os.remove(file)  # half a diagnostics file is no diagnostics file
        if dtp is not None and dtp.cut and self.grant is not None:
            error = f"upload larger than {self.grant.max_bytes} bytes: cut, file removed"
        else:
            error = "upload interrupted: file removed"
        self.report(dtp.get_transmitted_bytes() if dtp else 0, done=True, error=error)
        if self.grant is not None:
            log.warning("%s: FTP upload of %s: %s", self.grant.charger_id, os.path.basename(file), error)

    @property
    def _last_dtp(self) -> _CountingDTP | None:
        return self.data_channel if isinstance(self.data_channel, _CountingDTP) else None

    # -- the session ----------------------------------------------------------------------

    def on_login_failed(self, username: str, password: str) -> None:
        log.info("FTP login refused for user %r from %s", username, self.remote_ip)


class FtpServer:
    """pyftpdlib serving the grants' files, in a thread of its own."""

    def __init__(
        self,
        grants: Grants,
        host: str,
        port: int,
        publish: Callable[[Event], None],
        passive_ports: range | None = None,
        masquerade_address: str | None = None,
    ) -> None:
        self.grants = grants
        self.host = host
        self.requested_port = port
        self.publish = publish
        self.passive_ports = passive_ports
        self.masquerade_address = masquerade_address
        self.port: int | None = None
        self._server: FTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        handler = type("GrantHandler", (_GrantHandler,), {
            "authorizer": _GrantAuthorizer(self.grants),
            "owner": self,
            "passive_ports": list(self.passive_ports) if self.passive_ports else None,
            "masquerade_address": self.masquerade_address,
        })
        # Its own IOLoop: pyftpdlib's default is one per process, which two servers would share.
        self._server = await asyncio.to_thread(FTPServer, (self.host, self.requested_port), handler, IOLoop())
        self.port = self._server.address[1]
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="ftp-server", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        server = self._server
        assert server is not None
        try:
            while not self._stopping.is_set():
                server.ioloop.loop(POLL_S, blocking=False)
        except Exception:
            log.exception("FTP server failed")
        finally:
            server.close_all()

    async def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)
            self._thread = None
        self._server = None

    def report(self, grant: Grant, name: str, count: int, total: int | None, done: bool, error: str | None) -> None:
        """From the server's thread: a FileTransfer event, published on the asyncio loop."""
        event = FileTransfer(grant.charger_id, kind=grant.kind, name=name, protocol="ftp",
                             bytes=count, total=total, done=done, error=error)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
                loop.call_soon_threadsafe(self.publish, event)
