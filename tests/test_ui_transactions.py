"""Stale and stuck transactions in the console: the overview counts them, Transactions marks them,
and the operator closes one (key or command palette) after a confirmation naming it. The real
Textual app, Pilot pressing the keys, a real charger over a real socket."""

from __future__ import annotations

import asyncio

from ocpp.v16 import call
from ocpp.v16.enums import ChargePointStatus
from textual.command import CommandPalette

from ocpp_console.csms import CentralSystem
from ocpp_console.csms import events as ev
from ocpp_console.ui.app import ConsoleApp
from ocpp_console.ui.screens.modals import ConfirmScreen
from tests.conftest import Console, EventWaiter, charger
from tests.test_ui import SIZE, busy_charger, cells, text_of, until


def tile(app: ConsoleApp, tile_id: str) -> str:
    return str(app.screen.query_one(f"#{tile_id} .tile-value").render())


async def same_as_the_store(app: ConsoleApp, csms: CentralSystem, expected: set[int]) -> None:
    """The console's idea of stale (in memory, from events) is the store's (SQL): at once in this
    process, as soon as the stream has brought the events to an attached console."""
    assert {row["id"] for row in await csms.store.stale_transactions()} == expected
    deadline = asyncio.get_running_loop().time() + 2.0
    while {tx.id for tx in app.live.running.values() if app.live.is_stale(tx)} != expected:
        assert asyncio.get_running_loop().time() < deadline, "the console's stale sessions are not the store's"
        await asyncio.sleep(0.02)


async def test_stale_sessions_on_the_overview_and_on_transactions(csms: CentralSystem, waiter: EventWaiter, console: Console) -> None:
    await csms.store.upsert_id_tag("TAG1")
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot:
        async with charger(csms, "CP-ST") as cp:
            tx = await busy_charger(cp)
            await until(pilot, lambda: tile(app, "t-sessions") == "1")
            await pilot.press("3")
            row = await until(pilot, lambda: cells(app, "#running").get(str(tx)))
            assert row[-1] == ""  # running, nothing to mark
            assert row[7] == "7.4 kW"
            await same_as_the_store(app, csms, set())
        await waiter.wait_for(lambda e: isinstance(e, ev.ChargerDisconnected))
        # Its charger went offline: the session is stale, on this screen and on the overview.
        await until(pilot, lambda: cells(app, "#running")[str(tx)][-1] == "stale")
        assert cells(app, "#running")[str(tx)][7] == "-"  # its last power report is no power now
        await same_as_the_store(app, csms, {tx})
        await pilot.press("1")
        await until(pilot, lambda: tile(app, "t-sessions") == "1 · 1 stale")
        async with charger(csms, "CP-ST") as cp:
            await cp.boot()  # it rebooted: still stale until the connector is in session again
            await until(pilot, lambda: tile(app, "t-sessions") == "1 · 1 stale")
            await same_as_the_store(app, csms, {tx})
            await cp.status(1, ChargePointStatus.charging)
            await until(pilot, lambda: tile(app, "t-sessions") == "1")
            await same_as_the_store(app, csms, set())
            await pilot.press("3")
            await until(pilot, lambda: cells(app, "#running")[str(tx)][-1] == "")
            await pilot.press("slash", *"stale", "enter")  # the filter lists the stale ones only
            await until(pilot, lambda: str(tx) not in cells(app, "#running"))
            await cp.status(1, ChargePointStatus.available)  # free, yet no StopTransaction
            await until(pilot, lambda: cells(app, "#running").get(str(tx), [""])[-1] == "stale")
            await same_as_the_store(app, csms, {tx})


async def test_operator_closes_a_stuck_transaction_in_the_console(csms: CentralSystem, console: Console) -> None:
    await csms.store.upsert_id_tag("TAG1")
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, charger(csms, "CP-STUCK") as cp:
        tx = await busy_charger(cp)
        await pilot.press("3")
        await until(pilot, lambda: cells(app, "#running").get(str(tx)))
        # Cancelled: nothing changes.
        await pilot.press("c")
        dialog = await until(pilot, lambda: app.screen if isinstance(app.screen, ConfirmScreen) else None)
        shown = text_of(dialog.query_one(".dialog-help")) + dialog.title_text
        assert f"Transaction {tx}" in shown and "CP-STUCK" in shown and "connector 1" in shown and "TAG1" in shown
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert (await csms.store.transaction(tx))["stopped_at"] is None
        # Confirmed: closed with its last meter value, settled, gone from the running list.
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: str(tx) not in cells(app, "#running"))
        row = await csms.store.transaction(tx)
        assert row["closed_by"] == "closed-by-operator" and row["meter_stop"] == 3500
        order = await until(pilot, lambda: cells(app, "#orders").get(str(tx)))
        assert order[9] == "closed-by-operator"
        # Nothing running is selected now: a clear message, no traceback.
        await pilot.press("c")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, ConfirmScreen)


async def test_close_from_the_command_palette(csms: CentralSystem, console: Console) -> None:
    await csms.store.upsert_id_tag("TAG1")
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, charger(csms, "CP-PAL") as cp:
        tx = await busy_charger(cp)
        await pilot.press("3")
        await until(pilot, lambda: cells(app, "#running").get(str(tx)))
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"close transaction")
        await pilot.pause(0.3)
        await pilot.press("enter")
        dialog = await until(pilot, lambda: app.screen if isinstance(app.screen, ConfirmScreen) else None)
        assert f"Close transaction {tx} on CP-PAL connector 1?" == dialog.title_text
        await pilot.press("y")
        await until(pilot, lambda: str(tx) in cells(app, "#orders"))
        assert (await csms.store.transaction(tx))["closed_by"] == "closed-by-operator"
        # The charger's StopTransaction comes after all: settled again, nothing running.
        await cp.call(call.StopTransaction(meter_stop=4000, timestamp="2026-11-25T09:00:00Z", transaction_id=tx))
        assert (await csms.store.transaction(tx))["meter_stop"] == 4000

