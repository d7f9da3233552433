"""Order detail: one transaction, all of it, with its meter-value chart."""

from __future__ import annotations

import json
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Static

from ocpp_console.site import LINE_ITEMS, format_money
from ocpp_console.ui.live import ENERGY, POWER, duration, fmt_kwh, format_duration, local_time
from ocpp_console.ui.screens.base import LiveScreen
from ocpp_console.ui.screens.charger_detail import _kv
from ocpp_console.ui.widgets.chart import TimeChart


class OrderDetailScreen(LiveScreen):
    TOPICS = ("transactions",)
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]
    SCREENS_IN_FOOTER = "always"

    def __init__(self, transaction_id: int) -> None:
        super().__init__()
        self.transaction_id = transaction_id

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static(id="order", classes="panel")
            yield TimeChart("Energy delivered (kWh)", x_label="minutes since start", id="order-energy")
            yield TimeChart("Power (kW)", x_label="minutes since start", id="order-power")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"transaction {self.transaction_id}"

    async def refresh_data(self) -> None:
        site = self.console.site
        row = await site.transaction(self.transaction_id)
        if row is None:
            self.query_one("#order", Static).update(Text(f"Transaction {self.transaction_id} not found", style="red"))
            return
        flags = Text(row["flags"].replace(",", ", "), style="yellow") if row["flags"] else "-"
        state = "running" if row["stopped_at"] is None else "finished"
        currency = row["currency"] or site.info().currency
        items = json.loads(row["cost_items"]) if row["cost_items"] else {}
        names = {"energy": "├ energy", "time": "├ charging time", "idle": "├ idle time", "session_fee": "└ session fee"}
        money = [(names[k], format_money(items.get(k, 0), currency)) for k in LINE_ITEMS] if items else []
        wallet = "-"
        for move in await site.ledger_for_transaction(self.transaction_id):
            wallet = (f"{format_money(move['amount'], move['currency'])} from {move['id_tag']}"
                      f" (balance after: {format_money(move['balance_after'], move['currency'])})")
        if items and wallet == "-":
            wallet = "not charged (no wallet for this id tag)" if row["cost_total"] else "nothing to charge"
        meter_check = "-"
        if row["meter_register_wh"] is not None:
            meter_check = f"last register {row['meter_register_wh']} Wh, difference {row['energy_discrepancy_wh']} Wh"
        self.query_one("#order", Static).update(_kv([
            ("Transaction", f"{row['id']} ({state})"),
            ("Charger / connector", f"{row['charger_id']} / {row['connector_id']}"),
            ("Id tag", f"{row['id_tag']} ({row['auth_status']})"),
            ("Start", local_time(row["start_timestamp"], True)),
            ("Stop", local_time(row["stop_timestamp"], True)),
            ("Duration", duration(row["start_timestamp"], row["stop_timestamp"])),
            ("Meter start / stop", f"{row['meter_start']} / {row['meter_stop'] if row['meter_stop'] is not None else '-'} Wh"),
            ("Energy", fmt_kwh(row["energy_wh"])),
            ("Stop reason", row["stop_reason"] if not row["stop_note"] else f"{row['stop_reason']} ({row['stop_note']})"),
            ("Charging / idle", f"{format_duration(row['charging_seconds'])} / {format_duration(row['idle_seconds'])}"),
            ("Meter values", meter_check),
            ("Cost", Text(format_money(row["cost_total"], currency), style="bold") if items else "-"),
            *money,
            ("Wallet", wallet),
            ("Flags", flags),
        ]))
        samples = await site.meter_values_for(self.transaction_id)
        start = _ts(row["start_timestamp"])
        energy_x, energy_y, power_x, power_y = [], [], [], []
        for s in samples:
            t = _ts(s["timestamp"])
            if t is None or start is None or s["value_num"] is None:
                continue
            minutes = (t - start) / 60
            if s["measurand"] == ENERGY and s["phase"] is None:
                energy_x.append(minutes)
                energy_y.append((s["value_num"] - row["meter_start"]) / 1000)
            elif s["measurand"] == POWER and s["phase"] is None:
                power_x.append(minutes)
                power_y.append(s["value_num"] / 1000)
        self.query_one("#order-energy", TimeChart).set_series([("kWh", energy_x, energy_y)])
        self.query_one("#order-power", TimeChart).set_series([("kW", power_x, power_y)])


def _ts(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None
