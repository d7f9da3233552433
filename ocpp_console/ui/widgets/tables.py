"""Keep a DataTable in step with a dict of rows, touching only the cells that changed.

Rebuilding a table of hundreds of rows several times a second stalls the event loop the
central system shares; diffing keeps a refresh proportional to what actually changed.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from itertools import islice
from typing import Any

from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowKey


class SyncedTable(DataTable[Any]):
    FILL_CHUNK = 150  # a few screens of rows; adding one costs ~0.1 ms
    DEFAULT_CSS = """
    SyncedTable { height: 1fr; }
    """

    def __init__(self, columns: Sequence[tuple[str, str] | tuple[str, str, int]], **kwargs: Any) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
        # (key, label) or (key, label, width): a fixed width spares a re-layout when rows arrive
        self._column_spec = [(c[0], c[1]) for c in columns]
        self._widths = {c[0]: c[2] for c in columns if len(c) > 2}
        self._rows: dict[Hashable, tuple[Any, ...]] = {}
        self._target: Mapping[Hashable, Sequence[Any]] | None = None
        self._filling = False

    def on_mount(self) -> None:
        for key, label in self._column_spec:
            self.add_column(label, key=key, width=self._widths.get(key))

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
        keys = [k for k, _ in self._column_spec]
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
                self.add_row(*values, key=str(key))
            elif old != values:
                for column, (a, b) in zip(keys, zip(old, values)):
                    if a != b:
                        try:
                            self.update_cell(str(key), column, b)
                        except CellDoesNotExist:
                            pass
            self._rows[key] = values

    def _fill_more(self) -> None:
        self._filling = False
        if self._target is not None and self.is_attached:
            self.sync(self._target)

    def append(self, rows: Mapping[Hashable, Sequence[Any]]) -> None:
        """Add new rows at the end (a log): no diffing, no removals."""
        self._target = None
        for key, values in rows.items():
            values = tuple(values)
            self.add_row(*values, key=str(key))
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
