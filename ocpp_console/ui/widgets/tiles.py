"""A tile: one figure with its label (the overview's and the load screen's headline numbers)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Static


class Tile(Vertical):
    def __init__(self, label: str, tile_id: str) -> None:
        super().__init__(id=tile_id, classes="tile")
        self.label = label

    def compose(self) -> ComposeResult:
        yield Label(self.label, classes="tile-label")
        yield Static("-", classes="tile-value")

    def set(self, value: str, style: str = "") -> None:
        self.query_one(".tile-value", Static).update(Text(value, style=style))
