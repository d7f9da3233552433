"""One session per connected charger: reads its frames, answers its calls, carries commands."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from ocpp.exceptions import (
    GenericError,
    InternalError,
    OCPPError,
    ProtocolError,
    SecurityError,
)
from ocpp.messages import CallError as LibCallError
from ocpp.messages import CallResult as LibCallResult
from ocpp.v16 import ChargePoint
from ocpp.v16.enums import (
    Action,
    RegistrationStatus,
)
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from ocpp_console.csms import events as ev
from ocpp_console.csms import protocol
from ocpp_console.csms.charger_calls import ChargerCalls
from ocpp_console.csms.connection import ChargerConnection
from ocpp_console.csms.errors import (
    CallErrorReceived,
    ChargerOffline,
    CommandTimeout,
    InvalidAnswer,
    InvalidCommand,
    offline_message,
)
from ocpp_console.csms.flow import Flag, TokenBucket
from ocpp_console.csms.transport import send_now
from ocpp_console.secret_keys import mask_frame
from ocpp_console.store.models import Frame
from ocpp_console.timeutil import now_iso

if TYPE_CHECKING:
    from ocpp_console.csms.server import CentralSystem
    from ocpp_console.settings import Settings
    from ocpp_console.store import Store

log = logging.getLogger("ocpp_console.session")

# last_seen is kept fresh from every message, but written at most this often per charger.
TOUCH_EVERY = 10.0
# What the message log keeps of a frame that is garbage (unparsable, malformed, binary) or comes
# from a charger not (yet) accepted: enough to see what it was, never megabytes of it.
LOG_CLIP = 1024
# Garbage frames a charger may send in a burst, and then one per GARBAGE_EVERY seconds, before its
# link is closed with 1008 (policy violation): a broken charger is seen in the log, a flood is cut.
GARBAGE_BURST = 20
GARBAGE_EVERY = 5.0
# Calls a charger may have waiting before its connection stops reading (a charger waits for each
# answer, so only one that pipelines gets here), and how few let it read again.
CALLS_WAITING_MAX = 16
CALLS_WAITING_RESUME = 4


@dataclass(slots=True)
class _LastSeen:
    written: float = 0.0  # monotonic time of the last write
    pending: str | None = None  # a later time not written yet


def clip(raw: str, limit: int = LOG_CLIP) -> str:
    """The first `limit` characters of a frame, and how long it was."""
    if len(raw) <= limit:
        return raw
    return f"{raw[:limit]}... ({len(raw.encode('utf-8', 'replace'))} bytes)"


class ChargerSession(ChargerCalls, ChargePoint):
    def __init__(self, charger_id: str, connection: Any, csms: CentralSystem, address: str | None) -> None:
        super().__init__(charger_id, connection, response_timeout=csms.settings.call_timeout, logger=log)
        # Per connection, the ocpp package builds a route map (~4 KB here) and a response queue
        # (~3 KB of deques): the routes are the class's (_routes), the queue is made for the first
        # command. The keys stay, so that every session keeps sharing one key table.
        self.route_map = None
        self._response_queue = None
        self.csms = csms
        self.address = address
        self.registration: str | None = None
        self.security_profile = 0  # what this connection proved at the handshake (0-3)
        # the charger's calls waiting for the worker, and the worker waiting for one (no asyncio.Queue:
        # its three deques are ~2 KB per charger, for what is nearly always zero or one call)
        self._calls: list[protocol.Message] = []
        self._call_waiter: asyncio.Future[None] | None = None
        self._inflight: dict[str, str] = {}  # uniqueId -> action of the charger's calls not yet answered
        self._awaiting: tuple[str, str] | None = None  # (uniqueId, action) of our outstanding command
        self._command_lock = asyncio.Lock()
        self._sent = False
        self._answered = False
        self._call_error: LibCallError | None = None
        self._current: protocol.Message | None = None  # the call being answered, as the charger sent it
        # Work a handler leaves for after its answer has been sent (a call of our own, which must
        # not be made from inside the handler): uniqueId -> coroutine function.
        self._after_answer: dict[str, Callable[[], Awaitable[None]]] = {}
        self._seen = _LastSeen()
        self._gone = Flag()
        self._idle = Flag(True)  # set while no call of the charger's is waiting or being handled
        self._bucket = TokenBucket(self.settings.max_calls_per_second, 4 * self.settings.max_calls_per_second)
        self._garbage = TokenBucket(1 / GARBAGE_EVERY, GARBAGE_BURST)
        self._dropping = False  # closing the link for garbage: read nothing more
        self.closing = False

    # The store and settings are the central system's: read through it rather than kept here, so that
    # a session stays within the 30 attributes CPython shares the key table of (one per charger).
    @property
    def store(self) -> Store:
        return self.csms.store

    @property
    def settings(self) -> Settings:
        return self.csms.settings

    @property
    def _current_payload(self) -> dict[str, Any]:
        return self._current.payload if self._current is not None else {}

    # -- reading frames ---------------------------------------------------------------

    async def start(self) -> None:
        worker = asyncio.create_task(self._work(), name=f"calls-{self.id}")
        try:
            if isinstance(self._connection, ChargerConnection):
                self._connection.attach(self._on_frame)  # frames arrive from data_received
                await self._connection.wait_closed()
            else:
                async for raw in self._connection:
                    self._on_frame(raw)
        finally:
            self._gone.set()  # a command waiting for an answer fails now, not at its timeout
            worker.cancel()

    def _log_frame(self, direction: str, raw: str, message_type: int | None, uid: str | None, action: str | None,
                   clipped: bool = False) -> None:
        raw = mask_frame(raw, action)  # before clipping: a clipped frame is no longer JSON to mask
        if clipped:
            raw = clip(raw)
        at = now_iso()
        self.store.log_frame(Frame(self.id, direction, at, message_type, uid, action, raw))
        events = self.csms.events
        if events.wants(ev.MessageLogged):  # a console or the event stream listens
            events.publish(ev.MessageLogged(self.id, direction, message_type, action, uid, raw, at))

    def _on_frame(self, raw: str | bytes) -> None:
        if self._dropping:
            return
        if isinstance(raw, bytes):
            # OCPP-J uses text frames only; a binary frame is logged and ignored.
            log.warning("%s: binary frame of %d bytes ignored", self.id, len(raw))
            if self._count_garbage():
                self._log_frame("in", f"<binary frame, {len(raw)} bytes, ignored>", None, None, None)
            return
        try:
            msg = protocol.parse_frame(raw)
        except protocol.FrameError as exc:
            if self._count_garbage():
                self._log_frame("in", raw, None, None, None, clipped=True)
                log.warning("%s: bad frame answered %s: %s", self.id, exc.error.code, exc.error.description)
                self._reply_error(exc.unique_id, exc.error)
            return
        except protocol.IgnoredFrame as exc:
            if self._count_garbage():
                self._log_frame("in", raw, None, None, None, clipped=True)
                log.warning("%s: frame ignored (%s)", self.id, exc)
            return
        # not let in yet: it gets a SecurityError or a boot answer, the log a glimpse of it
        clipped = self.registration != RegistrationStatus.accepted

        if msg.message_type == protocol.CALL:
            self._log_frame("in", raw, msg.message_type, msg.unique_id, msg.action, clipped)
            if not self._bucket.take():
                self._reply_error(msg.unique_id, GenericError(description="Too many calls: slow down"))
                return
            if msg.unique_id in self._inflight:
                self._reply_error(
                    msg.unique_id, ProtocolError(description="A call with this UniqueId is still being handled")
                )
                return
            if self.closing:
                return  # shutting down: the charger sends it again after reconnecting
            self._inflight[msg.unique_id] = msg.action or ""
            self._idle.clear()
            self._calls.append(msg)
            if len(self._calls) >= CALLS_WAITING_MAX and isinstance(self._connection, ChargerConnection):
                self._connection.hold()
            waiter = self._call_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            return

        awaiting = self._awaiting
        action = awaiting[1] if awaiting and awaiting[0] == msg.unique_id else None
        self._log_frame("in", raw, msg.message_type, msg.unique_id, action, clipped)
        if action is None:
            log.warning("%s: answer to unknown call %s ignored", self.id, msg.unique_id)
            return
        self._answered = True
        if msg.message_type == protocol.CALLRESULT:
            self._response_queue.put_nowait(LibCallResult(msg.unique_id, msg.payload))
        else:
            self._call_error = LibCallError(msg.unique_id, msg.error_code, msg.error_description, msg.error_details)
            self._response_queue.put_nowait(self._call_error)

    def _count_garbage(self) -> bool:
        """Count a garbage frame against the call rate and the garbage allowance: True if it is
        to be logged and answered, False if it is dropped (and, past the allowance, the link)."""
        if not self._garbage.take():
            self._dropping = True
            log.warning("%s: repeated malformed frames: link closed (1008)", self.id)
            self._log_frame("in", "<repeated malformed frames: link closed with 1008 (policy violation)>",
                            None, None, None)
            asyncio.ensure_future(self._connection.close(code=1008, reason="repeated malformed frames"))
            return False
        return self._bucket.take()

    def _reply_error(self, uid: str, error: OCPPError) -> None:
        meta = (protocol.CALLERROR, uid, self._inflight.get(uid))
        asyncio.ensure_future(self._send_quietly(protocol.call_error(uid, error), meta))

    async def _send_quietly(self, frame: str, meta: tuple[int, str, str | None]) -> None:
        try:
            await self._send(frame, meta)
        except Exception as exc:  # the connection went away meanwhile
            log.debug("%s: could not send: %s", self.id, exc)

    # -- answering calls, one at a time and in order (transaction messages must stay ordered) --

    async def _work(self) -> None:
        while True:
            while not self._calls:
                self._call_waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._call_waiter
                finally:
                    self._call_waiter = None
            msg = self._calls.pop(0)
            if len(self._calls) <= CALLS_WAITING_RESUME and getattr(self._connection, "held", False):
                self._connection.release()
            try:
                frame = await self._answer(msg)
                # our own compact frames: "[3,..." for a CALLRESULT, "[4,..." for a CALLERROR
                kind = protocol.CALLRESULT if frame.startswith("[3,") else protocol.CALLERROR
                await self._send_quietly(frame, (kind, msg.unique_id, msg.action))
                then = self._after_answer.pop(msg.unique_id, None)
                if then is not None and kind == protocol.CALLRESULT:
                    self.csms._follow_up(then())
            finally:
                self._after_answer.pop(msg.unique_id, None)
                self._inflight.pop(msg.unique_id, None)
                if not self._inflight:
                    self._idle.set()

    async def _answer(self, msg: protocol.Message) -> str:
        uid, action = msg.unique_id, msg.action or ""
        try:
            protocol.check_action(uid, action)
            if action != Action.boot_notification and self.registration != RegistrationStatus.accepted:
                raise protocol.FrameError(
                    uid, SecurityError(description=f"{action} before the charger was accepted (BootNotification)")
                )
            tolerated: list[str] | None = [] if self.settings.lenient_enums else None
            payload = msg.payload
            if action == Action.stop_transaction:
                # never a CALLERROR for a StopTransaction (the charger would retry it for ever):
                # integers beyond 32 bits are set aside here and recorded, flagged, by the handler
                msg.out_of_range = protocol.out_of_int32(payload, ("transactionId", "meterStop"))
                payload = {**payload, **dict.fromkeys(msg.out_of_range, 0)}
            protocol.validate(uid, action, payload, tolerated)
            if tolerated:
                log.warning("%s: %s tolerated (lenient_enums): %s", self.id, action, "; ".join(tolerated))
                self._log_frame("in", f"<tolerated in {uid}: {'; '.join(tolerated)}>", None, uid, action)
            handler = self._routes()[action]
        except protocol.FrameError as exc:
            log.warning("%s: %s answered %s: %s", self.id, action, exc.error.code, exc.error.description)
            return protocol.call_error(exc.unique_id, exc.error)
        except KeyError:
            return protocol.call_error(uid, SecurityError(description=f"{action} is not handled"))
        self._current = msg  # as the charger sent it: what a stop keeps
        self._touch()
        try:
            result = await handler(self, **protocol.snake_keys(payload))
            payload = protocol.as_payload(result)
            protocol.validate_answer(uid, action, payload)
        except OCPPError as exc:
            return protocol.call_error(uid, exc)
        except protocol.FrameError as exc:  # our own answer failed its schema: a bug, never sent
            log.error("%s: our %s answer is invalid: %s", self.id, action, exc.error.description)
            return protocol.call_error(uid, InternalError(description="The central system failed to answer"))
        except Exception:
            log.exception("%s: handling %s failed", self.id, action)
            return protocol.call_error(uid, InternalError(description="The central system failed to handle the call"))
        return protocol.call_result(uid, payload)

    @classmethod
    def _routes(cls) -> dict[str, Callable[..., Awaitable[Any]]]:
        """Action -> handler (@on), found once per class rather than once per connection."""
        routes = cls.__dict__.get("_route_table")
        if routes is None:
            routes = {}
            for name in dir(cls):
                action = getattr(getattr(cls, name, None), "_on_action", None)
                if action is not None:
                    routes[action] = getattr(cls, name)
            cls._route_table = routes
        return routes

    async def drain(self) -> None:
        """Stop taking new calls and wait until the ones already received are answered."""
        self.closing = True
        await self._idle.wait()

    def _touch(self) -> None:
        now, at = time.monotonic(), now_iso()
        if now - self._seen.written >= TOUCH_EVERY:
            self.store.touch(self.id, at)
            self._seen.written, self._seen.pending = now, None
        else:
            self._seen.pending = at

    def flush_last_seen(self) -> None:
        """The last frame's time, which the throttle may have held back (a charger that goes leaves it)."""
        if self._seen.pending is not None:
            self.store.touch(self.id, self._seen.pending)
            self._seen.pending = None

    async def _send(self, message: str, meta: tuple[int, str, str | None] | None = None) -> None:
        """Log and send a frame. Our answers come with (type, uniqueId, action) already known; only
        the calls the ocpp library sends for us are read back to learn theirs."""
        if meta is not None:
            message_type, uid, action = meta
        else:
            try:
                frame = orjson.loads(message)
                message_type, uid = frame[0], frame[1]
                action = frame[2] if message_type == protocol.CALL else self._inflight.get(uid)
            except (orjson.JSONDecodeError, IndexError, TypeError):
                message_type = uid = action = None
        self._log_frame("out", message, message_type, uid, action)
        if self._awaiting is not None and uid == self._awaiting[0]:
            self._sent = True
        if not send_now(self._connection, message):
            await self._connection.send(message)

    # -- commands to the charger ---------------------------------------------------------

    async def send_command(self, payload: Any) -> Any:
        """Send one central-system call and return the charger's answer (a call_result dataclass)."""
        async with self._command_lock:  # one outstanding call per charger (OCPP-J)
            if self._gone.is_set() or self._connection.state is not State.OPEN:
                raise ChargerOffline(offline_message(self.id))
            uid = str(uuid.uuid4())
            action = type(payload).__name__
            self._awaiting = (uid, action)
            self._sent = False
            self._answered = False
            self._call_error = None
            if self._response_queue is None:
                self._response_queue = asyncio.Queue()
            calling = asyncio.ensure_future(self.call(payload, suppress=False, unique_id=uid))
            gone = asyncio.ensure_future(self._gone.wait())
            try:
                await asyncio.wait({calling, gone}, return_when=asyncio.FIRST_COMPLETED)
                if not calling.done() and not self._answered:
                    calling.cancel()
                    raise ChargerOffline(f"{self.id} disconnected before answering {action}")
                # Answered, then gone (a charger that resets right after saying Accepted): the answer counts.
                return await calling
            except ChargerOffline:
                raise
            except ConnectionClosed:  # closing already (its disconnect not yet handled): never sent
                raise ChargerOffline(offline_message(self.id)) from None
            except asyncio.TimeoutError:
                raise CommandTimeout(f"{self.id} did not answer {action} within {self._response_timeout:g} s") from None
            except Exception as exc:
                if self._call_error is not None:
                    err = self._call_error
                    raise CallErrorReceived(err.error_code, err.error_description, err.error_details) from None
                if not self._sent:
                    raise InvalidCommand(f"{action}: {getattr(exc, 'description', None) or exc}") from None
                raise InvalidAnswer(f"{self.id} answered {action} with an invalid payload: {exc}") from None
            finally:
                gone.cancel()
                if not calling.done():
                    calling.cancel()
                self._awaiting = None
                # An answer that came too late must not be taken for the next command's.
                while not self._response_queue.empty():
                    self._response_queue.get_nowait()
