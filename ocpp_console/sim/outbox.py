"""The charger's outgoing messages, in order.

Transaction messages (StartTransaction, StopTransaction, MeterValues of a transaction) must
reach the central system even after the charger was offline, in order (OCPP 1.6 §4.7): they
stay in this queue across reconnects and leave it only once answered. Everything else is
only worth sending while connected and is dropped when the connection is lost.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ocpp.v16.enums import Action

from ocpp_console.sim.state import Transaction


class NotConnected(Exception):
    """The message could not be sent: no connection, or not (yet) Accepted by the central system."""


class Skip(Exception):
    """A queued message that can no longer be built (its transaction never got an id)."""


@dataclass(slots=True, eq=False)
class Outgoing:
    action: str
    build: Callable[[], Any]  # the call payload, built when sent so a late transactionId is used
    transactional: bool = False
    tx: Transaction | None = None
    future: asyncio.Future[Any] | None = None
    on_result: Callable[[Any], None] | None = None
    attempts: int = 0
    done: bool = field(default=False)

    def resolve(self, result: Any) -> None:
        self.done = True
        if self.future is not None and not self.future.done():
            self.future.set_result(result)

    def fail(self, exc: BaseException) -> None:
        self.done = True
        if self.future is not None and not self.future.done():
            self.future.set_exception(exc)
            self.future.exception()  # nobody may be waiting: don't warn "never retrieved"


class Outbox:
    def __init__(self, max_meter_values: int = 10_000) -> None:
        self._items: deque[Outgoing] = deque()
        self.changed = asyncio.Event()  # the sender's wake-up call (it alone clears it)
        self._empty_waiters: list[asyncio.Future[None]] = []
        # A long outage fills the queue with MeterValues; past this many the oldest go
        # (never a StartTransaction or StopTransaction).
        self.max_meter_values = max_meter_values
        self._meter_values = 0

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Outgoing]:
        return iter(list(self._items))

    def head(self) -> Outgoing | None:
        return self._items[0] if self._items else None

    def put(self, item: Outgoing) -> None:
        self._items.append(item)
        if item.action == Action.meter_values and item.transactional:
            self._meter_values += 1
            if self._meter_values > self.max_meter_values:
                self._drop_oldest_meter_values()
        self._notify()

    def _drop_oldest_meter_values(self) -> None:
        for index, item in enumerate(self._items):
            # Never the head: it may be on the wire right now.
            if index > 0 and item.action == Action.meter_values and item.transactional:
                del self._items[index]
                self._meter_values -= 1
                item.fail(Skip("dropped: too many queued meter values"))
                return

    def pop(self, item: Outgoing) -> None:
        if self._items and self._items[0] is item:
            self._items.popleft()
        else:
            try:
                self._items.remove(item)
            except ValueError:
                return
        if item.action == Action.meter_values and item.transactional:
            self._meter_values -= 1
        self._notify()

    def drop_untransactional(self) -> int:
        """Connection lost: forget what only mattered while connected."""
        dropped = [item for item in self._items if not item.transactional]
        for item in dropped:
            self._items.remove(item)
            item.fail(NotConnected("connection lost before the message was sent"))
        if dropped:
            self._notify()
        return len(dropped)

    def _notify(self) -> None:
        self.changed.set()
        if not self._items:
            for waiter in self._empty_waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._empty_waiters.clear()

    async def wait_empty(self) -> None:
        """Until everything queued has been answered (or dropped)."""
        if not self._items:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._empty_waiters.append(waiter)
        await waiter

    def transactional(self) -> list[Outgoing]:
        return [item for item in self._items if item.transactional]
