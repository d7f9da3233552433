"""Chargers: one row per charger, live; approve pending ones; act on the selected one."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Input

from ocpp_console.ui.live import ChargerView, fmt_kw, seen_text
from ocpp_console.ui.screens.base import FilterMixin, LiveScreen
from ocpp_console.ui.widgets.status import connectors_text, online_text, registration_text
from ocpp_console.ui.widgets.tables import SyncedTable

COLUMNS = [
    ("id", "Charger"),
    ("registration", "Registration"),
    ("state", "Link"),
    ("model", "Vendor / model"),
    ("firmware", "Firmware"),
    ("connectors", "Connectors"),
    ("power", "Power"),
    ("seen", "Last seen"),
    ("note", "Note"),
]
# Below these table widths a column steps aside, so that id, state, connectors and power fit 80 columns.
HIDE_BELOW = {"model": 110, "firmware": 140}


class ChargersScreen(FilterMixin, LiveScreen):
    TOPICS = ("chargers",)
    BINDINGS = [  # in the footer in this order: the most used first
        Binding("enter", "open", "Open", show=False),  # the table's own Enter shows; this one acts unfocused
        Binding("o", "actions", "Actions"),
        Binding("a", "approve", "Approve"),
        *FilterMixin.FILTER_BINDINGS,
        Binding("s", "remote_start", "Start"),
        Binding("x", "reject", "Reject"),
        Binding("p", "password", "Password"),
    ]
    NARROW_FOOTER_HIDES = frozenset({"s", "x", "p"})

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: id, vendor, status ...", id="filter", classes="filter")
        yield SyncedTable(COLUMNS, hide_below=HIDE_BELOW, id="chargers", open_label="Open")
        yield Footer()

    def on_mount(self) -> None:
        self._cache: dict[str, tuple[int, tuple[tuple[object, ...], tuple[str, ...]]]] = {}
        self.query_one(SyncedTable).focus()

    def rows(self) -> dict[str, tuple[object, ...]]:
        """A row per charger; an unchanged charger reuses its row (1,000 chargers redraw cheaply)."""
        rows = {}
        for cid in sorted(self.live.chargers):
            view = self.live.chargers[cid]
            cached = self._cache.get(cid)
            if cached is None or cached[0] != view.version:
                cached = (view.version, self._row(view))
                self._cache[cid] = cached
            row, searchable = cached[1]
            if self.matches(*searchable):
                rows[cid] = row
        return rows

    @staticmethod
    def _row(view: ChargerView) -> tuple[tuple[object, ...], tuple[str, ...]]:
        model = " ".join(p for p in (view.vendor, view.model) if p) or "-"
        statuses = " ".join(c.status for c in view.connectors.values())
        searchable = (view.id, model, view.firmware or "", view.registration, statuses,
                      "online" if view.connected else "offline", view.note or "")
        row = (
            view.id,
            registration_text(view.registration),
            online_text(view.connected),
            model,
            view.firmware or "-",
            connectors_text(view.connectors),
            fmt_kw(view.power_w) if view.connected else "-",
            seen_text(view.last_seen),
            view.note or "",
        )
        return row, searchable

    async def refresh_data(self) -> None:
        table = self.query_one(SyncedTable)
        rows = self.rows()
        table.show(rows)

    async def refilter(self) -> None:
        self.query_one(SyncedTable).reset_rows(self.rows())

    @property
    def selected(self) -> str | None:
        return self.query_one(SyncedTable).selected_key

    def _need_selection(self) -> str | None:
        charger_id = self.selected
        if charger_id is None:
            self.notify("No charger selected", severity="warning")
        return charger_id

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        if (charger_id := self._need_selection()) is not None:
            self.console.open_charger(charger_id)

    def action_actions(self) -> None:
        if (charger_id := self._need_selection()) is not None:
            self.console.pick_action(charger_id)

    def action_remote_start(self) -> None:
        if (charger_id := self._need_selection()) is not None:
            self.console.start_action(charger_id, "remote_start")

    def action_approve(self) -> None:
        if (charger_id := self._need_selection()) is not None:
            self.console.set_registration(charger_id, approve=True)

    def action_password(self) -> None:
        if (charger_id := self._need_selection()) is not None:
            self.console.set_password(charger_id)

    def action_reject(self) -> None:
        if (charger_id := self._need_selection()) is not None:
            self.console.set_registration(charger_id, approve=False)
