"""Keep a DataTable in step with a dict of rows, touching only the cells that changed.

Rebuilding a table of hundreds of rows several times a second stalls the event loop the
central system shares; diffing keeps a refresh proportional to what actually changed.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowKey


class SyncedTable(DataTable[Any]):
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

    def on_mount(self) -> None:
        for key, label in self._column_spec:
            self.add_column(label, key=key, width=self._widths.get(key))

    def sync(self, rows: Mapping[Hashable, Sequence[Any]]) -> None:
        """Make the table show exactly `rows` (in their order for new rows)."""
        keys = [k for k, _ in self._column_spec]
        for gone in [k for k in self._rows if k not in rows]:
            try:
                self.remove_row(str(gone))
            except Exception:  # already gone
                pass
            del self._rows[gone]
        for key, values in rows.items():
            values = tuple(values)
            old = self._rows.get(key)
            if old is None:
                self.add_row(*values, key=str(key))
            elif old != values:
                for column, (a, b) in zip(keys, zip(old, values)):
                    if a != b:
                        try:
                            self.update_cell(str(key), column, b)
                        except CellDoesNotExist:
                            pass
            self._rows[key] = values

    def append(self, rows: Mapping[Hashable, Sequence[Any]]) -> None:
        """Add new rows at the end (a log): no diffing, no removals."""
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
