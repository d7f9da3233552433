"""Per-connection flow control: a call-rate bucket, and a waitable flag that costs nothing until
somebody waits (one session per charger, so every byte of these is paid 10,000 times)."""

from __future__ import annotations

import asyncio
import time


class Flag:
    """asyncio.Event's set/clear/wait without a deque of waiters until somebody waits: a session
    has two, and an empty deque is ~760 bytes (7.6 MB over 10,000 chargers)."""

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
