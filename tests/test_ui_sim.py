"""The console against simulated chargers over real sockets: what an operator does, end to end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from textual.widgets import Input, OptionList

from ocpp_console.csms import CentralSystem
from ocpp_console.sim import SimulatedCharger
from ocpp_console.ui.actions import ACTIONS
from ocpp_console.ui.screens.modals import ActionForm
from tests.test_ui import SIZE, cells, text_of, until


@contextlib.asynccontextmanager
async def simulated(csms: CentralSystem, charger_id: str, **kwargs: Any) -> AsyncIterator[SimulatedCharger]:
    sim = SimulatedCharger(charger_id, f"ws://127.0.0.1:{csms.port}", connectors=2, sessions="none", speed=600,
                           seed=1, **kwargs)
    task = asyncio.create_task(sim.run())
    try:
        yield sim
    finally:
        await sim.stop()
        await asyncio.wait_for(task, 15)


async def test_remote_start_from_console_starts_a_simulated_transaction(csms: CentralSystem, console: Console) -> None:
    await csms.store.upsert_id_tag("DRIVER-1")
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, simulated(csms, "SIM-UI") as sim:
        await sim.wait_ready(10)
        await pilot.press("2")
        await until(pilot, lambda: "SIM-UI" in cells(app) and "online" in cells(app)["SIM-UI"][2])
        await pilot.press("s")
        form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
        form.query_one("#f-id_tag", Input).value = "DRIVER-1"
        form.query_one("#f-connector_id", Input).value = "2"
        await pilot.press("enter")
        await pilot.press("3")
        row = await until(pilot, lambda: next((r for r in cells(app, "#running").values() if r[1] == "SIM-UI"), None), 15)
        assert row[2] == "2" and row[3] == "DRIVER-1"
        await until(pilot, lambda: any(r[1] == "SIM-UI" and r[7] != "-" for r in cells(app, "#running").values()), 15)
        tx = int(row[0])
        # and the operator stops it again from the Transactions screen, confirming.
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ActionForm))
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.query("#yes"))
        await pilot.press("y")
        order = await until(pilot, lambda: cells(app, "#orders").get(str(tx)), 15)
        assert order[9] == "Remote"


async def test_change_configuration_changes_the_simulators_key(csms: CentralSystem, console: Console) -> None:
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, simulated(csms, "SIM-CFG") as sim:
        await sim.wait_ready(10)
        await pilot.press("2")
        await until(pilot, lambda: "SIM-CFG" in cells(app))
        await pilot.press("enter")
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, ActionForm))
        await pilot.press("enter")
        await until(pilot, lambda: cells(app, "#config").get("MeterValueSampleInterval"))
        assert "AuthorizationKey" not in cells(app, "#config")  # write-only, never listed
        await pilot.press("e")
        form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
        form.query_one("#f-key", Input).value = "MeterValueSampleInterval"
        form.query_one("#f-value", Input).value = "15"
        await pilot.press("enter")
        await until(pilot, lambda: sim.config.get("MeterValueSampleInterval") == "15")
        await until(pilot, lambda: cells(app, "#config")["MeterValueSampleInterval"][1] == "15")
        # A read-only key is refused by the charger, and the operator is told so.
        await pilot.press("e")
        form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
        form.query_one("#f-key", Input).value = "NumberOfConnectors"
        form.query_one("#f-value", Input).value = "5"
        await pilot.press("enter")
        await until(pilot, lambda: any("Rejected" in str(n.message) for n in app._notifications))
        assert sim.config.get("NumberOfConnectors") == "2"


async def test_approving_a_pending_simulated_charger(settings_factory: Any, console: Console) -> None:
    async with CentralSystem(settings_factory(unknown_chargers="pending", boot_retry_interval=60)) as system:
        app = await console(system)
        async with app.run_test(size=SIZE) as pilot, simulated(system, "SIM-NEW") as sim:
            await pilot.press("2")
            await until(pilot, lambda: cells(app).get("SIM-NEW", [None, ""])[1] == "awaiting approval", 10)
            assert not sim.ready
            await pilot.press("a")
            await until(pilot, lambda: cells(app)["SIM-NEW"][1] == "Accepted")
            await sim.wait_ready(10)  # triggered to boot again at once, not after 60 s
            row = await system.store.charger("SIM-NEW")
            assert row is not None and row["registration"] == "Accepted"


async def test_firmware_update_progress_and_new_version_on_the_detail_screen(csms: CentralSystem, console: Console) -> None:
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, simulated(csms, "SIM-FW") as sim:
        await sim.wait_ready(10)
        await pilot.press("2")
        await until(pilot, lambda: "SIM-FW" in cells(app))
        await pilot.press("enter")
        await pilot.press("o")
        await until(pilot, lambda: app.screen.query("#actions"))
        app.screen.query_one("#actions", OptionList).highlighted = [a.key for a in ACTIONS].index("update_firmware")
        await pilot.press("enter")
        form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
        form.query_one("#f-location", Input).value = "https://fw.example/sim-2.1.0.bin"
        await pilot.press("enter")
        await until(pilot, lambda: "Installed ▰▰▰▰" in text_of(app.screen.query_one("#state")), 20)
        await until(pilot, lambda: "2.1.0" in text_of(app.screen.query_one("#identity")), 20)


async def test_help_and_command_palette(csms: CentralSystem, console: Console) -> None:
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, simulated(csms, "SIM-PAL") as sim:
        await sim.wait_ready(10)
        await pilot.press("2")
        await until(pilot, lambda: "SIM-PAL" in cells(app))
        await pilot.press("question_mark")
        await until(pilot, lambda: app.screen.query("HelpPanel"))
        await pilot.press("question_mark")
        await until(pilot, lambda: not app.screen.query("HelpPanel"))
        commands = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Remote Start · SIM-PAL", "Reset · SIM-PAL", "Set Charging Profile · SIM-PAL",
                      "Approve · SIM-PAL", "Go to Transactions"):
            assert title in commands
