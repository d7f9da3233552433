"""One session per connected charger: reads its frames, answers its calls, carries commands."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
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
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result, datatypes
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    CertificateSignedStatus,
    DataTransferStatus,
    GenericStatus,
    Reason,
    RegistrationStatus,
)

from ocpp_console.csms import billing, protocol, transactions
from ocpp_console.csms import events as ev
from ocpp_console.csms.ca import CAError, CSRRejected, Signed
from ocpp_console.csms.errors import (
    CallErrorReceived,
    ChargerOffline,
    CommandError,
    CommandTimeout,
    InvalidAnswer,
    InvalidCommand,
    offline_message,
)
from ocpp_console.csms.metering import normalise
from ocpp_console.secret_keys import mask_frame
from ocpp_console.store.models import Frame, IdTagInfo
from ocpp_console.timeutil import iso, now_iso, parse_charger_time

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


@dataclass(slots=True)
class _LastSeen:
    written: float = 0.0  # monotonic time of the last write
    pending: str | None = None  # a later time not written yet


def _closed_by(flags: tuple[str, ...]) -> str | None:
    return next((f for f in flags if f in transactions.CLOSED_BY), None)


def _id_tag_info(info: IdTagInfo) -> datatypes.IdTagInfo:
    return datatypes.IdTagInfo(status=info.status, expiry_date=info.expiry_date, parent_id_tag=info.parent_id_tag)


class Flag:
    """asyncio.Event's set/clear/wait without its deque of waiters until somebody waits: two per
    charger, and at 10,000 chargers each deque is ~7 MB."""

    __slots__ = ("_set", "_waiter")

    def __init__(self, value: bool = False) -> None:
        self._set = value
        self._waiter: asyncio.Future[None] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        if self._waiter is not None:
            if not self._waiter.done():
                self._waiter.set_result(None)
            self._waiter = None

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._waiter)  # one waiter cancelled leaves the others waiting
        return True


class TokenBucket:
    """`rate` calls per second on average, bursts of up to `capacity`."""

    __slots__ = ("rate", "capacity", "tokens", "stamp")

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate, self.capacity = rate, capacity
        self.tokens = capacity
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def clip(raw: str, limit: int = LOG_CLIP) -> str:
    """The first `limit` characters of a frame, and how long it was."""
    if len(raw) <= limit:
        return raw
    return f"{raw[:limit]}... ({len(raw.encode('utf-8', 'replace'))} bytes)"


class ChargerSession(ChargePoint):
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
        self.csms.events.publish(ev.MessageLogged(self.id, direction, message_type, action, uid, raw, at))

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
            protocol.validate(uid, f"{action}Response", payload)
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
        now = time.monotonic()
        if now - self._seen.written >= TOUCH_EVERY:
            self.store.touch(self.id, now_iso())
            self._seen.written, self._seen.pending = now, None
        else:
            self._seen.pending = now_iso()

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
        await self._connection.send(message)

    # -- commands to the charger ---------------------------------------------------------

    async def send_command(self, payload: Any) -> Any:
        """Send one central-system call and return the charger's answer (a call_result dataclass)."""
        async with self._command_lock:  # one outstanding call per charger (OCPP-J)
            if self._gone.is_set():
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

    # -- charger-initiated messages ---------------------------------------------------------

    @on(Action.boot_notification)
    async def on_boot_notification(self, charge_point_vendor: str, charge_point_model: str, **kw: Any) -> Any:
        info = {
            "vendor": charge_point_vendor,
            "model": charge_point_model,
            "charge_point_serial": kw.get("charge_point_serial_number"),
            "charge_box_serial": kw.get("charge_box_serial_number"),
            "firmware_version": kw.get("firmware_version"),
            "iccid": kw.get("iccid"),
            "imsi": kw.get("imsi"),
            "meter_type": kw.get("meter_type"),
            "meter_serial": kw.get("meter_serial_number"),
        }
        result = await self.store.boot(self.id, info, self.settings.unknown_chargers)
        self.registration = result.registration
        accepted = result.registration == RegistrationStatus.accepted
        interval = self.settings.heartbeat_interval if accepted else self.settings.boot_retry_interval
        log.info("%s: booted (%s %s, firmware %s): %s", self.id, charge_point_vendor, charge_point_model,
                 info["firmware_version"], result.registration)
        self.csms.events.publish(
            ev.ChargerBooted(self.id, result.registration, charge_point_vendor, charge_point_model, info["firmware_version"])
        )
        return call_result.BootNotification(
            current_time=now_iso(), interval=interval, status=RegistrationStatus(result.registration)
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self, **_: Any) -> Any:
        return call_result.Heartbeat(current_time=now_iso())

    @on(Action.status_notification)
    async def on_status_notification(
        self, connector_id: int, error_code: str, status: str, timestamp: str | None = None, **kw: Any
    ) -> Any:
        ts = parse_charger_time(timestamp).value if timestamp else None
        cancelled = await self.store.status(
            self.id, connector_id, status, error_code, kw.get("info"), kw.get("vendor_id"),
            kw.get("vendor_error_code"), ts,
        )
        if cancelled:
            log.info("%s: reservations %s cancelled: connector %d is %s", self.id, cancelled, connector_id, status)
        self.csms.events.publish(ev.StatusChanged(self.id, connector_id, status, error_code, kw.get("info")))
        return call_result.StatusNotification()

    def _min_balance(self) -> int | None:
        """The wallet minimum in minor units, or None when wallets are not checked."""
        if not self.settings.wallet:
            return None
        return billing.to_minor(self.settings.min_balance, self.settings.currency)

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str, **_: Any) -> Any:
        info = await self.store.authorize(id_tag, self.settings.unknown_id_tags, self._min_balance(), self.id)
        if info.status != AuthorizationStatus.accepted:
            self._refused(ev.IdTagRefused(self.id, id_tag, info.status, Action.authorize.value, info.reason))
        return call_result.Authorize(id_tag_info=_id_tag_info(info))

    def _refused(self, event: ev.IdTagRefused) -> None:
        log.info("%s: %s", self.id, event.sentence())
        self.csms.events.publish(event)

    @on(Action.start_transaction)
    async def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, reservation_id: int | None = None, **_: Any
    ) -> Any:
        ts = parse_charger_time(timestamp)
        flags = [f"timestamp_{ts.problem}"] if ts.problem else []
        if connector_id <= 0:
            flags.append("invalid_connector")
        tariff = billing.tariff_for(self.settings, self.id, tariffs=self.csms.tariffs)
        result = await self.store.start_transaction(
            self.id, connector_id, id_tag, meter_start, ts.value, timestamp, reservation_id,
            self.settings.unknown_id_tags, flags,
            tariff=tariff.to_json(), currency=tariff.currency, min_balance=self._min_balance(),
            settle=transactions.settle_for(self.csms, self.id),
        )
        for closed in result.closed:
            log.warning("%s: transaction %d on connector %d had no StopTransaction; superseded by transaction %d",
                        self.id, closed.transaction_id, connector_id, result.transaction_id)
            transactions.publish_closed(self.csms, closed)
        if result.duplicate:
            log.info("%s: repeated StartTransaction answered with transaction %d", self.id, result.transaction_id)
        else:
            info = result.id_tag_info
            self.csms.events.publish(ev.TransactionStarted(self.id, result.transaction_id, connector_id, id_tag, info.status,
                                                           meter_start))
            if info.status != AuthorizationStatus.accepted:
                self._refused(ev.IdTagRefused(self.id, id_tag, info.status, Action.start_transaction.value, info.reason,
                                              result.transaction_id, connector_id))
        return call_result.StartTransaction(
            transaction_id=result.transaction_id, id_tag_info=_id_tag_info(result.id_tag_info)
        )

    @on(Action.stop_transaction)
    async def on_stop_transaction(
        self, meter_stop: int, timestamp: str, transaction_id: int, reason: str | None = None,
        id_tag: str | None = None, **_: Any,
    ) -> Any:
        ts = parse_charger_time(timestamp)
        samples, problems = normalise(self._current_payload.get("transactionData") or ())
        flags = set(problems)
        if ts.problem:
            flags.add(f"stop_timestamp_{ts.problem}")
        if self._current is not None and self._current.out_of_range:
            transaction_id, meter_stop = await self._stop_in_range(transaction_id, meter_stop, flags)
        result = await self.store.stop_transaction(
            self.id, transaction_id, meter_stop, ts.value, reason or Reason.local.value, id_tag,
            self.settings.unknown_id_tags, [(None, s) for s in samples],
            orjson.dumps(self._current_payload).decode(), sorted(flags),
            settle=transactions.settle_for(self.csms, self.id),
        )
        if result.outcome == "unknown":
            log.warning("%s: StopTransaction for unknown transaction %d recorded and flagged", self.id, transaction_id)
        if result.outcome == "late":
            log.warning("%s: late StopTransaction for transaction %d, which we had closed: settled again (%+d minor units)",
                        self.id, transaction_id, result.cost_delta or 0)
            self.csms.events.publish(ev.TransactionSettledAgain(
                self.id, transaction_id, _closed_by(result.flags), result.energy_delta_wh, result.cost_delta,
                result.currency,
            ))
        elif result.outcome != "repeated":
            self.csms.events.publish(
                ev.TransactionStopped(self.id, transaction_id, result.connector_id, result.energy_wh,
                                      reason or Reason.local.value, result.outcome == "stopped",
                                      result.cost_total, result.currency)
            )
        info = _id_tag_info(result.id_tag_info) if result.id_tag_info else None
        return call_result.StopTransaction(id_tag_info=info)

    async def _stop_in_range(self, transaction_id: int, meter_stop: int, flags: set[str]) -> tuple[int, int]:
        """What to record of a stop whose transactionId or meterStop is beyond 32 bits (zeroed
        before validation): no transaction of ours has such an id, so it is kept as an unknown
        stop (id 0, the charger's payload as sent); a meter register that big is no reading, so
        the transaction ends at its start register (no energy billed). Both flagged."""
        assert self._current is not None and self._current.out_of_range  # a handler runs for a call
        out_of_range = self._current.out_of_range
        if "transactionId" in out_of_range:
            flags.add("transaction_id_out_of_range")
            transaction_id = 0
        if "meterStop" in out_of_range:
            flags.add("meter_stop_out_of_range")
            row = await self.store.transaction(transaction_id) if transaction_id else None
            meter_stop = row["meter_start"] if row is not None and row["charger_id"] == self.id else 0
        log.warning("%s: StopTransaction with %s beyond 32 bits recorded as transaction %d, meterStop %d (%s)",
                    self.id, " and ".join(out_of_range), transaction_id, meter_stop, ", ".join(sorted(flags)))
        return transaction_id, meter_stop

    @on(Action.meter_values)
    async def on_meter_values(self, connector_id: int, transaction_id: int | None = None, **_: Any) -> Any:
        samples, _problems = normalise(self._current_payload["meterValue"])
        tx = transaction_id or None  # transactionId 0 means "no transaction"
        batch = await self.store.meter_values(self.id, connector_id, tx, samples)
        if batch.unknown_transaction:
            log.warning("%s: meter values for unknown transaction %s kept and flagged", self.id, tx)
        self.csms.events.publish(ev.MeterSample(self.id, connector_id, tx, batch.latest))
        return call_result.MeterValues()

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id: str, message_id: str | None = None, data: str | None = None, **_: Any) -> Any:
        handler = self.csms.data_transfer_handlers.get(vendor_id)
        status, response_data = DataTransferStatus.unknown_vendor_id, None
        if handler is not None:
            status, response_data = await handler(self.id, message_id, data)
        await self.store.data_transfer(self.id, "in", vendor_id, message_id, data, status, response_data)
        return call_result.DataTransfer(status=status, data=response_data)

    async def _notification(self, action: str, status: str | None) -> None:
        await self.store.notification(self.id, action, status, self._current_payload)
        self.csms.events.publish(ev.NotificationReceived(self.id, action, status))

    @on(Action.diagnostics_status_notification)
    async def on_diagnostics_status(self, status: str, **_: Any) -> Any:
        await self._notification(Action.diagnostics_status_notification, status)
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    async def on_firmware_status(self, status: str, **_: Any) -> Any:
        await self._notification(Action.firmware_status_notification, status)
        return call_result.FirmwareStatusNotification()

    @on(Action.security_event_notification)
    async def on_security_event(self, type: str, **_: Any) -> Any:
        await self._notification(Action.security_event_notification, type)
        return call_result.SecurityEventNotification()

    @on(Action.signed_firmware_status_notification)
    async def on_signed_firmware_status(self, status: str, **_: Any) -> Any:
        await self._notification(Action.signed_firmware_status_notification, status)
        return call_result.SignedFirmwareStatusNotification()

    @on(Action.log_status_notification)
    async def on_log_status(self, status: str, **_: Any) -> Any:
        await self._notification(Action.log_status_notification, status)
        return call_result.LogStatusNotification()

    @on(Action.sign_certificate)
    async def on_sign_certificate(self, csr: str, **_: Any) -> Any:
        """The operator CA signs a good CSR; the chain goes out with CertificateSigned once this
        answer (Accepted) has been sent. A CSR we do not sign is answered Rejected, with the
        reason logged and kept with the notification."""
        try:
            ca = await self.csms.operator_ca()
            signed = await asyncio.to_thread(ca.sign_csr, csr, self.id)
        except (CSRRejected, CAError) as exc:
            reason = exc.reason if isinstance(exc, CSRRejected) else f"the operator CA is not available: {exc}"
            log.warning("%s: SignCertificate rejected: %s", self.id, reason)
            await self.store.notification(
                self.id, Action.sign_certificate, GenericStatus.rejected.value, {**self._current_payload, "reason": reason}
            )
            self.csms.events.publish(ev.NotificationReceived(self.id, Action.sign_certificate, GenericStatus.rejected.value))
            self.csms.events.publish(ev.CertificateRequestRefused(self.id, f"request rejected: {reason}"))
            return call_result.SignCertificate(status=GenericStatus.rejected)
        log.info("%s: SignCertificate accepted; certificate %s signed, valid until %s",
                 self.id, signed.serial_hex, iso(signed.not_after))
        await self._notification(Action.sign_certificate, GenericStatus.accepted.value)
        assert self._current is not None  # a handler runs for a call
        self._after_answer[self._current.unique_id] = partial(self._deliver_certificate, signed)
        return call_result.SignCertificate(status=GenericStatus.accepted)

    async def _deliver_certificate(self, signed: Signed) -> None:
        """CertificateSigned through the operator command path (so it is in the command log);
        the certificate is stored when the charger accepts it."""
        try:
            result = await self.csms.commands.certificate_signed(self.id, signed.chain_pem)
        except CommandError as exc:
            reason = f"the signed certificate {signed.serial_hex} could not be delivered: {exc}"
        else:
            if result.status == CertificateSignedStatus.accepted:
                return
            reason = f"the charger answered {result.status} to the signed certificate {signed.serial_hex}"
        log.warning("%s: %s", self.id, reason)
        self.csms.events.publish(ev.CertificateRequestRefused(self.id, reason))
