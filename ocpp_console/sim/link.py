"""A simulated charger's link to the central system: connection, registration, ordered sending.

Everything the charger sends goes through one Outbox, sent one call at a time by one task
(`_sender`), so messages leave in the order they were made; transaction messages wait there
through disconnections. Nothing is ever sent from inside an `@on` handler (the ocpp library
would wait on itself): handlers change state and queue messages, and `_request` holds every
outgoing call back until the central system's current call has been answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Awaitable, Coroutine
from typing import Any, Callable

from ocpp.exceptions import OCPPError, SecurityError
from ocpp.v16 import ChargePoint, call
from ocpp.v16.enums import Reason, RegistrationStatus
from ocpp.v16.enums import ConfigurationKey as Key
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.headers import build_authorization_basic

from ocpp_console.secret_keys import MaskSecrets
from ocpp_console.sim.clock import SimClock
from ocpp_console.sim.config import Configuration
from ocpp_console.sim.options import SUBPROTOCOL, ChargerOptions, charger_url
from ocpp_console.sim.outbox import NotConnected, Outbox, Outgoing, Skip
from ocpp_console.sim.state import Summary, Transaction

log = logging.getLogger("ocpp_console.sim")
# websockets logs our handshake headers at DEBUG, the Basic header (our password) among them.
logging.getLogger("ocpp_console.sim.websockets").addFilter(MaskSecrets())


def _mask(frame: str | bytes) -> str | bytes:
    # Frames are logged at DEBUG only; one carrying the AuthorizationKey is not logged at all.
    if isinstance(frame, str) and "AuthorizationKey" in frame:
        return "<frame with AuthorizationKey, not logged>"
    return frame


class ChargerLink(ChargePoint):
    """The connection side of a simulated charger: (re)connecting with back-off, registering,
    heartbeats, and the ordered sending of everything queued with `post`."""

    def __init__(
        self,
        charger_id: str,
        url: str,
        *,
        connectors: int,
        speed: float,
        password: str | None,
        seed: int | str | None,
        options: ChargerOptions | None,
    ) -> None:
        self.options = options or ChargerOptions()
        super().__init__(charger_id, None, response_timeout=self.options.call_timeout, logger=log)
        self.url = charger_url(url, charger_id)
        self.clock = SimClock(speed)
        # Seeded per charger, so N chargers from one seed differ but every run repeats.
        self.rng = random.Random(None if seed is None else f"{seed}:{charger_id}")
        self.config = Configuration(connectors, self.options.config)
        if password:
            self.config.set(Key.authorization_key, password)
        self.firmware_version = self.options.firmware_version
        self.registration: RegistrationStatus | None = None
        self.connected = False
        self.summary = Summary(charger_id, firmware_version=self.firmware_version)
        self.outbox = Outbox(self.options.max_queued_meter_values)

        self._ready = asyncio.Event()  # connected and Accepted: the only state in which we send
        self._accepted_once = asyncio.Event()
        self._idle = asyncio.Event()  # not in the middle of answering a central-system call
        self._idle.set()
        self._stopped = asyncio.Event()
        self._reboot = asyncio.Event()
        self._reregister = asyncio.Event()
        self._boot_now = asyncio.Event()
        self._heartbeat_changed = asyncio.Event()
        self._run_done = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running = False
        self._registering = False
        self._closing = False  # stop() under way: no new sessions
        self._rebooting = False  # Reset or firmware reboot under way: no new sessions

    # -- what the charger does on top of the link (ChargerCore) -----------------------------

    def _start_work(self) -> None:
        """Background work that runs for the whole run (e.g. drivers arriving)."""

    async def _finish_sessions(self, reason: Reason) -> None:
        """End running sessions before the run ends or the charger reboots."""

    def _sync_statuses(self) -> None:
        """After (re)connecting: report what the central system may have missed."""

    def _tls_context(self) -> ssl.SSLContext | None:
        """For a wss:// URL: how to verify the central system and which certificate to show."""
        return None

    def _power_on(self) -> None:
        """After a reboot: reset what does not survive one."""
        self._rebooting = False
        self.registration = None

    # -- state seen from outside --------------------------------------------------------

    @property
    def accepted(self) -> bool:
        return self.registration == RegistrationStatus.accepted

    @property
    def ready(self) -> bool:
        """Connected and Accepted: messages go out now."""
        return self._ready.is_set()

    @property
    def speed(self) -> float:
        return self.clock.speed

    # -- background tasks ----------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=f"{self.id}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, NotConnected):
            self.summary.errors += 1
            log.error("%s: %s failed", self.id, task.get_name(), exc_info=exc)

    def _error(self, what: str, exc: BaseException) -> None:
        self.summary.errors += 1
        detail = f"{exc.code}: {exc.description}" if isinstance(exc, OCPPError) else (str(exc) or type(exc).__name__)
        log.warning("%s: %s failed: %s", self.id, what, detail)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake up at once when the run is stopped."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds)):
                await self._stopped.wait()

    # -- the ocpp library's ChargePoint, adapted -----------------------------------------

    async def start(self) -> None:
        """Read frames until the connection closes (the library's loop logs every frame at INFO,
        AuthorizationKey included; this one logs at DEBUG)."""
        while True:
            message = await self._connection.recv()
            log.debug("%s < %s", self.id, _mask(message))
            await self.route_message(message)

    async def route_message(self, raw_msg: str) -> None:
        self._idle.clear()
        try:
            await super().route_message(raw_msg)
        except ConnectionClosed:
            raise
        except Exception:  # a bug of ours must not end the connection
            self.summary.errors += 1
            log.exception("%s: failed to handle %s", self.id, _mask(raw_msg))
        finally:
            self._idle.set()

    async def _send(self, message: str) -> None:
        log.debug("%s > %s", self.id, _mask(message))
        await self._connection.send(message)

    async def _request(self, payload: Any) -> Any:
        """Send one call and return the answer; NotConnected if the connection goes first.
        CALLERRORs raise the matching OCPPError, a missing answer asyncio.TimeoutError."""
        # Our answer to the central system's current call goes out before anything we say.
        await self._idle.wait()
        reader = self._reader
        if reader is None or reader.done():
            self._ready.clear()
            raise NotConnected("not connected")
        sending = asyncio.ensure_future(self.call(payload, suppress=False))
        try:
            await asyncio.wait({sending, reader}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            sending.cancel()
            raise
        if sending.done():
            try:
                return sending.result()
            except ConnectionClosed:
                self._ready.clear()
                raise NotConnected("connection closed") from None
        sending.cancel()
        await asyncio.wait({sending})
        self._ready.clear()
        raise NotConnected("connection lost while waiting for the answer")

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> Summary:
        """Connect, boot and do the charger's work until stop(); reconnect whenever dropped."""
        if self._running:
            raise RuntimeError(f"{self.id} is already running")
        self._running = True
        self._run_done.clear()
        self._spawn(self._sender(), "sender")
        self._start_work()
        need_boot, dropped, failures = True, False, 0
        try:
            while not self._stopped.is_set():
                try:
                    ws = await self._connect()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # refused, unreachable, 401, timeout...
                    failures += 1
                    delay = self._backoff(failures)
                    log.warning("%s: cannot connect to %s (%s); retrying in %.2f s",
                                self.id, self.url, str(exc) or type(exc).__name__, delay)
                    await self._pause(delay)
                    continue
                failures = 0
                if dropped:
                    self.summary.reconnects += 1
                outcome = await self._online(ws, need_boot)
                if outcome == "stop":
                    break
                if outcome == "reboot":
                    dropped = False
                    await self._pause(self.clock.to_real(self.options.reboot_s))
                    self._power_on()
                    need_boot = True
                    continue
                dropped = True
                # An Accepted charger need not boot again after a reconnect.
                need_boot = not self.accepted
                delay = self._backoff(1)
                log.warning("%s: connection lost (close code %s); reconnecting in %.2f s",
                            self.id, ws.close_code, delay)
                await self._pause(delay)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._running = False
            self.summary.undelivered = len(self.outbox.transactional())
            self.summary.firmware_version = self.firmware_version
            self._run_done.set()
        return self.summary

    async def stop(self, reason: Reason = Reason.local) -> Summary:
        """End the run: running sessions end with StopTransaction (`reason`), queued messages
        are delivered (within drain_timeout_s), then the connection closes."""
        self._closing = True
        await self._finish_sessions(reason)
        if self._running and len(self.outbox):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.outbox.wait_empty(), self.options.drain_timeout_s)
        self._stopped.set()
        if self._running:
            await self._run_done.wait()
        return self.summary

    def _backoff(self, failures: int) -> float:
        """Exponential back-off with jitter, so many chargers don't all come back at once."""
        base = min(self.options.reconnect_max_s, self.options.reconnect_initial_s * 2 ** max(0, failures - 1))
        return base * self.rng.uniform(0.5, 1.0)

    async def _connect(self) -> ClientConnection:
        headers: dict[str, str] = {}
        key = self.config.get(Key.authorization_key)
        if key and ":" not in self.id:  # HTTP Basic: user = charger id, password = AuthorizationKey
            headers["Authorization"] = build_authorization_basic(self.id, key)
        ping = float(self.config.get_int(Key.web_socket_ping_interval)) or None
        tls = self._tls_context() if self.url.startswith("wss:") else None
        return await connect(
            self.url,
            **({"ssl": tls} if tls is not None else {}),  # type: ignore[arg-type]
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            additional_headers=headers or None,
            open_timeout=min(self.options.call_timeout, 30.0),
            ping_interval=ping,
            ping_timeout=ping,
            close_timeout=2.0,
            max_size=8 * 1024 * 1024,
            compression=None,
            logger=logging.getLogger("ocpp_console.sim.websockets"),
        )

    async def _online(self, ws: ClientConnection, need_boot: bool) -> str:
        """One connection's life; returns why it ended: 'stop', 'reboot' or 'dropped'."""
        self._connection = ws
        self._response_queue = asyncio.Queue()  # answers of the old connection are void
        self._reader = reader = asyncio.create_task(self.start(), name=f"{self.id}:reader")
        self.connected = True
        self.summary.connected_once = True
        log.info("%s: connected to %s", self.id, self.url)
        life = asyncio.create_task(self._connected_life(need_boot), name=f"{self.id}:life")
        stop_wait = asyncio.create_task(self._stopped.wait())
        reboot_wait = asyncio.create_task(self._reboot.wait())
        try:
            await asyncio.wait({reader, life, stop_wait, reboot_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._ready.clear()
            self.connected = False
            for task in (life, stop_wait, reboot_wait):
                task.cancel()
            await asyncio.wait({life, stop_wait, reboot_wait})
            if not reader.done():
                with contextlib.suppress(Exception):
                    await ws.close()
                reader.cancel()
            await asyncio.wait({reader})
            if not reader.cancelled():
                error = reader.exception()  # retrieved, so asyncio doesn't log it as lost
                if error is not None and not isinstance(error, ConnectionClosed):
                    self._error("reading from the central system", error)
            self._reader = None
            self.outbox.drop_untransactional()
        if not life.cancelled() and life.exception() and not isinstance(life.exception(), NotConnected):
            self._error("connection", life.exception())  # type: ignore[arg-type]
        if self._stopped.is_set():
            return "stop"
        if self._reboot.is_set():
            self._reboot.clear()
            return "reboot"
        return "dropped"

    async def _connected_life(self, need_boot: bool) -> None:
        if need_boot or not self.accepted:
            await self._register()
        while True:
            self._ready.set()
            self._accepted_once.set()
            self.outbox.changed.set()
            self._sync_statuses()
            heartbeat = self._spawn(self._heartbeat_loop(), "heartbeat")
            try:
                await self._reregister.wait()
            finally:
                heartbeat.cancel()
            # The central system does not take us for Accepted (SecurityError, or a
            # triggered BootNotification answered otherwise): register again.
            self._reregister.clear()
            self._ready.clear()
            self.registration = None
            await self._register()

    def request_reboot(self) -> None:
        self._rebooting = True
        self._reboot.set()

    # -- registration and heartbeat --------------------------------------------------------

    def _boot_payload(self) -> call.BootNotification:
        serial = (self.options.serial or f"SIM-{self.id}")[:25]
        return call.BootNotification(
            charge_point_model=self.options.model[:20],
            charge_point_vendor=self.options.vendor[:20],
            charge_point_serial_number=serial,
            charge_box_serial_number=serial,
            firmware_version=self.firmware_version[:50],
            meter_type="ocpp-console sim meter",
            meter_serial_number=f"M-{serial}"[:25],
        )

    async def _register(self) -> None:
        """BootNotification until Accepted, retrying after the interval the central system gave;
        nothing else is sent meanwhile."""
        self._registering = True
        try:
            while True:
                self._boot_now.clear()
                retry = self.options.boot_retry_s
                try:
                    result = await self._request(self._boot_payload())
                except (NotConnected, asyncio.CancelledError):
                    raise
                except Exception as exc:
                    self._error("BootNotification", exc)
                else:
                    if self._apply_boot(result):
                        return
                    retry = result.interval or retry
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(retry):  # not wait_for: 3.11's can drop a cancellation
                        await self._boot_now.wait()
        finally:
            self._registering = False

    def _apply_boot(self, result: Any) -> bool:
        self.registration = RegistrationStatus(result.status)
        if self.registration == RegistrationStatus.accepted:
            self.summary.boots += 1
            if result.interval > 0:
                self.config.set(Key.heartbeat_interval, str(result.interval))
                self._heartbeat_changed.set()
            log.info("%s: BootNotification Accepted (firmware %s, heartbeat every %s s)",
                     self.id, self.firmware_version, self.config.get(Key.heartbeat_interval))
            return True
        log.info("%s: BootNotification answered %s; booting again in %s s",
                 self.id, result.status, result.interval or self.options.boot_retry_s)
        return False

    async def _triggered_boot(self) -> None:
        if self._registering:
            self._boot_now.set()  # the registration loop boots at once instead of waiting
            return
        try:
            result = await self._request(self._boot_payload())
        except NotConnected:
            return
        except Exception as exc:
            self._error("BootNotification", exc)
            return
        if not self._apply_boot(result):
            self._ready.clear()
            self._reregister.set()

    async def _heartbeat_loop(self) -> None:
        while True:
            self._heartbeat_changed.clear()
            interval = self.config.get_int(Key.heartbeat_interval)
            try:
                if interval > 0:
                    async with asyncio.timeout(interval):
                        await self._heartbeat_changed.wait()
                else:
                    await self._heartbeat_changed.wait()  # 0: no heartbeats until changed
                continue  # the interval changed: start timing again
            except TimeoutError:
                pass
            self.post(call.Heartbeat())

    # -- sending ---------------------------------------------------------------------------

    def post(
        self,
        payload: Any = None,
        *,
        build: Callable[[], Any] | None = None,
        action: str | None = None,
        transactional: bool = False,
        tx: Transaction | None = None,
        on_result: Callable[[Any], None] | None = None,
    ) -> asyncio.Future[Any]:
        """Queue a call; the future gets the answer (or NotConnected/the error)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        item = Outgoing(
            action=action or type(payload).__name__,
            build=build or (lambda: payload),
            transactional=transactional,
            tx=tx,
            future=future,
            on_result=on_result,
        )
        if not transactional and not self._ready.is_set():
            item.fail(NotConnected("not connected and Accepted"))
        else:
            self.outbox.put(item)
        return future

    async def _sender(self) -> None:
        """Send the outbox's head, one call at a time, in order; transaction messages are
        removed only once answered (or after TransactionMessageAttempts CALLERRORs)."""
        while True:
            item = self.outbox.head()
            if item is None:
                self.outbox.changed.clear()
                if self.outbox.head() is None:
                    await self.outbox.changed.wait()
                continue
            if not self._ready.is_set():
                self.outbox.drop_untransactional()
                if self.outbox.head() is not None:
                    await self._ready.wait()
                continue
            try:
                payload = item.build()
            except Skip as exc:
                log.warning("%s: %s dropped: %s", self.id, item.action, exc)
                self.outbox.pop(item)
                item.fail(exc)
                continue
            try:
                result = await self._request(payload)
            except NotConnected as exc:
                if not item.transactional:
                    self.outbox.pop(item)
                    item.fail(exc)
                continue  # a transaction message stays first in line until reconnected
            except SecurityError as exc:
                self._error(item.action, exc)
                if not item.transactional:
                    self.outbox.pop(item)
                    item.fail(exc)
                self._ready.clear()
                self._reregister.set()
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._error(item.action, exc)
                item.attempts += 1
                attempts = max(1, self.config.get_int(Key.transaction_message_attempts))
                if item.transactional and item.attempts < attempts:
                    await self._pause(self.config.get_int(Key.transaction_message_retry_interval) * item.attempts)
                    continue
                if item.transactional:
                    log.warning("%s: %s given up after %d attempts", self.id, item.action, item.attempts)
                self.outbox.pop(item)
                item.fail(exc)
                continue
            self.outbox.pop(item)
            item.resolve(result)
            if item.on_result is not None:
                try:
                    item.on_result(result)
                except Exception:
                    self.summary.errors += 1
                    log.exception("%s: handling the answer to %s failed", self.id, item.action)

    def disconnect(self) -> bool:
        """Simulate a network failure: the connection drops without a close handshake, and
        the charger reconnects as it would after any drop."""
        connection = self._connection if self.connected else None
        if connection is None:
            return False
        connection.transport.abort()
        return True

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Until connected and Accepted."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Until everything queued has been answered."""
        await asyncio.wait_for(self.outbox.wait_empty(), timeout)

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        return self._spawn(coro, name)  # type: ignore[arg-type]
