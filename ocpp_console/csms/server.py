"""The central system: accepts chargers over WebSocket and runs one session for each."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import weakref
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ocpp.v16.enums import MessageTrigger, RegistrationStatus
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ocpp_console.csms import events as ev
from ocpp_console.csms import instance, security
from ocpp_console.csms.ca import OperatorCA
from ocpp_console.csms.commands import Commands
from ocpp_console.csms.connection import ChargerConnection
from ocpp_console.csms.errors import CommandError
from ocpp_console.csms.load import LoadManager
from ocpp_console.csms.remote_start import RemoteStartFollower
from ocpp_console.csms.session import ChargerSession
from ocpp_console.csms.transactions import StaleSweeper
from ocpp_console.csms.wallet_guard import WalletGuard
from ocpp_console.files.host import FileHost, library_image
from ocpp_console.secret_keys import MaskSecrets
from ocpp_console.settings import Settings
from ocpp_console.store import Store
from ocpp_console.timeutil import now_iso

if TYPE_CHECKING:
    from ocpp_console.files.ftp import FtpServer

log = logging.getLogger("ocpp_console.server")
# websockets logs handshake headers and frames here at DEBUG: the Basic header is masked first.
_websockets_log = logging.getLogger("ocpp_console.websockets")
_websockets_log.addFilter(MaskSecrets())

SUBPROTOCOL = "ocpp1.6"
MAX_ID_LENGTH = 48
# How often the database is checked for commits by other processes (the CLI): a change shows in
# the console within a second (this plus a screen's 0.25 s refresh), for a query that costs ~10 us.
WATCH_SECONDS = 0.3

DataTransferHandler = Callable[[str, str | None, str | None], Awaitable[tuple[str, str | None]]]


def charge_point_id(path: str) -> str:
    """The charge point id is the last segment of the URL path, URL-decoded."""
    segments = [s for s in urlsplit(path).path.split("/") if s]
    return unquote(segments[-1]) if segments else ""


def _offered_subprotocols(request: Request) -> list[str]:
    values = request.headers.get_all("Sec-WebSocket-Protocol")
    return [p.strip() for value in values for p in value.split(",") if p.strip()]


class CentralSystem:
    def __init__(self, settings: Settings, store: Store | None = None, *, frames_direct: bool = True) -> None:
        self.settings = settings
        # Messages go from data_received straight to the sessions (connection.py: ~10 us less per
        # call). A process with the console in it passes False: websockets' reader task hands them
        # over a task step later, which cuts a busy loop's work into shorter iterations, between
        # which the console draws (bench/ui_latency.py: event-loop lag p99 ~80 ms instead of ~90).
        self.frames_direct = frames_direct
        self.store = store or Store(settings.db, settings.sqlite_synchronous, settings.message_log_max_rows,
                                    settings.message_log_max_mb * 1024 * 1024)
        self.events = ev.EventBus()
        self.sessions: dict[str, ChargerSession] = {}
        self.commands = Commands(self)
        self.remote_starts = RemoteStartFollower(self.events)  # says how each accepted Remote Start ended
        self.data_transfer_handlers: dict[str, DataTransferHandler] = {}
        self._servers: list[Server] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._throttle = security.FailureThrottle()
        # scrypt takes ~50 ms of CPU on purpose: in worker threads, a few at a time, so that a storm
        # of logins neither blocks the event loop the connected chargers share nor takes every core.
        self._hashing = asyncio.Semaphore(max(1, min(4, (os.cpu_count() or 2) - 1)))
        # What each accepted connection proved (security profile), from the handshake to its session.
        self._achieved: weakref.WeakKeyDictionary[ServerConnection, int] = weakref.WeakKeyDictionary()
        self.port: int | None = None  # the main port: wss:// with TLS files, else ws://
        self.tls_port: int | None = None
        self.plain_port: int | None = None  # ws:// beside the TLS port (settings.plain_port)
        # Tariffs stored in the database by scope ('*' the site, else a charger id): read for every
        # StartTransaction, so kept in memory and reloaded when another process changes the database.
        self.tariffs: dict[str, dict[str, str]] = {}
        self._watcher: asyncio.Task[None] | None = None
        self.sweeper = StaleSweeper(self)  # closes transactions rebooted chargers never stopped
        self.wallet_guard = WalletGuard(self)  # stop_on_empty_wallet
        self.load = LoadManager(self)  # the site limit shared by the running sessions
        self._followups: set[asyncio.Future[None]] = set()  # held so that they are not collected mid-way
        self._ca: OperatorCA | None = None  # made or read on first use (operator_ca)
        self.instance: instance.Instance | None = None  # this process, as recorded in the database while it runs
        self.files = FileHost(settings, self.events.publish, self._local_host, self._remote_host)  # firmware and uploads (files/)
        # One-time credentials for the files chargers fetch and upload (files/), and the FTP
        # server that honours them (settings.ftp_port; None while off).
        self.grants = self.files.grants
        self.ftp: FtpServer | None = None

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        if self.store.writer is None:
            await self.store.open()
        await self.store.mark_all_disconnected()  # whatever was connected before a crash is not now
        log.info("database %s", self.store.path)
        try:
            self.tariffs = await self.store.tariffs()
            if self.settings.tls_cert and not self.settings.tls_ca:
                await self.operator_ca()  # the CA the TLS port trusts for profile 3 by default
            await self._listen()
            await self.files.start()
            await self._start_ftp()
            # What the shell's `tariffs list` shows: the settings this instance bills with.
            record = instance.Instance(os.getpid(), instance.host_name(), now_iso(),
                                       json.loads(instance.settings_json(self.settings)))
            await self.store.record_instance(record.pid, record.host, record.started_at, json.dumps(record.settings))
            self.instance = record
        except BaseException:
            await self._stop_ftp()
            await self.files.stop()
            await self.store.close()
            raise
        self._watcher = asyncio.create_task(self._watch_database(), name="watch-database")
        self.sweeper.start()
        self.wallet_guard.start()
        await self.load.start()

    def _client_ca(self) -> Path | None:
        """The CA whose charger certificates the TLS port accepts (profile 3); None: no client
        certificates are asked for, so no charger reaches profile 3. By default the operator CA,
        so a charger whose CSR we signed (SignCertificate) logs in with that certificate."""
        if self.settings.tls_ca is not None:
            return self.settings.tls_ca
        return self._ca.cert_path if self._ca is not None and self.settings.tls_cert else None

    def _tls_context(self) -> ssl.SSLContext | None:
        if not (self.settings.tls_cert and self.settings.tls_key):
            return None
        return security.server_ssl_context(self.settings.tls_cert, self.settings.tls_key, self._client_ca())

    @property
    def highest_profile(self) -> int:
        """The highest security profile a charger can reach on our listeners."""
        if self.tls_port is None:
            return 1
        return 3 if self._client_ca() is not None else 2

    async def _listen(self) -> None:
        """One port: ws:// without TLS files, else wss:// (profiles 2 and 3 together, and 0-1 for
        chargers whose profile allows it); with TLS, `plain_port` adds a ws:// port for 0-1."""
        tls = self._tls_context()
        main = await self._serve(self.settings.port, tls)
        self.port = main
        if tls is None:
            log.info("central system listening on ws://%s:%d/<chargePointId> (minimum security profile %d)",
                     self.settings.host, main, self.settings.security_profile)
            return
        self.tls_port = main
        ca = self._client_ca()
        log.info("central system listening on wss://%s:%d/<chargePointId> (minimum security profile %d; %s)",
                 self.settings.host, main, self.settings.security_profile,
                 f"client certificates from {ca} make profile 3" if ca else "no client certificates: profile 2 at most")
        if self.settings.plain_port is not None:
            self.plain_port = await self._serve(self.settings.plain_port, None)
            log.info("central system also listening on ws://%s:%d/<chargePointId> (profiles 0-1 only)",
                     self.settings.host, self.plain_port)

    async def _start_ftp(self) -> None:
        """The FTP file server, for chargers that only speak FTP (settings.ftp_port)."""
        if self.settings.ftp_port is None:
            return
        from ocpp_console.files.ftp import FtpServer  # pyftpdlib only when FTP is on

        ftp = FtpServer(self.grants, self.settings.host, self.settings.ftp_port, self.events.publish,
                        passive_ports=self.settings.ftp_passive_range,
                        masquerade_address=self.settings.ftp_nat_address)
        await ftp.start()
        self.ftp = ftp
        self.files.ftp_port = ftp.port  # the URLs chargers are given name the port it bound
        log.info("FTP file server on ftp://%s:%d/ (passive data ports %s%s)", self.settings.host, ftp.port,
                 self.settings.ftp_passive_ports or "any free port",
                 f", announced as {self.settings.ftp_nat_address}" if self.settings.ftp_nat_address else "")

    async def _stop_ftp(self) -> None:
        if self.ftp is not None:
            await self.ftp.stop()
            self.ftp = None

    async def _serve(self, port: int, tls: ssl.SSLContext | None) -> int:
        server = await serve(
            self._handle,
            self.settings.host,
            port,
            ssl=tls,
            open_timeout=self.settings.handshake_timeout,
            subprotocols=[SUBPROTOCOL],
            process_request=self._check_request,
            compression=None,  # ~3x less memory per connection, ~40 us less per call
            max_size=self.settings.max_frame_size,
            ping_interval=self.settings.ping_interval or None,
            ping_timeout=self.settings.ping_timeout,
            # A half-open peer never completes the closing handshake: don't wait longer for it
            # than for a pong, so a dead charger is offline after ping_interval + 2 * ping_timeout.
            close_timeout=min(10.0, self.settings.ping_timeout),
            logger=_websockets_log,
            create_connection=ChargerConnection if self.frames_direct else None,
        )
        self._servers.append(server)
        return next(iter(server.sockets)).getsockname()[1]

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Stop accepting, let calls already received be answered, close every connection with
        1001 (going away), then close the database."""
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        await self.sweeper.stop()
        self.remote_starts.close()
        await self.wallet_guard.stop()
        await self.load.stop()
        await self.files.stop()
        for task in list(self._followups):
            task.cancel()
        if self._servers:
            for server in self._servers:
                server.close(close_connections=False)
            sessions = list(self.sessions.values())
            if sessions:
                drained = asyncio.gather(*(s.drain() for s in sessions))
                try:
                    await asyncio.wait_for(drained, drain_timeout)
                except asyncio.TimeoutError:
                    log.warning("shutting down with calls still unanswered after %.0f s", drain_timeout)
            await asyncio.gather(
                *(s._connection.close(code=1001, reason="central system shutting down") for s in sessions),
                return_exceptions=True,
            )
            await asyncio.gather(*(server.wait_closed() for server in self._servers))
            self._servers = []
        await self._stop_ftp()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        if self.instance is not None and self.store.writer is not None:
            await self.store.end_instance(self.instance.pid, self.instance.host)
            self.instance = None
        await self.store.close()
        log.info("central system stopped")

    async def __aenter__(self) -> CentralSystem:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- changes made by other processes ------------------------------------------------

    async def _watch_database(self) -> None:
        """Poll PRAGMA data_version: it moves only when another connection committed (the CLI
        provisioning chargers, tags or tariffs while we run), never for our own writes."""
        version = await self.store.data_version()
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                current = await self.store.data_version()
                if current != version:
                    version = current
                    await self.reload(current)
            except asyncio.CancelledError:
                raise
            except Exception:  # a locked or busy database now is no reason to stop watching
                log.exception("checking the database for outside changes failed")

    async def reload(self, data_version: int = 0) -> None:
        """Take in what changed in the database behind our back; the HTTP API (or anything that
        provisions through this process's own store) calls this too, since our own writes are
        invisible to the watcher."""
        self.tariffs = await self.store.tariffs()
        await self._sync_registrations()
        self.events.publish(ev.ExternalChange("", data_version))

    async def _sync_registrations(self) -> None:
        """Sessions remember their charger's registration; Authorize, BootNotification and the
        password check read the database each time, so this is the one thing to bring up to date."""
        if not self.sessions:
            return
        stored = {row["id"]: row["registration"] for row in await self.store.chargers()}
        for cp_id, session in list(self.sessions.items()):
            registration = stored.get(cp_id)
            if registration == session.registration:
                continue
            if registration is None:
                # Removed while connected: it is let go, and treated as a new charger if it comes back.
                log.info("%s: removed outside this process; closing its connection", cp_id)
                session.registration, session.closing = None, True
                self._follow_up(session._connection.close(code=1000, reason="removed by the operator"))
            elif registration != RegistrationStatus.accepted:
                session.registration = registration
                log.info("%s: registration now %s (changed outside this process)", cp_id, registration)
            elif session.registration is not None:
                # Accepted while Pending or Rejected: as when approved in the console, the charger
                # learns it by booting again, which it is asked to do now.
                log.info("%s: accepted outside this process; asking it to boot again", cp_id)
                self._follow_up(self._ask_to_boot(cp_id))

    def _follow_up(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._followups.add(task)
        task.add_done_callback(self._followups.discard)

    async def _ask_to_boot(self, cp_id: str) -> None:
        try:
            await self.commands.trigger_message(cp_id, MessageTrigger.boot_notification)
        except CommandError:
            pass  # it boots again after the retry interval anyway

    # -- connections ------------------------------------------------------------------

    async def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        cp_id = charge_point_id(request.path)
        address = _address(connection)
        if len(self._handlers) >= self.settings.max_connections:
            log.warning("refused %s (%s): %d connections already", cp_id or "?", address, len(self._handlers))
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Too many connections\n")
        if not cp_id:
            log.warning("refused %s: no charge point id in the URL path %r", address, request.path)
            return connection.respond(HTTPStatus.NOT_FOUND, "Connect to ws://host:port/<chargePointId>\n")
        if len(cp_id) > MAX_ID_LENGTH:
            log.warning("refused %s: charge point id longer than %d characters", address, MAX_ID_LENGTH)
            return connection.respond(HTTPStatus.BAD_REQUEST, "Charge point id too long\n")
        for name in ("Authorization", "Upgrade"):
            if len(request.headers.get_all(name)) > 1:  # which one counts is not defined: neither
                log.warning("refused %s (%s): %s header given more than once", cp_id, address, name)
                return connection.respond(HTTPStatus.BAD_REQUEST, f"One {name} header, not several\n")
        if request.headers.get("Upgrade") is None:
            return None  # let websockets answer a plain HTTP request
        if SUBPROTOCOL not in _offered_subprotocols(request):
            log.warning("refused %s (%s): no OCPP 1.6 subprotocol offered", cp_id, address)
            return connection.respond(
                HTTPStatus.BAD_REQUEST, "This central system speaks OCPP 1.6J: offer Sec-WebSocket-Protocol: ocpp1.6\n"
            )
        return await self._authenticate(connection, request, cp_id, address)

    async def _authenticate(
        self, connection: ServerConnection, request: Request, cp_id: str, address: str
    ) -> Response | None:
        """Let a charger in at the security profile its connection proves, if that is at least its
        own stored profile and the listener's minimum (never a fallback to a lower one):
        0 plain without credentials, 1 plain with HTTP Basic, 2 TLS with HTTP Basic, 3 TLS with a
        verified client certificate naming the charger. Refused: 403 when this kind of connection
        cannot reach the profile (ws:// for 2, no certificate for 3) or the certificate names someone
        else, 401 when the password is missing or wrong."""
        stored, pending, own_profile = await self.store.login_record(cp_id)
        required = max(own_profile, self.settings.security_profile)
        ssl_object = connection.transport.get_extra_info("ssl_object") if connection.transport else None
        certificate = security.peer_certificate(ssl_object)
        if certificate is not None:
            wrong = certificate.names(cp_id, self.settings.tls_client_org)
            if wrong is not None:  # a certificate for someone else is never downgraded to Basic
                log.warning("refused %s (%s): client certificate refused: %s", cp_id, address, wrong)
                return connection.respond(HTTPStatus.FORBIDDEN, "Client certificate does not match the charge point id\n")
            return self._let_in(connection, cp_id, 3)
        tls = ssl_object is not None
        reachable = 2 if tls else 1
        if required > reachable:
            how = "a client certificate" if required == 3 else "wss:// (TLS)"
            log.warning("refused %s (%s): security profile %d required (charger %d, listener minimum %d); "
                        "this %s connection reaches %d at most: it needs %s",
                        cp_id, address, required, own_profile, self.settings.security_profile,
                        "TLS" if tls else "plain ws://", reachable, how)
            return connection.respond(HTTPStatus.FORBIDDEN, f"Security profile {required} required: connect with {how}\n")
        if stored is None and pending is None and required == 0:
            return self._let_in(connection, cp_id, 0)
        return await self._check_password(connection, request, cp_id, address, stored, pending, reachable)

    async def _check_password(
        self, connection: ServerConnection, request: Request, cp_id: str, address: str,
        stored: str | None, pending: str | None, profile: int,
    ) -> Response | None:
        host = address.rsplit(":", 1)[0]
        delay = self._throttle.attempt(cp_id, host)
        if delay:
            await asyncio.sleep(delay)  # slow down guessing this charger's password
        credentials = security.parse_basic(request.headers.get("Authorization"))
        if credentials is not None and credentials[0] == cp_id.encode():
            if pending is not None and await self._verify(credentials[1], pending):
                # The charger uses the key it accepted by ChangeConfiguration: the old one is retired.
                await self.store.promote_pending_password(cp_id)
                log.info("%s: logged in with its new AuthorizationKey; the old one is no longer accepted", cp_id)
                self._throttle.succeeded(cp_id, host)
                return self._let_in(connection, cp_id, profile)
            if stored is not None and await self._verify(credentials[1], stored):
                self._throttle.succeeded(cp_id, host)
                return self._let_in(connection, cp_id, profile)
        why = ("no credentials" if credentials is None
               else "no password set" if stored is None and pending is None else "wrong credentials")
        log.warning("authentication failed for %s from %s: %s", cp_id, address, why)
        response = connection.respond(HTTPStatus.UNAUTHORIZED, "Authentication required\n")
        response.headers["WWW-Authenticate"] = 'Basic realm="ocpp-console", charset="UTF-8"'
        return response

    async def _verify(self, password: bytes, stored: str) -> bool:
        async with self._hashing:
            return await asyncio.to_thread(security.verify_password, password, stored)

    def _let_in(self, connection: ServerConnection, cp_id: str, profile: int) -> None:
        self._achieved[connection] = profile
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve_charger(connection)
        finally:
            self._handlers.discard(task)

    async def _serve_charger(self, connection: ServerConnection) -> None:
        cp_id = charge_point_id(connection.request.path if connection.request else "")
        address = _address(connection)
        old = self.sessions.get(cp_id)
        session = ChargerSession(cp_id, connection, self, address)
        self.sessions[cp_id] = session
        if old is not None:
            # The newest connection wins: the old one is often half-open after a network change.
            log.warning("%s: new connection from %s replaces the one from %s", cp_id, address, old.address)
            old.closing = True
            asyncio.ensure_future(old._connection.close(code=1000, reason="replaced by a new connection"))
        session.security_profile = self._achieved.pop(connection, 0)
        session.registration = await self.store.set_connected(cp_id, True, address)
        log.info("%s: connected from %s (security profile %d)", cp_id, address, session.security_profile)
        self.events.publish(ev.ChargerConnected(cp_id, address))
        try:
            await session.start()
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("%s: session failed", cp_id)
        finally:
            code = connection.close_code
            reason = connection.close_reason or ""
            if self.sessions.get(cp_id) is session:
                del self.sessions[cp_id]
                if self.store.writer is not None:
                    session.flush_last_seen()
                    await self.store.set_connected(cp_id, False, None)
                self.events.publish(ev.ChargerDisconnected(cp_id, code, reason))
            log.info("%s: disconnected (code %s%s)", cp_id, code, f", {reason}" if reason else "")

    def session(self, charger_id: str) -> ChargerSession | None:
        return self.sessions.get(charger_id)

    def _local_host(self, charger_id: str) -> str | None:
        """The address a connected charger reached us on: one it can reach our file server by too."""
        return self._link_host(charger_id, "local_address")

    def _remote_host(self, charger_id: str) -> str | None:
        """The address a connected charger connects from: its one-time file URLs work from there."""
        return self._link_host(charger_id, "remote_address")

    def _link_host(self, charger_id: str, end: str) -> str | None:
        session = self.sessions.get(charger_id)
        try:
            return str(getattr(session._connection, end)[0]) if session is not None else None
        except (AttributeError, TypeError, IndexError):
            return None

    async def hosted_payload(self, charger_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """An operation's payload with our own file URL where the operator asked for one (files/host.py)."""
        if action not in ("UpdateFirmware", "GetDiagnostics", "GetLog"):
            return payload
        image = await library_image(self.store, payload) if action == "UpdateFirmware" else None
        return self.files.hosted_payload(charger_id, action, payload, image)

    async def operator_ca(self) -> OperatorCA:
        """The CA that signs charger certificates: the site's (ca_cert/ca_key) or the built-in one,
        made on first use beside the database. CAError if it cannot be read or made."""
        if self._ca is None:
            self._ca = await asyncio.to_thread(OperatorCA.load_or_create, self.settings)
        return self._ca


def _address(connection: ServerConnection) -> str:
    try:
        host, port = connection.remote_address[:2]
        return f"{host}:{port}"
    except (TypeError, ValueError):
        return "?"
