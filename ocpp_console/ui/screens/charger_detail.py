"""Charger detail: identity, connectors, live charts, configuration, reservations, profiles."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from ocpp_console.secret_keys import mask_value
from ocpp_console.site import SiteError
from ocpp_console.timeutil import iso, now_ts
from ocpp_console.ui.live import ENERGY, POWER, SOC, ago, fmt_kw, local_time, parse_iso
from ocpp_console.ui.screens.base import TAB_BINDINGS, LiveScreen
from ocpp_console.ui.widgets.chart import TimeChart
from ocpp_console.ui.widgets.status import (
    DIAGNOSTICS_STEPS,
    FIRMWARE_STEPS,
    online_text,
    progress_text,
    registration_text,
    status_text,
)
from ocpp_console.ui.widgets.tables import SyncedTable


CHART_MINUTES = 60


def _with_time(text: Text, at: str | None) -> Text:
    if at:
        text.append(f"  {local_time(at)}", style="dim")
    return text


def _kv(rows: list[tuple[str, Any]]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, value in rows:
        table.add_row(key, value if isinstance(value, Text) else Text(str(value) if value not in (None, "") else "-"))
    return table


def _certificate_rows(row: dict[str, Any]) -> list[tuple[str, Any]]:
    """The client certificate our operator CA signed for the charger (security profile 3)."""
    if not row.get("certificate_pem"):
        return [("Certificate", Text("none", style="dim"))]
    expiry = row["certificate_expiry"]
    expired = expiry is not None and expiry < iso(datetime.now(timezone.utc))
    until = Text(local_time(expiry, True) if expiry else "-", style="red" if expired else "")
    if expired:
        until.append("  expired", style="bold red")
    return [("Certificate", f"serial {short_serial(row['certificate_serial'] or '-')}"), ("Certificate until", until)]


def short_serial(serial: str) -> str:
    """A serial of up to 40 hex digits fits no detail column: its ends tell certificates apart (the
    whole is in the API, `ca` output and the message log)."""
    return serial if len(serial) <= 20 else f"{serial[:8]}…{serial[-8:]}"


class ChargerDetailScreen(LiveScreen):
    TOPICS = ("chargers", "transactions", "commands", "received")
    ALWAYS_REFRESH_EVERY = 5.0
    AUTO_FOCUS = ""  # focused in on_mount, without the scroll to its centre that would hide the top
    BINDINGS = [  # in the footer in this order: the most used first
        Binding("escape", "app.pop_screen", "Back"),
        Binding("o", "actions", "Actions"),
        Binding("s", "action('remote_start')", "Start"),
        Binding("x", "remote_stop", "Stop"),
        *TAB_BINDINGS,
        Binding("r", "action('reset')", "Reset"),
        Binding("g", "action('get_config')", "Get config"),
        Binding("e", "edit_key", "Edit key"),
    ]
    NARROW_FOOTER_HIDES = frozenset({"r", "g", "e"})
    SCREENS_IN_FOOTER = "never"  # Esc goes back; 1-6 still work

    def __init__(self, charger_id: str) -> None:
        super().__init__()
        self.charger_id = charger_id
        self.row: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="detail"):
            with Horizontal(id="detail-top"):
                yield Static(id="identity", classes="panel")
                yield Static(id="state", classes="panel")
            yield SyncedTable(
                [("connector", "#"), ("status", "Status"), ("error", "Error"), ("info", "Info"), ("tx", "Transaction"),
                 ("power", "Power")],
                id="connectors", classes="short-table",
            )
            with TabbedContent(id="detail-tabs"):
                with TabPane("Power", id="tab-power"):
                    yield TimeChart("Power (kW)", x_window=CHART_MINUTES, id="chart-power")
                with TabPane("Energy", id="tab-energy"):
                    yield TimeChart("Energy register (kWh)", x_window=CHART_MINUTES, id="chart-energy")
                with TabPane("SoC", id="tab-soc"):
                    yield TimeChart("State of charge (%)", x_window=CHART_MINUTES, id="chart-soc")
                with TabPane("Configuration", id="tab-config"):
                    yield SyncedTable([("key", "Key"), ("value", "Value"), ("access", "Access")], id="config")
                with TabPane("Reservations", id="tab-reservations"):
                    yield SyncedTable(
                        [("id", "Id"), ("connector", "#"), ("tag", "Id tag"), ("expiry", "Expires"), ("status", "Status")],
                        id="reservations",
                    )
                with TabPane("Charging profiles", id="tab-profiles"):
                    yield SyncedTable(
                        [("id", "Profile"), ("connector", "#"), ("purpose", "Purpose"), ("stack", "Stack"),
                         ("limit", "Limit"), ("status", "Status")],
                        id="profiles",
                    )
                with TabPane("Received files", id="tab-received"):
                    yield SyncedTable([("name", "File (Enter: save a copy)"), ("size", "Size"), ("at", "Received")],
                                      id="received")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.charger_id
        self.query_one("#connectors", SyncedTable).focus(scroll_visible=False)

    async def refresh_data(self) -> None:
        site = self.console.site
        self.row = row = await site.charger(self.charger_id)
        view = self.live.chargers.get(self.charger_id)
        if row is None:
            self.query_one("#identity", Static).update(Text(f"{self.charger_id}: not in the database", style="red"))
            return
        self.query_one("#identity", Static).update(_kv([
            ("Charger", self.charger_id),
            ("Vendor / model", f"{row['vendor'] or '-'} / {row['model'] or '-'}"),
            ("Serial (CP / box)", f"{row['charge_point_serial'] or '-'} / {row['charge_box_serial'] or '-'}"),
            ("Firmware", row["firmware_version"]),
            ("ICCID / IMSI", f"{row['iccid'] or '-'} / {row['imsi'] or '-'}"),
            ("Meter", f"{row['meter_type'] or '-'} {row['meter_serial'] or ''}".strip()),
            ("Note", row["note"] or "-"),
        ]))
        self.query_one("#state", Static).update(_kv([
            ("Registration", registration_text(row["registration"])),
            ("Password", "set (HTTP Basic)" if row["has_password"] else "none"),
            ("Connection", online_text(bool(view.connected if view else row["connected"]))),
            # The host is what an engineer looks for; the ephemeral source port is noise.
            ("Address", (row["remote_address"] or "-").rsplit(":", 1)[0]),
            ("Last seen", ago(view.last_seen if view else row["last_seen"])),
            ("Firmware update", _with_time(progress_text(row["firmware_status"], FIRMWARE_STEPS), row["firmware_status_at"])),
            ("Diagnostics", _with_time(progress_text(row["diagnostics_status"], DIAGNOSTICS_STEPS), row["diagnostics_status_at"])),
            ("File transfer", (view.transfer if view else None) or "-"),
            ("Local list version", row["local_list_version"]),
            *_certificate_rows(row),
        ]))
        connectors = {}
        for c in await site.connectors(self.charger_id):
            live_c = view.connectors.get(c["connector_id"]) if view else None
            connectors[c["connector_id"]] = (
                str(c["connector_id"]),
                status_text(c["status"]),
                c["error_code"] if c["error_code"] != "NoError" else "-",
                c["info"] or "-",
                str(live_c.transaction_id) if live_c and live_c.transaction_id else "-",
                fmt_kw(live_c.power_w) if live_c else "-",
            )
        self.query_one("#connectors", SyncedTable).sync(connectors)
        await self._charts()
        config = {
            r["key"]: (r["key"], mask_value(r["key"], r["value"]) if r["known"] else Text("unknown key", style="dim"),
                       "read-only" if r["readonly"] else "read-write")
            for r in await site.configuration(self.charger_id)
        }
        self.query_one("#config", SyncedTable).sync(config)
        reservations = {
            r["id"]: (str(r["id"]), str(r["connector_id"]), r["id_tag"], local_time(r["expiry_date"], True), r["status"])
            for r in await site.reservations(self.charger_id)
        }
        self.query_one("#reservations", SyncedTable).sync(reservations)
        profiles = {}
        import json

        for p in await site.charging_profiles(self.charger_id):
            schedule = json.loads(p["profile"]).get("chargingSchedule", {})
            periods = schedule.get("chargingSchedulePeriod") or [{}]
            limit = f"{periods[0].get('limit', '-')} {schedule.get('chargingRateUnit', '')}"
            profiles[f"{p['connector_id']}-{p['profile_id']}"] = (
                str(p["profile_id"]), str(p["connector_id"]), p["purpose"], str(p["stack_level"]), limit, p["status"]
            )
        self.query_one("#profiles", SyncedTable).sync(profiles)
        received = {
            f["name"]: (f["name"], f"{f['size']:,} B", local_time(f["receivedAt"], True))
            for f in await site.received_files(self.charger_id)
        }
        self.query_one("#received", SyncedTable).sync(received)

    async def _charts(self) -> None:
        now = now_ts()
        since = iso(datetime.fromtimestamp(now - CHART_MINUTES * 60, timezone.utc))
        rows = await self.console.site.charger_samples_since(self.charger_id, since, (POWER, ENERGY, SOC))

        def series(measurand: str, scale: float) -> list[tuple[str, list[float], list[float]]]:
            by_connector: dict[int, tuple[list[float], list[float]]] = {}
            for row in rows:
                if row["measurand"] != measurand:
                    continue
                ts = parse_iso(row["timestamp"])
                if ts is None:
                    continue
                xs, ys = by_connector.setdefault(row["connector_id"], ([], []))
                xs.append((ts.timestamp() - now) / 60)
                ys.append(row["value_num"] * scale)
            return [(f"connector {c}", xs, ys) for c, (xs, ys) in sorted(by_connector.items())]

        self.query_one("#chart-power", TimeChart).set_series(series(POWER, 1 / 1000))
        self.query_one("#chart-energy", TimeChart).set_series(series(ENERGY, 1 / 1000))
        self.query_one("#chart-soc", TimeChart).set_series(series(SOC, 1))

    # -- actions ---------------------------------------------------------------------------

    def context(self) -> dict[str, Any]:
        view = self.live.chargers.get(self.charger_id)
        ctx: dict[str, Any] = {"local_list_version": (self.row or {}).get("local_list_version")}
        if view:
            running = [c for c in view.connectors.values() if c.transaction_id]
            if running:
                ctx["transaction_id"], ctx["connector_id"] = running[0].transaction_id, running[0].connector_id
        return ctx

    def action_actions(self) -> None:
        self.console.pick_action(self.charger_id, self.context())

    def action_action(self, key: str) -> None:
        self.console.start_action(self.charger_id, key, self.context())

    def action_remote_stop(self) -> None:
        self.console.start_action(self.charger_id, "remote_stop", self.context())

    def action_edit_key(self) -> None:
        table = self.query_one("#config", SyncedTable)
        key = table.selected_key
        ctx = self.context()
        if key is not None:
            ctx["key"] = key
            value = table._rows.get(key, (None, None))[1]
            ctx["value"] = value if isinstance(value, str) else ""
        self.console.start_action(self.charger_id, "change_config", ctx)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "config":
            self.action_edit_key()
        elif event.data_table.id == "received":
            name = self.query_one("#received", SyncedTable).selected_key
            if name is not None:
                self._save_received(str(name))

    @work(group="save-received")
    async def _save_received(self, name: str) -> None:
        """A copy of an uploaded file in the user's downloads folder (attached too: read over the API)."""
        import platformdirs

        try:
            content = await self.console.site.received_file(self.charger_id, name)
            folder = Path(platformdirs.user_downloads_dir())
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{self.charger_id.replace('/', '_')}-{name}"
            await asyncio.to_thread(target.write_bytes, content)
        except (SiteError, OSError) as exc:
            self.notify(f"{name} was not saved: {exc}", title=self.charger_id, severity="error")
            return
        self.notify(f"{name} saved as {target}", title=self.charger_id)
