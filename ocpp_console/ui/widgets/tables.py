"""Keep a DataTable in step with a dict of rows, touching only the cells that changed.

Rebuilding a table of hundreds of rows several times a second stalls the event loop the
central system shares; diffing keeps a refresh proportional to what actually changed.

Columns grow with their content (a power going from "9.9 kW" to "11.0 kW", a balance gaining a
digit) and the less important ones step aside on narrow terminals (`hide_below`), so that what
matters is never cut while the screen has room for it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import replace
from itertools import islice
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, RowKey

ColumnSpec = tuple[str, Any] | tuple[str, Any, int]


def cell_width(value: object) -> int:
    """The columns a cell needs on one line (a Text measures its plain text)."""
    return value.cell_len if isinstance(value, Text) else cell_len(str(value))


class SyncedTable(DataTable[Any]):
    FILL_CHUNK = 150  # a few screens of rows; adding one costs ~0.1 ms
    DEFAULT_CSS = """
    SyncedTable { height: 1fr; }
    """

    def __init__(
        self,
        columns: Sequence[ColumnSpec],
        *,
        hide_below: Mapping[str, int] | None = None,
        open_label: str | None = None,
        **kwargs: Any,
    ) -> None:
        """`columns`: (key, label) or (key, label, width); a fixed width spares a re-layout when
        rows arrive. `hide_below`: column key -> the table width under which that column is left
        out (rows still carry its value: it comes back when the table widens). `open_label`: what
        Enter on a row does, shown in the footer (DataTable's own Enter binding is hidden)."""
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
        # This instance's copy of the class bindings. The cursor keys go on working but leave the
        # `?` panel to the screen's own keys (they listed a dozen arrows and pages above them).
        table_keys = self._bindings.key_to_bindings
        for key, bindings in table_keys.items():
            table_keys[key] = [replace(b, system=True) for b in bindings]
        if open_label:
            # Enter: the same action, named and shown (in the footer and the `?` panel).
            self._bindings.key_to_bindings["enter"] = [Binding("enter", "select_cursor", open_label)]
        self._column_spec = [(c[0], c[1]) for c in columns]
        self._widths = {c[0]: c[2] for c in columns if len(c) > 2}
        self._hide_below = dict(hide_below or {})
        self._shown: list[int] = []  # indexes into _column_spec of the columns on screen
        self._rows: dict[Hashable, tuple[Any, ...]] = {}  # every column's value, shown or not
        self._target: Mapping[Hashable, Sequence[Any]] | None = None
        self._filling = False

    # -- columns ---------------------------------------------------------------------

    def _columns_for(self, width: int) -> list[int]:
        return [i for i, (key, _) in enumerate(self._column_spec) if width >= self._hide_below.get(key, 0)]

    @property
    def shown_columns(self) -> list[str]:
        """The keys of the columns on screen, in order."""
        return [self._column_spec[i][0] for i in self._shown]

    def on_mount(self) -> None:
        # The table's own width is not known before the first layout: the screen's is close.
        self._shown = self._columns_for(self.size.width or self.app.size.width)
        self._add_columns()

    def _add_columns(self) -> None:
        for i in self._shown:
            key, label = self._column_spec[i]
            self.add_column(label, key=key, width=self._widths.get(key))

    def on_resize(self, event: events.Resize) -> None:
        if not self._hide_below or event.size.width == 0:  # 0: in a hidden tab, nothing to decide
            return
        shown = self._columns_for(event.size.width)
        if shown != self._shown:
            self._shown = shown
            self._rebuild()

    def _rebuild(self) -> None:
        """New columns: put every row back, the cursor on the same row."""
        selected = self.selected_key
        self.clear(columns=True)
        self._add_columns()
        for key, values in self._rows.items():
            self.add_row(*self._project(values), key=str(key))
        if selected is not None:
            try:
                self.move_cursor(row=self.get_row_index(selected), animate=False)
            except Exception:  # the row went meanwhile
                pass

    def _project(self, values: tuple[Any, ...]) -> list[Any]:
        return [values[i] for i in self._shown]

    # -- rows ------------------------------------------------------------------------

    def show(self, rows: Mapping[Hashable, Sequence[Any]]) -> None:
        """Show exactly `rows`, in their order: diff when the rows already shown are, in order, the
        start of `rows` (changes in place, new rows at the end), rebuild otherwise."""
        shown = list(self._rows)
        if shown != list(islice(rows, len(shown))):
            self.reset_rows(rows)
        else:
            self.sync(rows)

    def sync(self, rows: Mapping[Hashable, Sequence[Any]]) -> None:
        """Make the table show exactly `rows` (in their order for new rows).

        At most FILL_CHUNK new rows are added per call and the rest after the next redraw: the
        first visit to a screen after a thousand chargers connected shows its first page at once
        instead of stalling the shared event loop for the whole table."""
        self._target = rows
        for gone in [k for k in self._rows if k not in rows]:
            try:
                self.remove_row(str(gone))
            except Exception:  # already gone
                pass
            del self._rows[gone]
        added = 0
        for key, values in rows.items():
            values = tuple(values)
            old = self._rows.get(key)
            if old is None:
                if added >= self.FILL_CHUNK:
                    if not self._filling:
                        self._filling = True
                        self.call_after_refresh(self._fill_more)
                    continue
                added += 1
                self.add_row(*self._project(values), key=str(key))
            elif old != values:
                self._update_row(str(key), old, values)
            self._rows[key] = values

    def _update_row(self, key: str, old: tuple[Any, ...], new: tuple[Any, ...]) -> None:
        for i in self._shown:
            if old[i] == new[i]:
                continue
            column_key = self._column_spec[i][0]
            column = self.columns.get(ColumnKey(column_key))
            # Widen only when the new value needs it: a narrower one would make DataTable measure
            # the whole column again, on every meter value of a thousand chargers.
            grow = column is not None and column.auto_width and cell_width(new[i]) > column.content_width
            try:
                self.update_cell(key, column_key, new[i], update_width=grow)
            except CellDoesNotExist:
                pass

    def _fill_more(self) -> None:
        self._filling = False
        if self._target is not None and self.is_attached:
            self.sync(self._target)

    def append(self, rows: Mapping[Hashable, Sequence[Any]]) -> None:
        """Add new rows at the end (a log): no diffing, no removals."""
        self._target = None
        for key, values in rows.items():
            values = tuple(values)
            self.add_row(*self._project(values), key=str(key))
            self._rows[key] = values

    def reset_rows(self, rows: Mapping[Hashable, Sequence[Any]]) -> None:
        """Rebuild in the given order (after a filter or sort change)."""
        self.clear()
        self._rows.clear()
        self.sync(rows)

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            row_key: RowKey = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except CellDoesNotExist:
            return None
        return row_key.value
