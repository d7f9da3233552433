"""The console's Load screen, in-process and attached (the `console` fixture's two modes), over a
real site: six simulated 22 kW chargers on real sockets under a 40 kW site limit (as in
tests/test_load.py). `6` shows each running session's share; `l` sets a new limit after a
confirmation, and the chargers get their new shares; a paused session shows when its turn comes;
off says how to turn it on; a bad limit is refused in the form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from ocpp.v16 import call
from ocpp.v16.enums import ChargePointStatus
from textual.pilot import Pilot
from textual.widgets import Input

from ocpp_console import provision
from ocpp_console.csms import CentralSystem
from ocpp_console.settings import Settings
from ocpp_console.ui.app import ConsoleApp
from ocpp_console.ui.screens.load import LoadScreen
from ocpp_console.ui.screens.modals import ActionForm, ConfirmScreen
from ocpp_console.ui.widgets.tiles import Tile
from tests.clients import TS
from tests.conftest import Console
from tests.conftest import charger as library_charger
from tests.test_load import CHARGER_W, failsafe, offered, share_profile, site
from tests.test_load_policies import RefusingCharger
from tests.test_sim import big_ev
from tests.test_ui import cells, text_of, until

SIZE = (120, 40)
COLUMN = {"share": 3, "measured": 4, "state": 5, "why": 6, "turn": 7}


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(site_limit_kw=40, load_lease_seconds=10, load_rotation_minutes=0.1,
                            unknown_id_tags="accept")


def rows(app: ConsoleApp) -> dict[str, list[str]]:
    """The load table by charger id (one session per charger here)."""
    return {values[0]: values for values in cells(app, "#load-sessions").values()}


def tile(app: ConsoleApp, tile_id: str) -> str:
    return text_of(app.screen.query_one(f"#{tile_id}", Tile).query_one(".tile-value")).strip()


def form_error(app: ConsoleApp) -> str:
    return text_of(app.screen.query_one("#form-error")).strip()


async def set_limit(pilot: Pilot[Any], app: ConsoleApp, text: str) -> None:
    """`l`, the limit typed into the form, Enter: the confirmation is in front."""
    await pilot.press("l")
    await until(pilot, lambda: isinstance(app.screen, ActionForm))
    box = app.screen.query_one("#f-limit_kw", Input)
    box.value = ""
    await pilot.press(*text, "enter") if text else await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 10)


async def test_the_load_screen_shows_the_shares_and_sets_the_limit(csms: CentralSystem, console: Console) -> None:
    app = await console(csms)
    async with site(csms) as chargers, app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await until(pilot, lambda: isinstance(app.screen, LoadScreen))
        await until(pilot, lambda: tile(app, "l-limit") == "40.0 kW", 10)
        await until(pilot, lambda: all(len(failsafe(c)) == 1 for c in chargers), 15)
        for charger in chargers[:4]:
            charger.plug_in(1, f"DRIVER-{charger.id}", ev=big_ev(CHARGER_W))
        ids = [c.id for c in chargers[:4]]
        # four sessions share 40 kW: 10 kW each, shown on their rows, and the cars draw it
        await until(pilot, lambda: sorted(rows(app)) == ids
                    and all(r[COLUMN["share"]] == "10.0 kW" and r[COLUMN["state"]] == "charging" for r in rows(app).values()), 20)
        await until(pilot, lambda: all(r[COLUMN["measured"]] == "10.0 kW" for r in rows(app).values()), 20)
        assert all(abs(offered(c) - 10_000) < 2 for c in chargers[:4])
        assert tile(app, "l-allocated") == "40.0 kW" and tile(app, "l-sessions") == "4"

        # 12 kW: room for two cars at their 4.14 kW minimum; the confirmation says two wait their turn
        await set_limit(pilot, app, "12")
        message = app.screen.message
        assert "lowered at once" in message and "2 are paused" in message, message
        await pilot.press("y")
        await until(pilot, lambda: sorted(round(offered(c)) for c in chargers[:4]) == [0, 0, 6000, 6000], 15)
        await until(pilot, lambda: tile(app, "l-limit") == "12.0 kW", 5)

        def paused_rows() -> list[list[str]]:
            return [r for r in rows(app).values() if r[COLUMN["state"]] == "paused"]

        await until(pilot, lambda: len(paused_rows()) == 2, 10)
        for row in paused_rows():
            assert row[COLUMN["share"]] == "0.0 kW" and row[COLUMN["why"]] == "waiting for its turn"
            assert row[COLUMN["turn"]].startswith("in "), row  # when its turn comes: "in 5s (14:05)"
        assert "2 paused" in tile(app, "l-sessions")
        assert sorted(r[COLUMN["share"]] for r in rows(app).values() if r[COLUMN["state"]] == "charging") == ["6.0 kW"] * 2

        # off: our shares leave the chargers (the cars go back to their maximum); the screen says how to turn it on
        await set_limit(pilot, app, "")
        assert app.screen.confirm_label == "Turn off"
        assert "nothing keeps the site under" in app.screen.message
        await pilot.press("y")
        await until(pilot, lambda: tile(app, "l-limit") == "off", 10)
        off = app.screen.query_one("#load-off")
        await until(pilot, lambda: off.display, 5)
        assert "--site-limit-kw" in text_of(off) and "Set site limit" in text_of(off)
        assert csms.load.limit_w is None
        await until(pilot, lambda: all(share_profile(c) is None for c in chargers[:4]), 15)
        assert all(r[COLUMN["why"]] == "load management is off" for r in rows(app).values())


async def test_a_bad_limit_is_refused_in_the_form(csms: CentralSystem, console: Console) -> None:
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await until(pilot, lambda: isinstance(app.screen, LoadScreen))
        await until(pilot, lambda: tile(app, "l-limit") == "40.0 kW", 10)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ActionForm))
        box = app.screen.query_one("#f-limit_kw", Input)
        assert box.value == "40"  # the limit in force, to change
        for bad, said in (("lots", "is not a number"), ("-5", "at least 0.1"), ("0", "at least 0.1"),
                          ("nan", "is not a number"), ("inf", "is not a number")):
            box.value = bad
            await pilot.press("enter")
            await until(pilot, lambda: said in form_error(app))
            assert isinstance(app.screen, ActionForm)  # still open, nothing sent
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, LoadScreen))
        assert csms.load.limit_w == 40_000


async def test_the_limit_from_the_palette_and_what_off_says(settings_factory: Callable[..., Settings],
                                                             console: Console) -> None:
    """A site started without a limit: the screen says load management is off and how to turn it
    on; the palette's Set site limit turns it on (after its confirmation)."""
    async with CentralSystem(settings_factory()) as csms:
        app = await console(csms)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("6")
            await until(pilot, lambda: isinstance(app.screen, LoadScreen))
            off = app.screen.query_one("#load-off")
            await until(pilot, lambda: off.display and tile(app, "l-limit") == "off")
            assert not app.screen.query_one("#load-chart").display
            assert "Load management is off" in text_of(off)
            await pilot.press("ctrl+p")
            await pilot.press(*"Set site limit")
            await until(pilot, lambda: "Set site limit" in str(app.screen.query("CommandList").first().get_option_at_index(0).prompt)
                        if app.screen.query("CommandList") and app.screen.query("CommandList").first().option_count else False)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, ActionForm))
            assert app.screen.query_one("#f-limit_kw", Input).value == ""
            await pilot.press(*"25", "enter")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            assert "No session is running" in app.screen.message
            await pilot.press("y")
            await until(pilot, lambda: csms.load.limit_w == 25_000, 10)
            await until(pilot, lambda: isinstance(app.screen, LoadScreen) and tile(app, "l-limit") == "25.0 kW", 10)
            await until(pilot, lambda: not off.display and app.screen.query_one("#load-chart").display)


async def test_a_charger_refusing_profiles_is_marked_on_the_load_screen(csms: CentralSystem, console: Console) -> None:
    """A charger without smart charging: the screen names it as a fixed load, and its session's
    row says fixed and why."""
    await provision.add_charger(csms.store, "OLD-1", max_kw=11)
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, library_charger(csms, "OLD-1", RefusingCharger) as old:
        await old.boot()
        await old.status(1, ChargePointStatus.available)
        await old.call(call.StartTransaction(connector_id=1, id_tag="OLD-DRIVER", meter_start=0, timestamp=TS))
        await old.status(1, ChargePointStatus.charging)
        await pilot.press("6")
        await until(pilot, lambda: isinstance(app.screen, LoadScreen))
        await until(pilot, lambda: "OLD-1" in text_of(app.screen.query_one("#load-fixed")), 10)
        assert "refuse charging profiles" in text_of(app.screen.query_one("#load-fixed"))
        row = await until(pilot, lambda: rows(app).get("OLD-1"), 10)
        await until(pilot, lambda: rows(app)["OLD-1"][COLUMN["state"]] == "fixed", 10)
        assert rows(app)["OLD-1"][COLUMN["share"]] == "11.0 kW" and "refuses profiles" in rows(app)["OLD-1"][COLUMN["why"]]
        assert row[0] == "OLD-1"
