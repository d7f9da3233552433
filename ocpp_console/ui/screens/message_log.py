"""Message log: every OCPP frame, filterable, with the selected one pretty-printed."""

from __future__ import annotations

import json

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Input, Static

from ocpp_console.csms.events import MessageLogged
from ocpp_console.ui.live import local_time
from ocpp_console.ui.screens.base import FilterMixin, LiveScreen
from ocpp_console.ui.widgets.tables import SyncedTable

TYPES = {2: "CALL", 3: "RESULT", 4: "ERROR", None: "?"}
SHOWN = 1000


class MessageLogScreen(FilterMixin, LiveScreen):
    TOPICS = ("log",)
    BINDINGS = [Binding("f", "toggle_follow", "Follow on/off"), *FilterMixin.FILTER_BINDINGS]

    def __init__(self) -> None:
        super().__init__()
        self.follow = True
        self._frames: dict[str, MessageLogged] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: charger, action or any text in the frame ...", id="filter", classes="filter")
        yield SyncedTable(
            [("n", "#"), ("time", "Time"), ("charger", "Charger"), ("dir", "Dir"), ("type", "Type"), ("action", "Action"), ("uid", "Unique id")],
            id="frames",
        )
        with VerticalScroll(id="payload-box"):
            yield Static(id="payload")
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(SyncedTable).focus()
        self._update_title()

    def _update_title(self) -> None:
        self.sub_title = "following" if self.follow else "paused (f to follow)"

    async def refresh_data(self) -> None:
        rows = {}
        self._frames = {}
        shown = [(n, f) for n, f in self.live.frames if self.matches(f.charger_id, f.action, f.raw)][-SHOWN:]
        for n, frame in shown:
            key = str(n)
            self._frames[key] = frame
            style = "bold white on dark_red" if frame.message_type == 4 else ("dim" if frame.message_type is None else "")
            arrow = "→ cp" if frame.direction == "out" else "← cp"
            rows[key] = (
                Text(str(n), style=style),
                Text(local_time(frame.timestamp), style=style),
                Text(frame.charger_id, style=style),
                Text(arrow, style=style or ("cyan" if frame.direction == "out" else "")),
                Text(TYPES.get(frame.message_type, "?"), style=style),
                Text(frame.action or "-", style=style),
                Text(frame.unique_id or "-", style=style),
            )
        table = self.query_one(SyncedTable)
        table.sync(rows)
        if self.follow and table.row_count:
            table.move_cursor(row=table.row_count - 1, animate=False)
            self._show(table.selected_key)

    async def refilter(self) -> None:
        self.query_one(SyncedTable).reset_rows({})
        await self.refresh_data()

    def _show(self, key: str | None) -> None:
        frame = self._frames.get(key) if key else None
        box = self.query_one("#payload", Static)
        if frame is None:
            box.update("")
            return
        try:
            pretty = json.dumps(json.loads(frame.raw), indent=2, ensure_ascii=False)
            box.update(Syntax(pretty, "json", word_wrap=True, theme="ansi_dark"))
        except (ValueError, TypeError):
            box.update(Text(frame.raw))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show(event.row_key.value if event.row_key else None)

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self._update_title()
        self.notify("Following new frames" if self.follow else "Follow paused")
