"""`GET /api/events`: the central system's domain events over a WebSocket, numbered.

Every event the bus publishes gets the next sequence number and goes into a bounded ring (by
count and by size). Each client has only a cursor into that ring and one writer task, so
publishing costs the central system the same whether no client, a fast one or a stuck one is
connected: an append, and a wake-up. Events are encoded to JSON once, when a client first
needs them, and shared by every client; a client gets at most one frame every FRAME_INTERVAL
unless it has a backlog to catch up on.

A client that falls behind has MeterSample and MessageLogged events (superseded by the next
ones anyway) skipped; one that falls off the end of the ring is told to resync and continues
from the newest event; one whose socket accepts nothing for `send_timeout` seconds is dropped.

The wire format (one or more JSON objects per text frame, one per line):
    {"type": "hello", "epoch": E, "seq": S, "oldest": O, ...}        first, always
    {"type": "resync", "epoch": E, "seq": S, "reason": R}             re-read the state, then go on
    {"type": "event", "seq": N, "event": {"type": "StatusChanged", ...}}
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, WSMsgType, web

from ocpp_console.csms import events as ev
from ocpp_console.csms.event_json import to_dict
from ocpp_console.csms.protocol import dumps

if TYPE_CHECKING:
    from ocpp_console.csms.server import CentralSystem

log = logging.getLogger("ocpp_console.api.events")

# What a lagging client may miss: the next sample or frame says as much, and the message log
# keeps every frame (GET /api/messages).
DROPPABLE = (ev.MeterSample, ev.MessageLogged)
RING_EVENTS = 50_000  # ~8 s of a site taking 2,000 MeterValues/s (3 events each), hours of a quiet one
RING_BYTES = 32 * 1024 * 1024
FRAME_BYTES = 256 * 1024  # a batch sent in one WebSocket frame stops growing here
SEND_TIMEOUT = 30.0  # a socket that takes nothing for this long belongs to a dead or stuck client
OTHER_EVENT_BYTES = 200  # what an event other than a message frame takes, roughly, as JSON
# After a frame, a client's writer waits this long before the next, so that the events of a busy
# moment go out together: at 2,000 MeterValues/s a frame per wake-up was ~650 frames a second,
# ~9 events each, and each frame costs a send (a task, a syscall) here and a receive in the client.
# The first event after a quiet spell still goes out at once.
FRAME_INTERVAL = 0.025


class EventStream:
    """The numbered ring of recent events and the clients reading it."""

    def __init__(self, bus: ev.EventBus, ring_events: int = RING_EVENTS, ring_bytes: int = RING_BYTES,
                 send_timeout: float = SEND_TIMEOUT, hello: Callable[[], dict[str, Any]] = dict) -> None:
        self.epoch = uuid.uuid4().hex  # a new one each start: numbers from before a restart mean nothing
        self.seq = 0  # the newest event's number; the first is 1
        self.oldest = 1  # the oldest number still in the ring
        self.send_timeout = send_timeout
        self._capacity = ring_events
        self._ring_bytes = ring_bytes
        self._events: list[ev.Event | None] = [None] * ring_events
        self._texts: list[str | None] = [None] * ring_events
        self._sizes: list[int] = [0] * ring_events
        self._bytes = 0
        self._changed = asyncio.Event()
        self._hello = hello
        self.clients: set[web.WebSocketResponse] = set()
        self.dropped_clients = 0  # dropped for a socket that took nothing (tests, the log)
        self._unsubscribe = bus.subscribe(self.publish)

    # -- the ring ------------------------------------------------------------------------

    def publish(self, event: ev.Event) -> None:
        self.seq += 1
        slot = self.seq % self._capacity
        if self.seq - self.oldest >= self._capacity:  # the ring is full: the slot's event goes
            self._bytes -= self._sizes[slot]
            self.oldest = self.seq - self._capacity + 1
        size = len(event.raw) + OTHER_EVENT_BYTES if isinstance(event, ev.MessageLogged) else OTHER_EVENT_BYTES
        self._events[slot], self._texts[slot], self._sizes[slot] = event, None, size
        self._bytes += size
        while self._bytes > self._ring_bytes and self.oldest < self.seq:
            old = self.oldest % self._capacity
            self._bytes -= self._sizes[old]
            self._events[old], self._texts[old], self._sizes[old] = None, None, 0
            self.oldest += 1
        if self.clients:
            self._changed.set()

    def _entry(self, seq: int) -> tuple[ev.Event, str]:
        slot = seq % self._capacity
        event = self._events[slot]
        assert event is not None
        text = self._texts[slot]
        if text is None:  # encoded once, for every client
            text = self._texts[slot] = dumps({"type": "event", "seq": seq, "event": to_dict(event)})
        return event, text

    def close(self) -> None:
        self._unsubscribe()

    # -- clients -------------------------------------------------------------------------

    def start_at(self, since: int | None, epoch: str | None) -> tuple[int, str | None]:
        """Where a client starts reading, and why it must resync first (None: it need not)."""
        if since is None:
            return self.seq + 1, None
        if epoch is not None and epoch != self.epoch or since > self.seq:
            return self.seq + 1, "restarted"  # numbers from another run of the service
        if since + 1 < self.oldest:
            return self.seq + 1, "too_old"
        return since + 1, None

    def _control(self, kind: str, **fields: Any) -> str:
        return dumps({"type": kind, "epoch": self.epoch, "seq": self.seq, **fields})

    async def serve(self, request: web.Request, since: int | None, epoch: str | None) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30.0, compress=False, max_msg_size=64 * 1024)
        await ws.prepare(request)
        cursor, resync = self.start_at(since, epoch)
        first = [self._control("hello", oldest=self.oldest, **self._hello())]
        if resync:
            first.append(self._control("resync", reason=resync))
        self.clients.add(ws)
        writer = asyncio.create_task(self._write(ws, request, cursor, "\n".join(first)), name="event-stream-writer")
        try:
            async for msg in ws:  # nothing to read but close and pongs (handled by aiohttp)
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.clients.discard(ws)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
        return ws

    async def _write(self, ws: web.WebSocketResponse, request: web.Request, cursor: int, first: str) -> None:
        try:
            await self._send(ws, first)
            while not ws.closed:
                changed = self._changed
                if cursor > self.seq:
                    if changed.is_set():  # everyone has woken for it: the next publish sets a fresh one
                        self._changed = changed = asyncio.Event()
                    await changed.wait()
                    continue
                batch, cursor = self._batch(cursor)
                await self._send(ws, batch)
                if cursor > self.seq:  # caught up: let the next events gather (a backlog goes on at once)
                    await asyncio.sleep(FRAME_INTERVAL)
        except TimeoutError:
            self.dropped_clients += 1
            log.warning("event stream: dropped a client that took nothing for %.0f s", self.send_timeout)
            self.clients.discard(ws)
            if request.transport is not None:  # a close handshake would wait on the same full socket
                request.transport.abort()
        except (ConnectionError, RuntimeError):
            pass  # closed under us; the reader ends too

    def _batch(self, cursor: int) -> tuple[str, int]:
        """The frame for the events from `cursor` on, and the cursor after them."""
        parts: list[str] = []
        size = 0
        if cursor < self.oldest:  # fell off the ring while its socket was full
            parts.append(self._control("resync", reason="lagging"))
            cursor = self.seq + 1
        lagging = self.seq - cursor > self._capacity // 4
        while cursor <= self.seq and size < FRAME_BYTES:
            event, text = self._entry(cursor)
            cursor += 1
            if lagging and isinstance(event, DROPPABLE):
                continue
            parts.append(text)
            size += len(text)
        return "\n".join(parts), cursor

    async def _send(self, ws: web.WebSocketResponse, text: str) -> None:
        if text:
            await asyncio.wait_for(ws.send_str(text), self.send_timeout)

    async def shutdown(self) -> None:
        """Close every client's stream (going away): the service stops."""
        self.close()
        for ws in list(self.clients):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=WSCloseCode.GOING_AWAY, message=b"service stopping"), 2)


def hello_fields(csms: CentralSystem) -> Callable[[], dict[str, Any]]:
    """What a client learns first: which service it reads (its instance) and whose numbers."""
    def fields() -> dict[str, Any]:
        record = csms.instance
        return {"instance": None if record is None else
                {"pid": record.pid, "host": record.host, "started_at": record.started_at}}
    return fields
