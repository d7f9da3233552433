"""The README's "The console" section, key by key: each pressed on live data, its effect checked.

One site per test (a real central system, chargers from the `ocpp` library over real sockets),
driven by Pilot at 120x40. `test_the_readme_documents_every_footer_key` keeps README and code
in step: a key shown in a footer and missing from the README fails it.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call
from ocpp.v16.enums import ChargePointStatus
from textual.command import CommandList, CommandPalette
from textual.widgets import HelpPanel, Input

from ocpp_console.csms import CentralSystem
from ocpp_console.ui.app import ConsoleApp
from ocpp_console.ui.screens.charger_detail import ChargerDetailScreen
from ocpp_console.ui.screens.chargers import ChargersScreen
from ocpp_console.ui.screens.id_tags import IdTagsScreen
from ocpp_console.ui.screens.load import LoadScreen
from ocpp_console.ui.screens.message_log import MessageLogScreen
from ocpp_console.ui.screens.modals import ActionForm, ActionPicker, ConfirmScreen, IdTagForm
from ocpp_console.ui.screens.order_detail import OrderDetailScreen
from ocpp_console.ui.screens.overview import OverviewScreen
from ocpp_console.ui.screens.transactions import TransactionsScreen
from tests.clients import TS
from tests.conftest import Console, charger, eventually
from tests.test_ui import busy_charger, cells, table, until

SIZE = (120, 40)
README = Path(__file__).resolve().parent.parent / "README.md"


def console_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("## The console"):text.index("## The simulator")]


def form(app: ConsoleApp, kind: type = ActionForm) -> Any:
    return app.screen if isinstance(app.screen, kind) else None


async def password_hash(csms: CentralSystem, charger_id: str) -> str | None:
    row = await csms.store.charger(charger_id)
    return row["password_hash"] if row else None


async def type_into(pilot: Any, widget: Input, text: str) -> None:
    widget.focus()
    widget.value = ""
    await pilot.press(*text)


# -- the README and the footers agree ------------------------------------------------------------

SCREENS = [OverviewScreen, ChargersScreen, TransactionsScreen, IdTagsScreen, MessageLogScreen, LoadScreen,
           ChargerDetailScreen, OrderDetailScreen]


def test_the_readme_documents_every_footer_key() -> None:
    """Every key a footer shows (and the app's own) is written in the console section as `key`."""
    section = console_section()
    documented = set(re.findall(r"`([^`]+)`", section))
    documented |= {part for item in documented for part in item.split(" / ")}
    missing = []
    for screen in [ConsoleApp, *SCREENS]:
        for binding in screen.BINDINGS:
            if not binding.show:
                continue
            shown = binding.key_display or {"slash": "/", "escape": "Esc", "enter": "Enter", "question_mark": "?",
                                            "left_square_bracket": "[", "right_square_bracket": "]"}.get(binding.key, binding.key)
            if shown not in documented:
                missing.append(f"{screen.__name__}: {shown} ({binding.description})")
    assert missing == []


# -- 1-6, ? and q ------------------------------------------------------------------------------


async def test_number_keys_switch_screens_and_question_mark_shows_their_keys(csms: CentralSystem, console: Console) -> None:
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot:
        for key, screen in (("2", ChargersScreen), ("3", TransactionsScreen), ("4", IdTagsScreen),
                            ("5", MessageLogScreen), ("6", LoadScreen), ("1", OverviewScreen)):
            await pilot.press(key)
            await until(pilot, lambda: isinstance(app.screen, screen))
        await pilot.press("question_mark")
        await until(pilot, lambda: app.screen.query(HelpPanel))
        await pilot.press("question_mark")
        await until(pilot, lambda: not app.screen.query(HelpPanel))


async def test_q_quits(csms: CentralSystem, console: Console) -> None:
    """With no charger connected, `q` quits at once (with chargers connected it asks first:
    tests/test_ui_keys.py)."""
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running)


# -- 2: Chargers, and a charger's detail ----------------------------------------------------------


async def test_chargers_keys(settings_factory: Any, console: Console) -> None:
    """`a` approves a pending charger, `x` rejects one (after a confirmation), `Enter` opens the
    detail, `o` the remote actions, `s` Remote Start (sent), `p` the password (stored)."""
    async with CentralSystem(settings_factory(unknown_chargers="pending")) as csms:
        await csms.store.upsert_id_tag("TAG1", "Accepted", None, None, None)
        app = await console(csms)
        async with (app.run_test(size=SIZE) as pilot, charger(csms, "CP-A") as cp_a, charger(csms, "CP-B") as cp_b):
            await cp_a.boot()
            await cp_b.boot()
            await pilot.press("2")
            await until(pilot, lambda: {"CP-A", "CP-B"} <= set(cells(app, "#chargers")))
            grid = table(app, "#chargers")

            async def select(charger_id: str) -> None:
                grid.move_cursor(row=grid.get_row_index(charger_id))
                await until(pilot, lambda: app.screen.selected == charger_id)

            await select("CP-A")
            await pilot.press("a")
            await until(pilot, lambda: cells(app, "#chargers")["CP-A"][1] == "Accepted")
            assert (await csms.store.charger("CP-A"))["registration"] == "Accepted"

            await select("CP-B")
            await pilot.press("x")
            await until(pilot, lambda: form(app, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: cells(app, "#chargers")["CP-B"][1] == "Rejected")
            assert (await csms.store.charger("CP-B"))["registration"] == "Rejected"

            await select("CP-A")
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, ChargerDetailScreen) and app.screen.charger_id == "CP-A")
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, ChargersScreen))

            await pilot.press("o")
            await until(pilot, lambda: form(app, ActionPicker))
            await pilot.press("enter")  # the first action: Remote Start
            start = await until(pilot, lambda: form(app))
            assert start.spec.key == "remote_start" and start.charger_id == "CP-A"
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, ChargersScreen))

            await pilot.press("s")
            start = await until(pilot, lambda: form(app))
            await type_into(pilot, start.query_one("#f-id_tag", Input), "TAG1")
            await pilot.press("enter")
            await asyncio.wait_for(cp_a.got_call.wait(), 5)
            assert cp_a.received[-1][0] == "RemoteStartTransaction" and cp_a.received[-1][1]["id_tag"] == "TAG1"

            await pilot.press("p")
            password = await until(pilot, lambda: form(app))
            await type_into(pilot, password.query_one("#f-password", Input), "a-long-enough-secret")
            await pilot.press("enter")
            await eventually(lambda: password_hash(csms, "CP-A"))


async def test_charger_detail_keys(csms: CentralSystem, console: Console) -> None:
    """On a charger's detail: `o` actions, `s` Remote Start, `x` Remote Stop of its transaction,
    `r` Reset, `g` Get Configuration (sent: its keys fill the configuration tab), `e` edits the
    selected key, `[`/`]` switch tabs (tests/test_ui_layout.py), Esc goes back."""
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, charger(csms, "CP-D") as cp:
        tx = await busy_charger(cp)
        await pilot.press("2")
        await until(pilot, lambda: cells(app, "#chargers").get("CP-D"))
        await pilot.press("enter")
        detail = await until(pilot, lambda: app.screen if isinstance(app.screen, ChargerDetailScreen) else None)
        await until(pilot, lambda: detail.row is not None)

        await pilot.press("o")
        await until(pilot, lambda: form(app, ActionPicker))
        await pilot.press("escape")
        for key, action in (("s", "remote_start"), ("x", "remote_stop"), ("r", "reset")):
            await pilot.press(key)
            opened = await until(pilot, lambda: form(app))
            assert opened.spec.key == action and opened.charger_id == "CP-D"
            if action == "remote_stop":
                assert opened.query_one("#f-transaction_id", Input).value == str(tx)
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is detail)

        await pilot.press("g")
        opened = await until(pilot, lambda: form(app))
        assert opened.spec.key == "get_config"
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is detail)
        await until(pilot, lambda: "HeartbeatInterval" in cells(app, "#config"))
        keys = cells(app, "#config")
        await pilot.press("e")
        opened = await until(pilot, lambda: form(app))
        assert opened.spec.key == "change_config"
        assert opened.query_one("#f-key", Input).value in keys
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is detail)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ChargersScreen))


# -- 3: Transactions --------------------------------------------------------------------------


async def test_transactions_keys(csms: CentralSystem, tmp_path: Path, console: Console) -> None:
    """`Enter` opens the order, `x` sends RemoteStopTransaction for it, `c` closes a stuck one
    (after a confirmation), `e` exports the orders as CSV."""
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, charger(csms, "CP-T") as cp:
        tx = await busy_charger(cp)
        await pilot.press("3")
        await until(pilot, lambda: str(tx) in cells(app, "#running"))

        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, OrderDetailScreen) and app.screen.transaction_id == tx)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, TransactionsScreen))

        await pilot.press("x")
        stop = await until(pilot, lambda: form(app))
        assert stop.spec.key == "remote_stop" and stop.query_one("#f-transaction_id", Input).value == str(tx)
        await pilot.press("enter")
        await until(pilot, lambda: form(app, ConfirmScreen))  # a car is charging there
        await pilot.press("y")
        await asyncio.wait_for(cp.got_call.wait(), 5)
        assert cp.received[-1] == ("RemoteStopTransaction", {"transaction_id": tx})

        await pilot.press("c")
        await until(pilot, lambda: form(app, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: str(tx) not in cells(app, "#running"))
        assert (await csms.store.transaction(tx))["stopped_at"] is not None

        out = tmp_path / "orders.csv"
        await pilot.press("e")
        export = await until(pilot, lambda: form(app))
        await type_into(pilot, export.query_one("#f-path", Input), str(out))
        await pilot.press("enter")
        await until(pilot, out.exists)
        assert f"\n{tx}," in out.read_text() or f'\n"{tx}",' in out.read_text()


# -- 4: Id tags ---------------------------------------------------------------------------------


async def test_id_tags_keys(csms: CentralSystem, tmp_path: Path, console: Console) -> None:
    """`n` adds, `Enter` edits, `b` blocks and unblocks, `t` tops the wallet up, `e` exports the
    ledger."""
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await until(pilot, lambda: isinstance(app.screen, IdTagsScreen))
        await pilot.press("n")
        add = await until(pilot, lambda: form(app, IdTagForm))
        await pilot.press(*"NEWTAG")
        await pilot.press("enter")
        await until(pilot, lambda: "NEWTAG" in cells(app, "#tags"))
        assert (await csms.store.id_tag("NEWTAG"))["status"] == "Accepted"
        assert add is not None

        await pilot.press("enter")
        edit = await until(pilot, lambda: form(app, IdTagForm))
        await type_into(pilot, edit.query_one("#note", Input), "fleet van 7")
        await pilot.press("enter")
        await until(pilot, lambda: cells(app, "#tags")["NEWTAG"][-1] == "fleet van 7")
        assert (await csms.store.id_tag("NEWTAG"))["note"] == "fleet van 7"

        await pilot.press("b")
        await until(pilot, lambda: cells(app, "#tags")["NEWTAG"][1] == "Blocked")
        assert (await csms.store.id_tag("NEWTAG"))["status"] == "Blocked"
        await pilot.press("b")
        await until(pilot, lambda: cells(app, "#tags")["NEWTAG"][1] == "Accepted")

        await pilot.press("t")
        topup = await until(pilot, lambda: form(app))
        await type_into(pilot, topup.query_one("#f-amount", Input), "25")
        await type_into(pilot, topup.query_one("#f-reason", Input), "cash")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, IdTagsScreen) and cells(app, "#tags")["NEWTAG"][4] == "25.00 EUR")

        out = tmp_path / "ledger.csv"
        await pilot.press("e")
        export = await until(pilot, lambda: form(app))
        await type_into(pilot, export.query_one("#f-path", Input), str(out))
        await pilot.press("enter")
        await until(pilot, out.exists)
        assert "NEWTAG" in out.read_text()


# -- 5: Message log -------------------------------------------------------------------------------


async def test_f_pauses_following_the_log(csms: CentralSystem, console: Console) -> None:
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, charger(csms, "CP-LOG") as cp:
        await cp.boot()
        await pilot.press("5")
        frames = table(app, "#frames")
        await until(pilot, lambda: frames.row_count >= 2 and frames.cursor_row == frames.row_count - 1)
        await pilot.press("f")
        assert app.screen.follow is False and "paused" in app.screen.sub_title
        paused_at = frames.cursor_row
        await cp.call(call.Heartbeat())
        await until(pilot, lambda: frames.row_count >= paused_at + 3)
        assert frames.cursor_row == paused_at  # new frames arrive; the selection stays
        await pilot.press("f")
        await cp.call(call.Heartbeat())
        await until(pilot, lambda: frames.cursor_row == frames.row_count - 1 and frames.row_count >= paused_at + 5)


# -- / on every list, Esc clears --------------------------------------------------------------------

LISTS = [  # keys to reach the list, its table, a text only one row has, that row's key
    pytest.param(("2",), "#chargers", "CP-FLT-B", "CP-FLT-B", id="chargers"),
    pytest.param(("3",), "#running", "CP-FLT-B", None, id="running"),
    pytest.param(("3", "right_square_bracket"), "#orders", "CP-FLT-B", None, id="orders"),
    pytest.param(("4",), "#tags", "TAG-B", "TAG-B", id="id-tags"),
    pytest.param(("5",), "#frames", "CP-FLT-B", None, id="message-log"),
]


async def test_slash_filters_every_list_and_escape_clears_it(csms: CentralSystem, console: Console) -> None:
    """On each list the README names, `/` and a text hide the rows without it; Esc shows them all
    again. One site for all five lists."""
    for tag in ("TAG-A", "TAG-B"):
        await csms.store.upsert_id_tag(tag, "Accepted", None, None, None)
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, charger(csms, "CP-FLT-A") as a, charger(csms, "CP-FLT-B") as b:
        for cp, tag in ((a, "TAG-A"), (b, "TAG-B")):
            await cp.boot()
            await cp.status(1, ChargePointStatus.charging)
            await cp.call(call.StartTransaction(connector_id=1, id_tag=tag, meter_start=0, timestamp=TS))
            done = await cp.call(call.StartTransaction(connector_id=2, id_tag=tag, meter_start=0, timestamp=TS))
            await cp.call(call.StopTransaction(transaction_id=done.transaction_id, meter_stop=10, timestamp=TS))
        for param in LISTS:
            keys, selector, needle, expected_key = param.values
            await pilot.press(*keys)
            await until(pilot, lambda: len(cells(app, selector)) >= 2, 8)
            everything = len(cells(app, selector))
            await pilot.press("slash")
            assert app.focused is app.screen.query_one("#filter"), param.id
            await pilot.press(*needle.lower())
            await until(pilot, lambda: cells(app, selector) and len(cells(app, selector)) < everything)
            rows = cells(app, selector)
            assert all(needle in " ".join(r) for r in rows.values()), (param.id, rows)
            if expected_key:
                assert list(rows) == [expected_key], param.id
            await pilot.press("escape")
            await until(pilot, lambda: len(cells(app, selector)) >= everything)
            assert not app.screen.query_one("#filter").has_class("-open"), param.id


# -- o and ctrl+p -------------------------------------------------------------------------------


async def test_ctrl_p_offers_the_selected_transaction_and_the_screens(csms: CentralSystem, console: Console) -> None:
    """The palette has the screens and, over Transactions, closing the selected transaction (its
    charger actions are in tests/test_ui_keys.py)."""
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, charger(csms, "CP-P") as cp:
        tx = await busy_charger(cp)
        await pilot.press("3")
        await until(pilot, lambda: str(tx) in cells(app, "#running"))
        await pilot.press("ctrl+p")
        palette = await until(pilot, lambda: app.screen if isinstance(app.screen, CommandPalette) else None)
        await pilot.press(*"close transaction")
        options = palette.query_one(CommandList)

        def offered(text: str) -> bool:
            return any(text in str(options.get_option_at_index(i).prompt) for i in range(options.option_count))

        await until(pilot, lambda: offered(f"Close transaction {tx}"))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, TransactionsScreen))
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"go to id tags", "enter")
        await until(pilot, lambda: isinstance(app.screen, IdTagsScreen))
