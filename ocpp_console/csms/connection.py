"""A charger's WebSocket connection whose messages go to its session as they are parsed.

`websockets` hands each message to a reader task through a queue (`recv`): a future resolved,
a task woken, per frame. A charger's session handles a message synchronously on arrival
(`ChargerSession._on_frame` parses, logs and queues the call), so the connection calls it
directly from `data_received` instead (issue 17: ~10 us less per call). Fragments are joined
here; `websockets`' protocol object still does all the framing, limits (max_size), pings and the
closing handshake. The session holds the reading (`hold`, `release`) while it has enough calls
waiting, as `websockets`' max_queue did. `serve` uses it; a process with the console in it keeps
`websockets`' reader (CentralSystem's `frames_direct`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode, Frame, Opcode

log = logging.getLogger(__name__)

OnMessage = Callable[[str | bytes], None]

# Messages kept while no session is attached yet (the handshake is done, the session not yet
# started: one database write). A charger waits for answers, so a handful at most.
EARLY_MESSAGES = 100


class ChargerConnection(ServerConnection):
    # In slots, not the instance's dict: websockets' connection has 27 attributes, and ours would
    # take its dict past the 30 keys CPython shares between instances of a class (~1.4 KiB more
    # per charger, measured at 10,000 chargers).
    __slots__ = ("_early", "_failing", "_fragmented", "_fragments", "_on_message", "held")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_message: OnMessage | None = None
        self._early: list[str | bytes] = []
        self._fragments: list[bytes] = []
        self._fragmented: Opcode | None = None
        self._failing: asyncio.Future[None] | None = None  # closing for a reason of ours: nothing more is read
        self.held = False  # reading paused: the session has enough calls waiting

    def hold(self) -> None:
        """Read nothing more until release(): the charger's calls wait in the socket, and then
        in the charger, instead of piling up in the session (websockets' max_queue did this)."""
        if not self.held and self.transport is not None:
            self.held = True
            self.transport.pause_reading()

    def release(self) -> None:
        if self.held:
            self.held = False
            if not self.transport.is_closing():
                self.transport.resume_reading()

    def attach(self, on_message: OnMessage) -> None:
        """Deliver every message from now on, the ones that came before first, in order."""
        self._on_message = on_message
        early, self._early = self._early, []
        for message in early:
            self._deliver(message)

    def process_event(self, event: Any) -> None:
        if self.request is None or not isinstance(event, Frame):
            super().process_event(event)  # the handshake request
            return
        opcode = event.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if event.fin:
                self._message(opcode, event.data)
            else:
                self._fragmented, self._fragments = opcode, [bytes(event.data)]
        elif opcode is Opcode.CONT and self._fragmented is not None:
            self._fragments.append(bytes(event.data))
            if event.fin:
                opcode, data = self._fragmented, b"".join(self._fragments)
                self._fragmented, self._fragments = None, []
                self._message(opcode, data)
        else:
            super().process_event(event)  # pongs; pings and closes the protocol object answers

    def _message(self, opcode: Opcode, data: bytes | bytearray | memoryview) -> None:
        if self._failing is not None:
            return
        if opcode is Opcode.BINARY:
            message: str | bytes = bytes(data)
        else:
            try:
                message = bytes(data).decode() if not isinstance(data, bytes) else data.decode()
            except UnicodeDecodeError as exc:  # as websockets' recv does: close with 1007
                self._fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
                return
        if self._on_message is None:
            if len(self._early) >= EARLY_MESSAGES:
                self._fail(CloseCode.POLICY_VIOLATION, "too many messages before the session started")
                return
            self._early.append(message)
            return
        self._deliver(message)

    def _deliver(self, message: str | bytes) -> None:
        assert self._on_message is not None
        try:
            self._on_message(message)
        except Exception:  # a bug in handling one frame: say so, close the link (1011), keep the service
            log.exception("a frame could not be handled; the connection is closed")
            self._fail(CloseCode.INTERNAL_ERROR, "internal error")

    def _fail(self, code: CloseCode, reason: str) -> None:
        """Close the connection as websockets' recv does on bad data: a close frame, then the
        closing handshake, cut short after close_timeout."""
        if self._failing is None:
            self._failing = asyncio.ensure_future(self._close_for(code, reason))

    async def _close_for(self, code: CloseCode, reason: str) -> None:
        try:
            async with self.send_context():
                self.protocol.fail(code, reason)
        except ConnectionClosed:
            pass
