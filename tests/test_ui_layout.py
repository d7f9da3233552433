"""The console's layout at 80x24 and 120x40, on live data: what matters is on screen and never cut.

Assertions are on widget regions and the columns a table lays out, not on pixels: a column is
"visible" when it lies wholly inside the table's width with the table scrolled to its left edge,
and "not cut" when every value in it fits its width.
"""

from __future__ import annotations

from typing import Any

import pytest
from ocpp.v16 import call
from ocpp.v16.enums import ChargePointStatus
from textual.geometry import Region
from textual.widgets import Button, Footer, HelpPanel, TabbedContent
from textual.widgets._footer import FooterKey
from textual.widgets._key_panel import BindingsTable

from ocpp_console.csms import CentralSystem
from ocpp_console.ui.actions import ACTIONS, EXPORT_FORM, PASSWORD_FORM, WALLET_FORM
from ocpp_console.ui.app import ConsoleApp
from ocpp_console.ui.live import format_duration
from ocpp_console.ui.screens.charger_detail import ChargerDetailScreen
from ocpp_console.ui.screens.modals import ActionForm, IdTagForm
from ocpp_console.ui.screens.order_detail import OrderDetailScreen
from ocpp_console.ui.widgets.tables import SyncedTable, cell_width
from tests.clients import TS
from tests.conftest import Console, charger
from tests.test_ui import busy_charger, cells, table, text_of, until

NARROW, WIDE = (80, 24), (120, 40)


def visible_columns(grid: SyncedTable) -> list[str]:
    """The columns wholly inside the table's width, scrolled to the left."""
    room = grid.scrollable_content_region.width
    shown, x = [], 0
    for column in grid.ordered_columns:
        x += column.get_render_width(grid)
        if x <= room:
            shown.append(str(column.key.value))
    return shown


def cut_cells(grid: SyncedTable) -> list[str]:
    """Values wider than their column (DataTable would cut them)."""
    cut = []
    for column in grid.ordered_columns:
        if not column.auto_width:
            continue
        for row_key in grid.rows:
            value = grid.get_cell(row_key, column.key)
            if cell_width(value) > column.content_width:
                cut.append(f"{column.key.value}={value}")
    return cut


def footer_keys(app: ConsoleApp) -> dict[str, Region]:
    """The keys the footer shows wholly (not under the palette key nor past the right edge)."""
    footer = app.screen.query_one(Footer)
    keys = list(footer.query(FooterKey))
    palette = [k for k in keys if k.has_class("-command-palette")]
    right = palette[0].region.x if palette else footer.region.right
    return {k.key: k.region for k in keys if not k.has_class("-command-palette") and k.region.right <= right
            and k.region.width > 0}


async def running_session(cp: Any, power_w: int = 7400) -> int:
    tx = await busy_charger(cp)
    await meter(cp, tx, power_w)
    return tx


async def meter(cp: Any, tx: int, power_w: int, wh: int = 3500) -> None:
    await cp.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{"timestamp": TS, "sampledValue": [
        {"value": str(wh), "unit": "Wh"}, {"value": str(power_w), "unit": "W", "measurand": "Power.Active.Import"},
    ]}]))


async def finished_order(cp: Any, connector: int = 2, stop: str = "2026-11-25T09:05:00Z") -> int:
    tx = (await cp.call(call.StartTransaction(connector_id=connector, id_tag="TAG2", meter_start=0, timestamp=TS))).transaction_id
    await cp.call(call.StopTransaction(transaction_id=tx, meter_stop=12_345, timestamp=stop, reason="EVDisconnected"))
    return tx


# -- columns ---------------------------------------------------------------------------------


async def test_columns_grow_with_their_content(csms: CentralSystem, console: Console) -> None:
    """A power going from 9.9 to 11.0 kW and a balance gaining digits widen their columns: updated
    cells once kept the width of the first value ("11.0 k")."""
    app = await console(csms)
    await csms.store.upsert_id_tag("TAG1", "Accepted", None, None, None)
    async with app.run_test(size=WIDE) as pilot, charger(csms, "CP-GROW") as cp:
        tx = await running_session(cp, 9900)
        await pilot.press("3")
        await until(pilot, lambda: cells(app, "#running").get(str(tx), [""] * 8)[7] == "9.9 kW")
        await meter(cp, tx, 11_000, 4000)
        await until(pilot, lambda: cells(app, "#running")[str(tx)][7] == "11.0 kW")
        await pilot.pause(0.1)
        assert cut_cells(table(app, "#running")) == []
        await pilot.press("4")
        await until(pilot, lambda: "TAG1" in cells(app, "#tags"))
        await csms.store.wallet_movement("TAG1", 123_456_789, "EUR", "topup", "a fleet's deposit")
        app.live.versions["tags"] += 1
        await until(pilot, lambda: cells(app, "#tags")["TAG1"][4] == "1234567.89 EUR")
        await pilot.pause(0.1)
        assert cut_cells(table(app, "#tags")) == []
        assert "balance" in visible_columns(table(app, "#tags"))


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
async def test_chargers_keep_id_state_connectors_and_power(csms: CentralSystem, size: tuple[int, int], console: Console) -> None:
    app = await console(csms)
    async with app.run_test(size=size) as pilot, charger(csms, "CP-NARROW-0001") as cp:
        await cp.boot()
        for connector in (1, 2):
            await cp.status(connector, ChargePointStatus.suspended_evse)
        await pilot.press("2")
        await until(pilot, lambda: "2:SusSE" in cells(app, "#chargers").get("CP-NARROW-0001", ["", "", "", "", "", ""])[5])
        await pilot.pause(0.1)
        shown = visible_columns(table(app, "#chargers"))
        assert {"id", "registration", "state", "connectors", "power"} <= set(shown), shown
        assert cut_cells(table(app, "#chargers")) == []
        if size == WIDE:
            assert "model" in shown  # there is room for the vendor and model


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
async def test_transactions_show_their_cost(csms: CentralSystem, size: tuple[int, int], console: Console) -> None:
    """Running: id, charger, energy, power, cost and state at 80 columns. Orders: the cost at 80,
    and start, stop and reason too at 120 (compact times: MM-DD HH:MM, not the full date)."""
    await csms.store.upsert_id_tag("TAG1", "Accepted", None, None, None)
    app = await console(csms)
    async with app.run_test(size=size) as pilot, charger(csms, "CP-COST") as cp:
        tx = await running_session(cp)
        order = await finished_order(cp)
        await pilot.press("3")
        await until(pilot, lambda: str(tx) in cells(app, "#running"))
        await pilot.pause(0.1)
        running = visible_columns(table(app, "#running"))
        assert {"id", "charger", "tag", "energy", "power", "cost", "state"} <= set(running), running
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: str(order) in cells(app, "#orders"))
        await pilot.pause(0.1)
        orders = visible_columns(table(app, "#orders"))
        assert {"id", "charger", "stop", "energy", "duration", "cost"} <= set(orders), orders
        if size == WIDE:
            assert {"start", "reason"} <= set(orders), orders
        row = cells(app, "#orders")[str(order)]
        assert row[5].endswith("09:05") and len(row[5]) <= len("11-25 09:05"), row  # compact stop time
        assert cut_cells(table(app, "#running")) == [] and cut_cells(table(app, "#orders")) == []


# -- one duration format --------------------------------------------------------------------


def test_one_duration_format() -> None:
    assert [format_duration(s) for s in (0, 45, 60, 754, 3600, 3900, 26 * 3600 + 600, None)] == [
        "0s", "45s", "1m", "12m", "1h 00m", "1h 05m", "26h 10m", "-"]


async def test_orders_and_order_detail_write_durations_alike(csms: CentralSystem, console: Console) -> None:
    app = await console(csms)
    async with app.run_test(size=WIDE) as pilot, charger(csms, "CP-DUR") as cp:
        await cp.boot()
        order = await finished_order(cp)
        await pilot.press("3", "right_square_bracket")
        row = await until(pilot, lambda: cells(app, "#orders").get(str(order)))
        assert row[8] == "1h 05m"  # 08:00 to 09:05
        await pilot.press("enter")
        detail = await until(pilot, lambda: app.screen if isinstance(app.screen, OrderDetailScreen) else None)
        await until(pilot, lambda: "1h 05m" in text_of(detail.query_one("#order")))


# -- footer, tabs and ? ------------------------------------------------------------------------

ESSENTIAL = {  # screen key -> the keys its footer keeps at 80 columns (and at 120, with more)
    "2": {"enter", "o", "a", "slash", "question_mark", "q"},
    "3": {"enter", "x", "c", "left_square_bracket", "right_square_bracket", "slash", "question_mark", "q"},
    "4": {"enter", "n", "b", "t", "slash", "question_mark", "q"},
    "5": {"f", "slash", "question_mark", "q"},
}
WIDE_EXTRA = {"2": {"s", "x", "p", "1", "5"}, "3": {"e", "1", "5"}, "4": {"e", "1", "5"}, "5": {"1", "5"}}


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
async def test_the_footer_keeps_the_essential_keys(csms: CentralSystem, size: tuple[int, int], console: Console) -> None:
    await csms.store.upsert_id_tag("TAG1", "Accepted", None, None, None)
    app = await console(csms)
    async with app.run_test(size=size) as pilot, charger(csms, "CP-FOOT") as cp:
        await running_session(cp)
        for screen, keys in ESSENTIAL.items():
            await pilot.press(screen)
            await until(pilot, lambda: table(app).row_count)
            await pilot.pause(0.1)
            wanted = keys | (WIDE_EXTRA[screen] if size == WIDE else set())
            assert wanted <= set(footer_keys(app)), (screen, sorted(wanted - set(footer_keys(app))))
        await pilot.press("2", "enter")
        await until(pilot, lambda: isinstance(app.screen, ChargerDetailScreen))
        await pilot.pause(0.1)
        detail = {"escape", "o", "s", "x", "left_square_bracket", "right_square_bracket", "question_mark", "q"}
        if size == WIDE:
            detail |= {"r", "g", "e"}
        assert detail <= set(footer_keys(app)), sorted(detail - set(footer_keys(app)))


async def test_tabs_switch_with_keys(csms: CentralSystem, console: Console) -> None:
    """`]` and `[` walk the tabs of Transactions and of a charger's detail, and the shown list takes
    the focus (Enter acts on it)."""
    app = await console(csms)
    async with app.run_test(size=WIDE) as pilot, charger(csms, "CP-TABS") as cp:
        await cp.boot()
        order = await finished_order(cp)
        await pilot.press("3")
        tabs = app.screen.query_one(TabbedContent)
        assert tabs.active == "tab-running"
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: tabs.active == "tab-orders" and app.focused is table(app, "#orders"))
        await until(pilot, lambda: str(order) in cells(app, "#orders"))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, OrderDetailScreen) and app.screen.transaction_id == order)
        await pilot.press("escape", "left_square_bracket")
        await until(pilot, lambda: tabs.active == "tab-running" and app.focused is table(app, "#running"))
        await pilot.press("2", "enter")
        detail = await until(pilot, lambda: app.screen if isinstance(app.screen, ChargerDetailScreen) else None)
        tabs = detail.query_one(TabbedContent)
        seen = [tabs.active]
        for _ in range(7):
            await pilot.press("right_square_bracket")
            await pilot.pause()
            seen.append(tabs.active)
        assert seen == ["tab-power", "tab-energy", "tab-soc", "tab-config", "tab-reservations", "tab-profiles", "tab-received",
                        "tab-power"]
        await pilot.press("left_square_bracket")
        await until(pilot, lambda: tabs.active == "tab-received" and app.focused is detail.query_one("#received"))


async def test_help_lists_the_keys_of_the_current_screen(csms: CentralSystem, console: Console) -> None:
    """`?` shows the keys of the screen in front, and stays on (with that screen's keys) as the
    operator moves between screens, until `?` again."""
    app = await console(csms)

    def help_text() -> str:
        from rich.console import Console

        panels = app.screen.query(HelpPanel)
        if not panels:
            return ""
        console = Console(width=200, color_system=None)
        with console.capture() as capture:
            for bindings in panels.first().query(BindingsTable):
                console.print(bindings.render_bindings_table())
        return capture.get()

    async with app.run_test(size=WIDE) as pilot, charger(csms, "CP-HELP") as cp:
        await cp.boot()
        await pilot.press("2")
        await until(pilot, lambda: cells(app, "#chargers").get("CP-HELP"))
        await pilot.press("question_mark")
        await until(pilot, lambda: "Approve" in help_text() and "Password" in help_text())
        assert "Cursor up" not in help_text()  # the arrows work; the panel is for the screen's keys
        await pilot.press("3")
        await until(pilot, lambda: "Next tab" in help_text() and "Close" in help_text())
        assert "Approve" not in help_text()
        await pilot.press("2", "enter")
        await until(pilot, lambda: isinstance(app.screen, ChargerDetailScreen) and "Get config" in help_text())
        await pilot.press("question_mark")
        await until(pilot, lambda: not app.screen.query(HelpPanel))
        await pilot.press("escape")
        await until(pilot, lambda: app.screen.id != "_default" and not isinstance(app.screen, ChargerDetailScreen))
        await pilot.pause(0.1)
        assert not app.screen.query(HelpPanel)


# -- 80x24: the detail screen and every form -------------------------------------------------


async def test_the_detail_screen_opens_at_its_top(csms: CentralSystem, console: Console) -> None:
    """At 80x24 the identity panels are taller than half the screen: focusing the connectors
    table once scrolled them out of view."""
    app = await console(csms)
    async with app.run_test(size=NARROW) as pilot, charger(csms, "CP-TOP") as cp:
        await running_session(cp)
        await pilot.press("2")
        await until(pilot, lambda: cells(app, "#chargers").get("CP-TOP"))
        await pilot.press("enter")
        detail = await until(pilot, lambda: app.screen if isinstance(app.screen, ChargerDetailScreen) else None)
        await until(pilot, lambda: "TestVendor" in text_of(detail.query_one("#identity")))
        await pilot.pause(0.3)
        assert detail.query_one("#detail").scroll_y == 0
        identity = detail.query_one("#identity").region
        assert identity.y <= 2 and identity.height > 0
        assert app.focused is detail.query_one("#connectors")


FORMS = [pytest.param(lambda spec=spec: ActionForm(spec, "CP-FORM", spec.defaults({})), id=spec.key) for spec in ACTIONS] + [
    pytest.param(lambda: IdTagForm(None), id="id-tag-add"),
    pytest.param(lambda: IdTagForm({"id_tag": "T", "status": "Accepted", "note": "n"}), id="id-tag-edit"),
    pytest.param(lambda: ActionForm(PASSWORD_FORM, "CP-FORM"), id="password"),
    pytest.param(lambda: ActionForm(WALLET_FORM, "TAG", {"kind": "topup"}), id="wallet"),
    pytest.param(lambda: ActionForm(EXPORT_FORM, "orders", {"path": "/tmp/x.csv"}), id="export"),
]


async def test_every_forms_buttons_are_on_screen_at_80x24(csms: CentralSystem, console: Console) -> None:
    """Every form's buttons are in view when it opens at 80x24, and its title: a tall form scrolls
    its fields under buttons that stay put (the id tag form's once lay below the bottom edge, and
    focusing its first field scrolled the title away)."""
    app = await console(csms)
    screen_region = Region(0, 0, *NARROW)
    async with app.run_test(size=NARROW) as pilot:
        await until(pilot, lambda: app.current_mode == "overview" and app.screen.is_current)
        for param in FORMS:
            form = param.values[0]()
            app.push_screen(form)
            await until(pilot, lambda: app.screen is form)
            await pilot.pause()
            for button in form.query(Button):
                region = button.region
                assert region.height > 0 and screen_region.contains_region(region), (param.id, button.id, region)
                # and not under anything else: the button is what the screen shows at its centre
                widget, _ = app.screen.get_widget_at(region.x + region.width // 2, region.y + region.height // 2)
                assert widget is button, (param.id, button.id, widget)
            # and it opens at its top: the title and the first field's label are not scrolled away
            assert form.query_one(".dialog").scroll_y == 0, (param.id, form.query_one(".dialog").scroll_y)
            title = form.query_one(".dialog-title").region
            assert title.height > 0 and screen_region.contains_region(title), (param.id, title)
            form.dismiss(None)
            await until(pilot, lambda: app.screen is not form)
