from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from ocpp_console.api import ApiServer
from ocpp_console.csms import CentralSystem
from ocpp_console.csms import events as ev
from ocpp_console.settings import Settings, load_settings
from ocpp_console.sim import SimulatedCharger
from ocpp_console.site.remote import RemoteSite
from ocpp_console.store import Store
from ocpp_console.ui.app import ConsoleApp
from tests.clients import TestCharger

TIMEOUT = 10.0
REPORT: list[str] = []  # lines for the end of the test run (e.g. what the crash test checked)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in REPORT:
        terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OCPP_CONSOLE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = dict(
            host="127.0.0.1",
            port=0,
            db=tmp_path / "csms.sqlite",
            unknown_chargers="accept",
            heartbeat_interval=60,
            call_timeout=5.0,
        )
        values.update(overrides)
        return load_settings(tmp_path / "no-config.toml", **values)

    return make


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


@pytest.fixture
async def csms(settings: Settings) -> AsyncIterator[CentralSystem]:
    system = CentralSystem(settings)
    await system.start()
    try:
        yield system
    finally:
        await system.stop()


SITE_MODES = ["local", "remote"]
Console = Callable[..., Awaitable[ConsoleApp]]


@pytest.fixture(params=SITE_MODES)
def site_mode(request: pytest.FixtureRequest) -> str:
    """Each screen test runs twice: the console in this process (LocalSite), and attached over the
    HTTP API and event stream (RemoteSite, as `ocpp-console attach`) to the same central system."""
    return str(request.param)


@contextlib.asynccontextmanager
async def consoles(mode: str) -> AsyncIterator[Console]:
    """`await make(system)`: a ConsoleApp on `system` in `mode`; in remote mode an ApiServer is
    started for that system (ephemeral port) and stopped when this block ends."""
    servers: list[ApiServer] = []

    async def make(system: CentralSystem, **options: Any) -> ConsoleApp:
        if mode == "local":
            return ConsoleApp(system, manage_csms=False, **options)
        server = ApiServer(system)
        await server.start()
        servers.append(server)
        return ConsoleApp(RemoteSite(server.url, server.token), **options)  # the app attaches and detaches

    try:
        yield make
    finally:
        for server in reversed(servers):
            await server.stop()


@pytest.fixture
async def console(site_mode: str) -> AsyncIterator[Console]:
    async with consoles(site_mode) as make:
        yield make


def url(csms: CentralSystem, cp_id: str) -> str:
    return f"ws://127.0.0.1:{csms.port}/{cp_id}"


class EventWaiter:
    """Collects the central system's events and waits for one matching a predicate."""

    def __init__(self, csms: CentralSystem) -> None:
        self.events: list[ev.Event] = []
        self._changed = asyncio.Event()
        csms.events.subscribe(self._on)

    def _on(self, event: ev.Event) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[ev.Event], bool], timeout: float = TIMEOUT) -> ev.Event:
        async def loop() -> ev.Event:
            seen = 0
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(loop(), timeout)


@pytest.fixture
def waiter(csms: CentralSystem) -> EventWaiter:
    return EventWaiter(csms)


@contextlib.asynccontextmanager
async def charger(csms: CentralSystem, cp_id: str, cls: type[TestCharger] = TestCharger) -> AsyncIterator[TestCharger]:
    """A charger built on the ocpp library's own ChargePoint, over a real socket."""
    async with connect(url(csms, cp_id), subprotocols=["ocpp1.6"]) as ws:
        cp = cls(cp_id, ws)
        task = asyncio.create_task(cp.start())
        try:
            yield cp
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await task


@contextlib.asynccontextmanager
async def running(chargers: list[SimulatedCharger], stop_timeout: float | None = None) -> AsyncIterator[list[SimulatedCharger]]:
    """Built-in simulated chargers, each running (its own connection) for the block; all stopped
    at its end, and their runs awaited (within `stop_timeout` when given)."""
    tasks = [asyncio.create_task(c.run()) for c in chargers]
    try:
        yield chargers
    finally:
        for c in chargers:
            await c.stop()
        ended = asyncio.gather(*tasks, return_exceptions=True)
        await (asyncio.wait_for(ended, stop_timeout) if stop_timeout is not None else ended)


@contextlib.asynccontextmanager
async def raw_socket(csms: CentralSystem, cp_id: str) -> AsyncIterator[ClientConnection]:
    async with connect(url(csms, cp_id), subprotocols=["ocpp1.6"]) as ws:
        yield ws


async def open_store(path: Path) -> Store:
    return await Store(path).open()


async def eventually(check: Callable[[], Any], timeout: float = TIMEOUT, interval: float = 0.02) -> Any:
    """Await `check()` (sync or async) until it returns something truthy, or fail after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(interval)


@pytest.fixture
async def api(csms: CentralSystem) -> AsyncIterator[ApiServer]:
    """The HTTP API of the `csms` fixture's central system, on the port its settings give (0: any free one)."""
    server = ApiServer(csms)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
