"""When a remote action gets no normal answer (offline, timeout, CALLERROR, refused before
sending), the console says so in a sentence naming the charger and the action. Real server,
the ocpp library's ChargePoint over real sockets, the console driven with keys."""

from __future__ import annotations

import asyncio
from typing import Any

from ocpp.exceptions import NotSupportedError
from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action, ResetStatus

from ocpp_console.csms import CentralSystem
from ocpp_console.ui.app import ConsoleApp
from ocpp_console.ui.screens.modals import ActionForm, ConfirmScreen
from tests.clients import TestCharger
from tests.conftest import Console, charger
from tests.test_ui import SIZE, cells, table, until


class RefusesReset(TestCharger):
    @on(Action.reset)
    def _reset(self, **kw: Any) -> Any:
        raise NotSupportedError(description="no resets on this model")


class SlowReset(TestCharger):
    @on(Action.reset)
    async def _reset(self, **kw: Any) -> Any:
        await asyncio.sleep(1.5)
        return call_result.Reset(status=ResetStatus.accepted)


async def _reset_from_the_list(app: ConsoleApp, pilot: Any, charger_id: str) -> Any:
    await pilot.press("2")
    await until(pilot, lambda: charger_id in cells(app))
    rows = table(app)
    rows.move_cursor(row=rows.get_row_index(charger_id))
    await pilot.press("enter", "r")
    await until(pilot, lambda: isinstance(app.screen, ActionForm))
    await pilot.press("ctrl+s")
    return await until(pilot, lambda: next((n for n in app._notifications if n.title.startswith("Reset")), None), 8)


async def test_offline_callerror_and_timeout_are_sentences(settings_factory: Any, console: Console) -> None:
    async with CentralSystem(settings_factory(call_timeout=0.5)) as system:
        await system.store.add_charger("GHOST")
        app = await console(system)
        async with app.run_test(size=SIZE) as pilot:
            note = await _reset_from_the_list(app, pilot, "GHOST")
            assert (note.title, str(note.message), note.severity) == (
                "Reset: offline", "Reset was not sent: GHOST is offline (known but not connected).", "error")
            app.clear_notifications()
            await pilot.press("escape")
            async with charger(system, "CP-ERR", RefusesReset) as cp:
                await cp.boot()
                note = await _reset_from_the_list(app, pilot, "CP-ERR")
                assert str(note.message) == "CP-ERR answered Reset with an error: NotSupported: no resets on this model."
            app.clear_notifications()
            await pilot.press("escape")
            async with charger(system, "CP-SLOW", SlowReset) as cp:
                await cp.boot()
                note = await _reset_from_the_list(app, pilot, "CP-SLOW")
                assert str(note.message) == (
                    "CP-SLOW did not answer Reset within 0.5 s; it may still act on it (see the message log).")


async def test_a_lockout_change_is_confirmed_by_name_and_refused_with_a_reason(csms: CentralSystem, console: Console) -> None:
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, charger(csms, "CP-SEC") as cp:
        await cp.boot()
        await pilot.press("2")
        await until(pilot, lambda: "CP-SEC" in cells(app))
        await pilot.press("enter", "e")
        form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
        await pilot.press(*"SecurityProfile", "tab", "2")
        assert form.values() == {"key": "SecurityProfile", "value": "2"}
        await pilot.press("enter")
        ask = await until(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen)
        assert ask.title_text == "Change SecurityProfile of CP-SEC to 2?"
        assert str(ask.query_one("#yes").label) == "Change SecurityProfile"
        await pilot.press("y")
        note = await until(pilot, lambda: next((n for n in app._notifications if n.title.startswith("Change")), None))
        assert str(note.message) == (
            "Change Configuration: SecurityProfile 2: this central system has no TLS port (--tls-cert, --tls-key), "
            "so the charger could not connect again; nothing was sent.")
        assert [r for r in cp.received if r[0] == "ChangeConfiguration"] == []
