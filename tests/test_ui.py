"""The console, driven through Textual's Pilot against the real central system and real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ocpp.v16 import call
from ocpp.v16.enums import ChargePointStatus
from textual.pilot import Pilot
from textual.widgets import Input, Select

from ocpp_console.csms import CentralSystem
from ocpp_console.ui.app import ConsoleApp
from ocpp_console.ui.screens.charger_detail import ChargerDetailScreen
from ocpp_console.ui.screens.modals import ActionForm, ConfirmScreen
from ocpp_console.ui.widgets.tables import SyncedTable
from tests.clients import TS
from tests.conftest import Console, charger

SIZE = (140, 45)


async def until(pilot: Pilot[Any], predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def text_of(widget: Any) -> str:
    """What a Static shows, as plain text (its content may be any Rich renderable)."""
    from rich.console import Console

    console = Console(width=300, color_system=None)
    with console.capture() as capture:
        console.print(widget.content)
    return capture.get()


def table(app: ConsoleApp, selector: str = "SyncedTable") -> SyncedTable:
    return app.screen.query_one(selector, SyncedTable)


def cells(app: ConsoleApp, selector: str = "SyncedTable") -> dict[str, list[str]]:
    return {str(k): [str(c) for c in v] for k, v in table(app, selector)._rows.items()}


async def busy_charger(cp: Any) -> int:
    await cp.boot()
    await cp.status(1, ChargePointStatus.charging)
    tx = (await cp.call(call.StartTransaction(connector_id=1, id_tag="TAG1", meter_start=1000, timestamp=TS))).transaction_id
    await cp.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{"timestamp": TS, "sampledValue": [
        {"value": "3500", "unit": "Wh"}, {"value": "7400", "unit": "W", "measurand": "Power.Active.Import"},
        {"value": "42", "unit": "Percent", "measurand": "SoC"},
    ]}]))
    return tx


async def test_every_screen_shows_live_data(csms: CentralSystem, console: Console) -> None:
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, charger(csms, "CP-LIVE") as cp:
        tx = await busy_charger(cp)
        # Overview
        await until(pilot, lambda: "1" in str(app.screen.query_one("#t-charging .tile-value").render()))
        await until(pilot, lambda: "7.4 kW" in str(app.screen.query_one("#t-power .tile-value").render()))
        await until(pilot, lambda: any("started" in r[2] for r in cells(app, "#feed").values()))
        # Chargers
        await pilot.press("2")
        rows = await until(pilot, lambda: cells(app).get("CP-LIVE"))
        assert rows[1] == "Accepted" and "online" in rows[2] and "TestVendor TestModel" == rows[3]
        assert rows[4] == "1.2.3" and "1:Chrg" in rows[5] and rows[6] == "7.4 kW"
        # Charger detail
        await pilot.press("enter")
        assert isinstance(app.screen, ChargerDetailScreen)
        await until(pilot, lambda: cells(app, "#connectors").get("1"))
        assert cells(app, "#connectors")["1"][1] == "Charging" and cells(app, "#connectors")["1"][4] == str(tx)
        await pilot.press("escape")
        # Transactions
        await pilot.press("3")
        running = await until(pilot, lambda: cells(app, "#running").get(str(tx)))
        assert running[1] == "CP-LIVE" and running[6] == "2.50 kWh" and running[8] == "42%"
        await cp.call(call.StopTransaction(meter_stop=4000, timestamp=TS, transaction_id=tx))
        order = await until(pilot, lambda: cells(app, "#orders").get(str(tx)))
        assert order[7] == "3.00 kWh"
        # Id tags
        await pilot.press("4")
        await until(pilot, lambda: "TAG1" in cells(app))
        # Message log, with a CALLERROR standing out
        await cp._connection.send('[2, "bad-1", "Nope", {}]')
        await pilot.press("5")
        await until(pilot, lambda: any(" ERROR " in r[0] and "Nope" in r[0] for r in cells(app).values()))


async def test_remote_start_from_the_console(csms: CentralSystem, console: Console) -> None:
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, charger(csms, "CP-RS") as cp:
        await cp.boot()
        await pilot.press("2")
        await until(pilot, lambda: "CP-RS" in cells(app))
        await pilot.press("s")
        form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
        form.query_one("#f-id_tag", Input).value = "DRIVER-7"
        await pilot.press("enter")
        await asyncio.wait_for(cp.got_call.wait(), 5)
        assert cp.received[-1] == ("RemoteStartTransaction", {"id_tag": "DRIVER-7", "connector_id": 1})


async def test_form_validation_shows_a_message_not_a_traceback(csms: CentralSystem, console: Console) -> None:
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, charger(csms, "CP-V") as cp:
        await cp.boot()
        await pilot.press("2")
        await until(pilot, lambda: "CP-V" in cells(app))
        await pilot.press("s")
        form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
        form.query_one("#f-id_tag", Input).value = "X" * 25
        form.query_one("#f-connector_id", Input).value = "one"
        await pilot.press("enter")
        error = str(form.query_one("#form-error").render())
        assert "at most 20 characters" in error
        assert isinstance(app.screen, ActionForm)
        await pilot.press("escape")
        assert cp.received == []


async def test_cancelled_confirmation_sends_nothing(csms: CentralSystem, console: Console) -> None:
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, charger(csms, "CP-C") as cp:
        await busy_charger(cp)
        await pilot.press("2")
        await until(pilot, lambda: "1:Chrg" in "".join(cells(app).get("CP-C", [])))
        await pilot.press("enter")
        await pilot.press("r")  # Reset while a car charges
        await until(pilot, lambda: isinstance(app.screen, ActionForm))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ChargerDetailScreen))
        await pilot.pause(0.2)
        assert [r for r in cp.received if r[0] == "Reset"] == []
        assert await csms.store.commands("CP-C") == []
        # Confirmed, it goes out.
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ActionForm))
        app.screen.query_one("#f-type", Select).value = "Hard"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await asyncio.wait_for(cp.got_call.wait(), 5)
        assert cp.received[-1] == ("Reset", {"type": "Hard"})


async def test_change_configuration_from_detail_screen(csms: CentralSystem, console: Console) -> None:
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, charger(csms, "CP-CFG") as cp:
        await cp.boot()
        await pilot.press("2")
        await until(pilot, lambda: "CP-CFG" in cells(app))
        await pilot.press("enter")
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, ActionForm))
        await pilot.press("enter")
        await until(pilot, lambda: cells(app, "#config").get("HeartbeatInterval"))
        app.screen.query_one("#config", SyncedTable).move_cursor(row=0)
        await pilot.press("e")
        form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
        assert form.query_one("#f-key", Input).value == "HeartbeatInterval"
        form.query_one("#f-value", Input).value = "90"
        await pilot.press("enter")
        await until(pilot, lambda: cp.config["HeartbeatInterval"][0] == "90")
        await until(pilot, lambda: cells(app, "#config")["HeartbeatInterval"][1] == "90")


async def test_approve_pending_charger_from_the_console(settings_factory: Any, console: Console) -> None:
    async with CentralSystem(settings_factory(unknown_chargers="pending")) as system:
        app = await console(system)
        async with app.run_test(size=SIZE) as pilot, charger(system, "CP-NEW") as cp:
            assert (await cp.boot()).status == "Pending"
            await pilot.press("2")
            row = await until(pilot, lambda: cells(app).get("CP-NEW"))
            assert row[1] == "awaiting approval"
            await pilot.press("a")
            await asyncio.wait_for(cp.got_call.wait(), 5)  # asked to boot again
            assert (await cp.boot()).status == "Accepted"
            await until(pilot, lambda: cells(app)["CP-NEW"][1] == "Accepted")


async def test_offline_charger_command_is_a_clear_notification(csms: CentralSystem, console: Console) -> None:
    await csms.store.add_charger("GHOST")
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await until(pilot, lambda: "GHOST" in cells(app))
        await pilot.press("o")
        await until(pilot, lambda: app.screen.query("#actions"))
        await pilot.press("enter")  # Remote Start, the first action
        form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
        form.query_one("#f-id_tag", Input).value = "T"
        await pilot.press("enter")
        await until(pilot, lambda: any("not connected" in str(n.message) for n in app._notifications))


async def test_id_tag_added_and_blocked_from_the_console(csms: CentralSystem, console: Console) -> None:
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot:
        async def add(tag: str, parent: str) -> None:
            await pilot.press("4")
            await pilot.press("n")
            await until(pilot, lambda: app.screen.query("#tag"))
            app.screen.query_one("#tag", Input).value = tag
            app.screen.query_one("#parent", Input).value = parent
            await pilot.click("#save")

        await add("NEWTAG", "FLEET")  # a parent that does not exist is refused, as the CLI and the API refuse it
        await until(pilot, lambda: any(str(n.message) == "Id tag NEWTAG not saved: parent tag FLEET of NEWTAG does "
                                       "not exist" for n in app._notifications))
        assert await csms.store.id_tag("NEWTAG") is None
        await csms.store.upsert_id_tag("FLEET")
        await add("NEWTAG", "FLEET")
        await until(pilot, lambda: "NEWTAG" in cells(app))
        assert (await csms.store.id_tag("NEWTAG"))["parent_id_tag"] == "FLEET"
        table(app).move_cursor(row=list(cells(app)).index("NEWTAG"))
        await pilot.press("b")
        await until(pilot, lambda: cells(app)["NEWTAG"][1] == "Blocked")
        assert (await csms.store.id_tag("NEWTAG"))["status"] == "Blocked"


async def test_site_power_history_survives_a_restart(csms: CentralSystem, console: Console) -> None:
    from datetime import timedelta

    from ocpp_console.timeutil import iso, utcnow

    async with charger(csms, "CP-H") as cp:
        await cp.boot()
        for minutes_ago, watts in ((50, 3000), (30, 11000), (10, 7000)):
            ts = iso(utcnow() - timedelta(minutes=minutes_ago))
            await cp.call(call.MeterValues(connector_id=1, meter_value=[{"timestamp": ts, "sampledValue": [
                {"value": str(watts), "unit": "W", "measurand": "Power.Active.Import"}]}]))
        old = iso(utcnow() - timedelta(hours=3))
        await cp.call(call.MeterValues(connector_id=1, meter_value=[{"timestamp": old, "sampledValue": [
            {"value": "99000", "unit": "W", "measurand": "Power.Active.Import"}]}]))
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        history = [round(kw, 1) for _, kw in app.live.site_power]
        assert history[:3] == [3.0, 11.0, 7.0]  # the 3-hour-old sample is outside the hour


async def test_wallet_top_up_order_costs_and_export_from_the_console(settings_factory: Any, tmp_path: Any, console: Console) -> None:
    import csv

    system = CentralSystem(settings_factory(price_per_kwh="0.50", session_fee="1.00", currency="EUR"))
    async with system:
        await system.store.upsert_id_tag("FLEET")
        await system.store.upsert_id_tag("VAN", parent_id_tag="FLEET")
        app = await console(system)
        async with app.run_test(size=SIZE) as pilot, charger(system, "CP-W") as cp:
            await cp.boot()
            await pilot.press("4")
            await until(pilot, lambda: "VAN" in cells(app))
            app.screen.query_one(SyncedTable).move_cursor(row=list(cells(app)).index("VAN"))
            await pilot.press("t")
            form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
            form.query_one("#f-amount", Input).value = "abc"
            await pilot.press("enter")
            assert "not an amount" in str(form.query_one("#form-error").render())
            form.query_one("#f-amount", Input).value = "40.00"
            form.query_one("#f-reason", Input).value = "fleet invoice 17"
            await pilot.press("enter")
            await until(pilot, lambda: cells(app)["FLEET"][4] == "40.00 EUR")
            assert cells(app)["VAN"][4] == "→ FLEET"
            # a running session shows its cost so far; once stopped the order shows the total
            tx = (await cp.call(call.StartTransaction(connector_id=1, id_tag="VAN", meter_start=0, timestamp=TS))).transaction_id
            await cp.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{"timestamp": TS, "sampledValue": [
                {"value": "4000", "unit": "Wh"}]}]))
            await pilot.press("3")
            await until(pilot, lambda: cells(app, "#running").get(str(tx), [""] * 10)[9] == "3.00 EUR")
            await cp.call(call.StopTransaction(meter_stop=10000, timestamp=TS, transaction_id=tx))
            order = await until(pilot, lambda: cells(app, "#orders").get(str(tx)))
            assert order[10] == "6.00 EUR"
            await pilot.press("1")
            await until(pilot, lambda: "6.00 EUR" in str(app.screen.query_one("#t-revenue .tile-value").render()))
            await pilot.press("3")
            app.screen.query_one("TabbedContent").active = "tab-orders"
            app.screen.query_one("#orders", SyncedTable).focus()
            await pilot.press("enter")
            detail = await until(pilot, lambda: "Wallet" in text_of(app.screen.query_one("#order")) and app.screen)
            text = text_of(detail.query_one("#order"))
            assert "-6.00 EUR from FLEET" in text and "34.00 EUR" in text and "session fee" in text
            await pilot.press("escape")
            await pilot.press("e")
            form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
            target = tmp_path / "orders.csv"
            form.query_one("#f-path", Input).value = str(target)
            await pilot.press("enter")
            await until(pilot, lambda: target.exists())
    rows = list(csv.DictReader(target.open()))
    assert [(r["transaction_id"], r["total"], r["wallet"]) for r in rows] == [(str(tx), "6.00", "FLEET")]


async def test_console_survives_hostile_data(csms: CentralSystem, console: Console) -> None:
    """Very long strings, odd unicode and absurd meter readings reach every screen without a traceback."""
    weird = "🚗⚡ مرحبا \u202e\u0000" + "x" * 3000
    async with charger(csms, "CP-WEIRD") as cp:
        await cp.call(call.BootNotification(charge_point_vendor="V" * 20, charge_point_model="M🚗" * 5,
                                            firmware_version="1.0\u202e"))
        await cp.call(call.StatusNotification(connector_id=1, error_code="OtherError", status="Faulted",
                                              info="🔥" * 50, vendor_error_code="E" * 50))
        tx = (await cp.call(call.StartTransaction(connector_id=1, id_tag="ÆØÅ-🚗", meter_start=0, timestamp=TS))).transaction_id
        for value, unit, measurand in (("1e308", "kWh", "Energy.Active.Import.Register"), ("-9e30", "W", "Power.Active.Import"),
                                       ("NaN", "Percent", "SoC"), ("12,5", "V", "Voltage"), ("Infinity", "W", "Power.Active.Import")):
            await cp.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{"timestamp": TS, "sampledValue": [
                {"value": value, "unit": unit, "measurand": measurand}]}]))
        await cp.call(call.DataTransfer(vendor_id="v", data=weird))
        await cp.call(call.StopTransaction(meter_stop=2**31 - 1, timestamp=TS, transaction_id=tx))
    await csms.store.upsert_id_tag("T" * 20, note=weird)
    app = await console(csms)
    async with app.run_test(size=(80, 24)) as pilot:
        for key in ("1", "2", "3", "4", "5"):
            await pilot.press(key)
            await pilot.pause(0.3)
        await pilot.press("2")
        await until(pilot, lambda: "CP-WEIRD" in cells(app))
        await pilot.press("enter")
        await pilot.pause(0.5)
        await pilot.press("escape")
        await pilot.press("3")
        app.screen.query_one("TabbedContent").active = "tab-orders"
        app.screen.query_one("#orders", SyncedTable).focus()
        await until(pilot, lambda: str(tx) in cells(app, "#orders"))
        await pilot.press("enter")
        await pilot.pause(0.5)
        assert app.return_code is None  # still running: no crash screen
    samples = await csms.store.meter_values_for(tx)
    assert all(s["value_num"] is None or abs(s["value_num"]) < 1e15 for s in samples)  # absurd readings not used


async def test_authorization_key_is_typed_unseen(csms: CentralSystem, console: Console) -> None:
    async with charger(csms, "CP-SECRET") as cp:
        await cp.boot()
        app = await console(csms)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("2")
            await until(pilot, lambda: "CP-SECRET" in cells(app))
            app.start_action("CP-SECRET", "change_config", {})
            form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
            value = form.query_one("#f-value", Input)
            assert not value.password
            form.query_one("#f-key", Input).value = "AuthorizationKey"
            await until(pilot, lambda: value.password)
            form.query_one("#f-key", Input).value = "HeartbeatInterval"
            await until(pilot, lambda: not value.password)


async def test_a_large_table_fills_in_chunks_and_keeps_order() -> None:
    """A thousand new rows show their first page at once and the rest after the next redraws;
    a diff in the middle of the fill neither duplicates nor reorders rows."""
    from textual.app import App

    class TableApp(App[None]):
        def compose(self) -> Any:
            yield SyncedTable([("id", "Id"), ("v", "Value")])

    app = TableApp()
    async with app.run_test() as pilot:
        t = app.query_one(SyncedTable)
        rows = {f"CP-{i:04d}": (f"CP-{i:04d}", "a") for i in range(1000)}
        t.show(rows)
        assert t.row_count == SyncedTable.FILL_CHUNK
        rows = {**rows, "CP-0000": ("CP-0000", "b")}  # a change while filling
        t.show(rows)
        await until(pilot, lambda: t.row_count == 1000)
        assert [str(k.value) for k in t.rows] == sorted(rows)
        assert t.get_row("CP-0000") == ["CP-0000", "b"]
        t.show({k: v for k, v in rows.items() if k != "CP-0500"})  # a removal rebuilds in order
        await until(pilot, lambda: t.row_count == 999)
        assert [str(k.value) for k in t.rows] == sorted(set(rows) - {"CP-0500"})


def test_installed_certificates_are_summarised_by_serial() -> None:
    from ocpp.v16 import call_result

    from ocpp_console.ui.actions import describe_result

    data = [{"hash_algorithm": "SHA256", "issuer_name_hash": "a" * 64, "issuer_key_hash": "b" * 64, "serial_number": s}
            for s in ("1a2b3c", "ff01")]
    text = describe_result(call_result.GetInstalledCertificateIds(status="Accepted", certificate_hash_data=data))
    assert text == "status=Accepted, certificate_hash_data=2 (serial 1a2b3c, ff01)"
