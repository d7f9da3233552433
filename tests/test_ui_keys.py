"""Keys the README names, pressed on live data: ctrl+p offers the selected charger's remote actions; q and ctrl+q ask before disconnecting chargers."""

from __future__ import annotations

from typing import Any

import pytest
from textual.command import CommandList, CommandPalette

from ocpp_console.csms import CentralSystem
from ocpp_console.ui.app import ConsoleApp
from ocpp_console.ui.screens.charger_detail import ChargerDetailScreen
from ocpp_console.ui.screens.modals import ActionForm
from tests.conftest import Console, charger, consoles
from tests.test_ui import SIZE, cells, until


@pytest.mark.parametrize("where", ["row", "detail"])
async def test_the_palette_offers_the_selected_chargers_actions(csms: CentralSystem, where: str, console: Console) -> None:
    """Opened over the chargers table (its selected row) or a charger's detail screen, ctrl+p offers
    that charger's remote actions: the palette once looked at itself for a selected charger."""
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, charger(csms, "CP-PALETTE") as cp:
        await cp.boot()
        await pilot.press("2")
        await until(pilot, lambda: cells(app, "#chargers").get("CP-PALETTE"))
        if where == "detail":
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, ChargerDetailScreen))
        await pilot.press("ctrl+p")
        palette = await until(pilot, lambda: app.screen if isinstance(app.screen, CommandPalette) else None)
        await pilot.press(*"unlock connector")
        options = palette.query_one(CommandList)
        await until(pilot, lambda: any("Unlock Connector · CP-PALETTE" in str(options.get_option_at_index(i).prompt)
                                       for i in range(options.option_count)))
        await pilot.press("enter")
        form = await until(pilot, lambda: app.screen if isinstance(app.screen, ActionForm) else None)
        assert form.spec.title == "Unlock Connector" and form.charger_id == "CP-PALETTE"


# In-process only by nature: quitting stops the central system this console owns (attached: below).
@pytest.mark.parametrize("key", ["q", "ctrl+q"])
async def test_quitting_with_chargers_connected_asks_first(settings_factory: Any, key: str) -> None:
    """`q` and Textual's own ctrl+q both ask before they stop the central system under connected
    chargers; cancelled, everything runs on; confirmed, the console exits."""
    from ocpp_console.ui.screens.modals import ConfirmScreen

    system = CentralSystem(settings_factory())
    app = ConsoleApp(system)  # the app starts and stops it
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: system.port)
        async with charger(system, "CP-QUIT") as cp:
            await cp.boot()
            await until(pilot, lambda: app.live.chargers.get("CP-QUIT") and app.live.chargers["CP-QUIT"].connected)
            await pilot.press(key)
            dialog = await until(pilot, lambda: app.screen if isinstance(app.screen, ConfirmScreen) else None)
            assert "1 charger(s) are connected" in dialog.message
            await pilot.press("n")
            await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
            assert app.is_running and "CP-QUIT" in system.sessions
            await pilot.press(key)
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: not app.is_running)


@pytest.mark.parametrize("key", ["q", "ctrl+q"])
async def test_an_attached_console_quits_at_once_and_leaves_the_chargers_connected(
    csms: CentralSystem, key: str,
) -> None:
    async with consoles("remote") as make, charger(csms, "CP-STAYS") as cp:
        await cp.boot()
        app = await make(csms)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.live.chargers.get("CP-STAYS") and app.live.chargers["CP-STAYS"].connected)
            await pilot.press(key)  # nothing to confirm: the service keeps its chargers
            await until(pilot, lambda: not app.is_running)
        assert "CP-STAYS" in csms.sessions and not csms.sessions["CP-STAYS"].closing


async def test_remote_start_defaults_to_a_free_connector(csms: CentralSystem, console: Console) -> None:
    """`s` on a charger whose connector 1 is busy and 2 free offers connector 2, from the chargers
    table and from the detail screen (whose context once named the busy connector)."""
    from ocpp.v16.enums import ChargePointStatus
    from textual.widgets import Input

    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, charger(csms, "CP-FREE") as cp:
        await cp.boot()
        await cp.status(1, ChargePointStatus.charging)
        await cp.status(2, ChargePointStatus.available)
        await pilot.press("2")
        await until(pilot, lambda: "2:Avail" in " ".join(cells(app, "#chargers").get("CP-FREE", [])))
        for opened_from in ("row", "detail"):
            if opened_from == "detail":
                await pilot.press("enter")
                await until(pilot, lambda: isinstance(app.screen, ChargerDetailScreen))
            await pilot.press("s")
            form = await until(pilot, lambda: app.screen if isinstance(app.screen, ActionForm) else None)
            assert form.query_one("#f-connector_id", Input).value == "2", opened_from
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, ActionForm))
