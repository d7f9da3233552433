"""Transactions: running ones live, finished ones (orders); Enter opens an order."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Input, TabbedContent, TabPane

from ocpp_console.site import WALLET_EMPTY, format_money
from ocpp_console.ui.live import RunningTx, compact_time, duration, fmt_kw, fmt_kwh, local_time
from ocpp_console.ui.screens.base import TAB_BINDINGS, FilterMixin, LiveScreen
from ocpp_console.ui.widgets.tables import SyncedTable

RUNNING = [
    ("id", "Tx"), ("charger", "Charger"), ("connector", "#"), ("tag", "Id tag"), ("start", "Started"),
    ("duration", "Duration"), ("energy", "Energy"), ("power", "Power"), ("soc", "SoC"), ("cost", "Cost"),
    ("state", "State"),
]
RUNNING_HIDE_BELOW = {"start": 100, "soc": 100}  # at 80 columns the cost and state must fit
STALE = Text("stale", style="bold yellow")  # charger offline or rebooted since: `c` closes it
ORDERS = [
    ("id", "Tx"), ("charger", "Charger"), ("connector", "#"), ("tag", "Id tag"), ("start", "Start"), ("stop", "Stop"),
    ("meter", "Meter start→stop"), ("energy", "Energy"), ("duration", "Duration"), ("reason", "Reason"), ("cost", "Cost"),
]
ORDERS_HIDE_BELOW = {"meter": 140, "start": 100, "reason": 100}


class TransactionsScreen(FilterMixin, LiveScreen):
    TOPICS = ("transactions", "orders")
    ALWAYS_REFRESH_EVERY = 5.0  # running durations: seconds in the first minute, then minutes
    BINDINGS = [  # in the footer in this order: the most used first
        Binding("enter", "open", "Open", show=False),  # the table's own Enter shows; this one acts unfocused
        Binding("x", "stop", "Stop"),
        Binding("c", "close", "Close"),
        *TAB_BINDINGS,
        *FilterMixin.FILTER_BINDINGS,
        Binding("e", "export", "Export"),
    ]
    NARROW_FOOTER_HIDES = frozenset({"e"})

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: charger, id tag, reason, stale ...", id="filter", classes="filter")
        with TabbedContent(id="tx-tabs"):
            with TabPane("Running", id="tab-running"):
                yield SyncedTable(RUNNING, hide_below=RUNNING_HIDE_BELOW, id="running", open_label="Open")
            with TabPane("Orders", id="tab-orders"):
                yield SyncedTable(ORDERS, hide_below=ORDERS_HIDE_BELOW, id="orders", open_label="Open")
        yield Footer()

    def on_mount(self) -> None:
        self._orders_version = -1
        self._refilter = False
        self._running_cache: dict[int, tuple[tuple[object, ...], tuple[str, ...]]] = {}

    async def refresh_data(self) -> None:
        running = {}
        for tx in sorted(self.live.running.values(), key=lambda t: t.id, reverse=True):
            stale = self.live.is_stale(tx)
            if not self.matches(tx.id, tx.charger_id, tx.id_tag, "stale" if stale else ""):
                continue
            age = duration(tx.started)
            key = (tx.energy_wh, tx.power_w, tx.soc, age, tx.tariff is not None, stale)
            cached = self._running_cache.get(tx.id)
            if cached is None or cached[0] != key:  # pricing 500 sessions 4 times a second is not free
                cached = (key, (
                    str(tx.id), tx.charger_id, str(tx.connector_id), tx.id_tag, local_time(tx.started),
                    age, fmt_kwh(tx.energy_wh), fmt_kw(None if stale else tx.power_w),  # not now: its last report
                    "-" if tx.soc is None else f"{tx.soc:.0f}%", self._cost(tx), STALE if stale else "",
                ))
                self._running_cache[tx.id] = cached
            running[tx.id] = cached[1]
        for gone in set(self._running_cache) - set(self.live.running):
            del self._running_cache[gone]
        table = self.query_one("#running", SyncedTable)
        table.show(running)
        if self.live.versions["orders"] == self._orders_version and not self._refilter:
            return  # finished transactions only change when one stops: no query on every meter value
        self._orders_version = self.live.versions["orders"]
        self._refilter = False
        orders = {}
        currency = self.console.site.info().currency
        for row in await self.console.site.transactions(running=False, limit=500):
            reason = stop_reason(row)
            if not self.matches(row["id"], row["charger_id"], row["id_tag"], reason):
                continue
            orders[row["id"]] = (
                str(row["id"]), row["charger_id"], str(row["connector_id"]), row["id_tag"],
                compact_time(row["start_timestamp"]), compact_time(row["stop_timestamp"]),
                f"{row['meter_start']}→{row['meter_stop']} Wh", fmt_kwh(row["energy_wh"]),
                duration(row["start_timestamp"], row["stop_timestamp"]), reason,
                format_money(row["cost_total"], row["currency"] or currency),
            )
        table = self.query_one("#orders", SyncedTable)
        table.show(orders)

    @staticmethod
    def _cost(tx: RunningTx) -> str:
        cost = tx.cost_so_far()
        return "-" if cost is None or tx.tariff is None else format_money(cost, tx.tariff.currency)

    async def refilter(self) -> None:
        self._refilter = True
        await self.refresh_data()

    def _selected(self) -> int | None:
        tabs = self.query_one(TabbedContent)
        table = self.query_one("#running" if tabs.active == "tab-running" else "#orders", SyncedTable)
        key = table.selected_key
        return int(key) if key else None

    def action_open(self) -> None:
        tx = self._selected()
        if tx is not None:
            self.console.open_order(tx)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_export(self) -> None:
        self.console.export_csv("orders")

    def action_stop(self) -> None:
        tx = self.selected_running()
        if tx is None:
            self.notify("Select a running transaction to stop", severity="warning")
            return
        self.console.start_action(tx.charger_id, "remote_stop", {"transaction_id": tx.id, "connector_id": tx.connector_id})

    def selected_running(self) -> RunningTx | None:
        tx_id = self._selected()
        return self.live.running.get(tx_id) if tx_id is not None else None

    def action_close(self) -> None:
        tx = self.selected_running()
        if tx is None:
            self.notify("Select a running transaction to close", severity="warning")
            return
        self.console.close_transaction(tx.id)


def stop_reason(row: Any) -> str:
    """The charger's stop reason, and ours when we asked it to stop (a spent wallet)."""
    reason = row["stop_reason"] or "-"
    return f"{reason}, wallet empty" if WALLET_EMPTY in (row["flags"] or "").split(",") else reason
