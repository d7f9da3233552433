"""Message log: every OCPP frame, filterable, with the selected one pretty-printed."""

from __future__ import annotations

import json

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Input, Static

from ocpp_console.site.events import MessageLogged
from ocpp_console.ui.live import local_time
from ocpp_console.ui.screens.base import FilterMixin, LiveScreen
from ocpp_console.ui.widgets.tables import SyncedTable

TYPES = {2: "CALL", 3: "RESULT", 4: "ERROR", None: "?"}
SHOWN = 250  # the newest frames in the table; older ones: pause following and filter


class MessageLogScreen(FilterMixin, LiveScreen):
    TOPICS = ("log",)
    SCREENS_IN_FOOTER = "always"
    BINDINGS = [Binding("f", "toggle_follow", "Follow"), *FilterMixin.FILTER_BINDINGS]

    def __init__(self) -> None:
        super().__init__()
        self.follow = True
        self._frames: dict[str, MessageLogged] = {}
        self._last_seq = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: charger, action or any text in the frame ...", id="filter", classes="filter")
        yield SyncedTable(
            [("frame", Text(f"{'#':<7} {'Time':8} {'Charger':20} Dir  {'Type':6} {'Action':32} Unique id"), 140)],
            id="frames",
        )
        with VerticalScroll(id="payload-box"):
            yield Static(id="payload")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(SyncedTable).focus()
        self._update_title()

    def _update_title(self) -> None:
        self.sub_title = "following" if self.follow else "paused (f to follow)"

    def _row(self, n: int, frame: MessageLogged) -> tuple[Text]:
        # One cell per frame: a DataTable renders each cell through Rich, and a log redraws often.
        style = "bold white on dark_red" if frame.message_type == 4 else ("dim" if frame.message_type is None else "")
        arrow = "→ cp" if frame.direction == "out" else "← cp"
        text = (f"{n:<7} {local_time(frame.timestamp):8} {frame.charger_id[:20]:20} {arrow} "
                f"{TYPES.get(frame.message_type, '?'):6} {(frame.action or '-')[:32]:32} {frame.unique_id or '-'}")
        line = Text(text, style=style, no_wrap=True, overflow="ellipsis")
        return (line,)

    async def refresh_data(self) -> None:
        # Append only what is new; a busy site adds hundreds of frames a second, and removing
        # rows one by one from a DataTable costs O(rows) each. Past twice the limit, rebuild once.
        new: list[tuple[int, MessageLogged]] = []
        for n, frame in reversed(self.live.frames):
            if n <= self._last_seq:
                break
            if self.matches(frame.charger_id, frame.action, frame.raw):
                new.append((n, frame))
        if self.live.frames:
            self._last_seq = max(self._last_seq, self.live.frames[-1][0])
        if not new and self._frames:
            return
        new.reverse()
        table = self.query_one(SyncedTable)
        if len(self._frames) + len(new) > 2 * SHOWN:
            keep = [(n, f) for n, f in self.live.frames if self.matches(f.charger_id, f.action, f.raw)][-SHOWN:]
            self._frames = {}
            table.reset_rows({})
            new = keep
        for n, frame in new:
            self._frames[str(n)] = frame
        table.append({str(n): self._row(n, frame) for n, frame in new})
        if self.follow and table.row_count:
            table.move_cursor(row=table.row_count - 1, animate=False)
            self._show(table.selected_key)

    async def refilter(self) -> None:
        self._frames = {}
        self._last_seq = 0
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
