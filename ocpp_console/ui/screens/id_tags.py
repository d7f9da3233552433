"""Id tags: list, add, edit, block/unblock; the balance column is the wallet."""

from __future__ import annotations

from decimal import Decimal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Input

from ocpp_console.site import format_money, to_minor
from ocpp_console.ui.live import local_time, seen_text
from ocpp_console.ui.screens.base import FilterMixin, LiveScreen
from ocpp_console.ui.widgets.tables import SyncedTable

TAG_STYLES = {"Accepted": "green", "Blocked": "bold red", "Expired": "yellow", "Invalid": "grey50"}


class IdTagsScreen(FilterMixin, LiveScreen):
    TOPICS = ("transactions", "tags")
    BINDINGS = [  # in the footer in this order: the most used first
        Binding("enter", "edit", "Edit", show=False),  # the table's own Enter shows; this one acts unfocused
        Binding("n", "add", "Add"),
        Binding("b", "toggle_block", "Block"),
        Binding("t", "top_up", "Top-up"),
        *FilterMixin.FILTER_BINDINGS,
        Binding("e", "export", "Export"),
    ]
    NARROW_FOOTER_HIDES = frozenset({"e"})

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: tag, status, parent, note ...", id="filter", classes="filter")
        yield SyncedTable(
            [("tag", "Id tag"), ("status", "Status"), ("expiry", "Expires"), ("parent", "Parent"),
             ("balance", "Balance"), ("refused", "Last refusal"), ("note", "Note")],
            id="tags", open_label="Edit",
        )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(SyncedTable).focus()

    async def refresh_data(self) -> None:
        rows = {}
        all_tags = await self.console.site.id_tags()
        self._tags = {row["id_tag"]: row for row in all_tags}
        minimum = self._minimum()
        for row in all_tags:
            refused = refusal_text(row)
            status = self._status(row, minimum)
            if not self.matches(row["id_tag"], status, row["parent_id_tag"], row["note"], refused):
                continue
            rows[row["id_tag"]] = (
                row["id_tag"], status,
                local_time(row["expiry_date"], True) if row["expiry_date"] else "-",
                row["parent_id_tag"] or "-", self._balance(row), refused, row["note"] or "",
            )
        table = self.query_one(SyncedTable)
        table.show(rows)

    def _minimum(self) -> int | None:
        """The wallet minimum in minor units, None when wallets are not checked (as the central
        system decides at Authorize and StartTransaction)."""
        info = self.console.site.info()
        return to_minor(Decimal(info.min_balance), info.currency) if info.wallet else None

    def _wallet_balance(self, row: dict) -> int:
        """The balance of the wallet the tag spends: its fleet account's (the root of its parents)."""
        seen = {row["id_tag"]}
        while row["parent_id_tag"] and row["parent_id_tag"] in self._tags and row["parent_id_tag"] not in seen:
            row = self._tags[row["parent_id_tag"]]
            seen.add(row["id_tag"])
        return int(row["balance"])

    def _status(self, row: dict, minimum: int | None) -> Text:
        text = Text(row["status"], style=TAG_STYLES.get(row["status"], ""))
        if row["status"] == "Accepted" and minimum is not None and self._wallet_balance(row) < minimum:
            text.append(" · wallet below minimum", style="bold red")  # answered Blocked until topped up
        return text

    def _balance(self, row: dict) -> Text:
        if row["parent_id_tag"] and row["parent_id_tag"] in self._tags and not row["balance"]:
            return Text(f"→ {row['parent_id_tag']}", style="dim")  # spends the fleet account's wallet
        currency = self.console.site.info().currency
        return Text(format_money(row["balance"], currency), style="red" if row["balance"] < 0 else "")

    async def refilter(self) -> None:
        await self.refresh_data()

    def action_add(self) -> None:
        self.console.edit_id_tag(None)

    def action_edit(self) -> None:
        key = self.query_one(SyncedTable).selected_key
        if key is None:
            self.notify("No id tag selected", severity="warning")
            return
        self.console.edit_id_tag(self._tags.get(key))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_edit()

    def action_top_up(self) -> None:
        key = self.query_one(SyncedTable).selected_key
        if key is None:
            self.notify("No id tag selected", severity="warning")
            return
        self.console.wallet_movement(key)

    def action_export(self) -> None:
        self.console.export_csv("ledger")

    async def action_toggle_block(self) -> None:
        key = self.query_one(SyncedTable).selected_key
        row = self._tags.get(key) if key else None
        if row is None:
            self.notify("No id tag selected", severity="warning")
            return
        status = "Accepted" if row["status"] == "Blocked" else "Blocked"
        await self.console.save_id_tag({**row, "status": status})


def refusal_text(row: dict) -> Text | str:
    """The tag's last refusal: what it was answered and why, where and when."""
    if not row.get("refused_status"):
        return "-"
    why = f"{row['refused_status']}: {row['refused_reason']}" if row["refused_reason"] else row["refused_status"]
    text = Text(why, style=TAG_STYLES.get(row["refused_status"], "yellow"))
    text.append(f" at {row['refused_action']} on {row['refused_charger'] or '?'}, {seen_text(row['refused_at'])}",
                style="dim")
    return text
