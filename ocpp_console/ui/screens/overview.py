"""Site overview: the whole site at a glance."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal
from textual.widgets import Footer, Header

from ocpp_console.site import format_money
from ocpp_console.timeutil import now_ts
from ocpp_console.ui.live import fmt_kwh, local_time
from ocpp_console.ui.screens.base import LiveScreen
from ocpp_console.ui.widgets.chart import TimeChart
from ocpp_console.ui.widgets.tables import SyncedTable
from ocpp_console.ui.widgets.tiles import Tile

POWER_SAMPLE_SECONDS = 5.0
LEVEL_STYLES = {"info": "", "warning": "yellow", "error": "bold red"}


class OverviewScreen(LiveScreen):
    TOPICS = ("chargers", "transactions", "feed")
    ALWAYS_REFRESH_EVERY = POWER_SAMPLE_SECONDS
    SCREENS_IN_FOOTER = "always"

    def compose(self) -> ComposeResult:
        yield Header()
        with Grid(id="tiles"):
            yield Tile("Online", "t-online")
            yield Tile("Offline", "t-offline")
            yield Tile("Charging", "t-charging")
            yield Tile("Faulted", "t-faulted")
            yield Tile("Pending", "t-pending")
            yield Tile("Sessions", "t-sessions")
            yield Tile("Site power", "t-power")
            yield Tile("Energy today", "t-energy")
            yield Tile("Revenue today", "t-revenue")
        with Horizontal(id="overview-body"):
            yield TimeChart("Site power, last hour (kW)", x_window=60, id="site-power")
            yield SyncedTable([("at", "Time"), ("charger", "Charger"), ("text", "Event")], id="feed", zebra_stripes=False)
        yield Footer()

    def on_mount(self) -> None:
        self._feed_version = -1
        self.live.sample_site_power()
        self.set_interval(POWER_SAMPLE_SECONDS, self.live.sample_site_power)

    def _revenue(self) -> tuple[str, str]:
        revenue = self.live.revenue_today
        if not revenue:
            return format_money(0, self.console.site.info().currency), ""
        return " + ".join(format_money(v, c) for c, v in sorted(revenue.items())), "bold"

    @staticmethod
    def _sessions(sessions: int, stale: int) -> tuple[str, str]:
        """Open transactions, and how many of them nothing says still run (charger offline or rebooted)."""
        if not stale:
            return str(sessions), ""
        return f"{sessions} · {stale} stale", "bold yellow"

    def on_resize(self) -> None:
        self.set_class(self.size.width < 140, "-narrow")

    async def refresh_data(self) -> None:
        counts = self.live.counts()
        tiles = {
            "t-online": (str(counts["online"]), "bold green" if counts["online"] else ""),
            "t-offline": (str(counts["offline"]), "grey50"),
            "t-charging": (str(counts["charging"]), "bold dodger_blue1" if counts["charging"] else ""),
            "t-faulted": (str(counts["faulted"]), "bold red" if counts["faulted"] else ""),
            "t-pending": (str(counts["pending"]), "bold yellow" if counts["pending"] else ""),
            "t-sessions": self._sessions(counts["sessions"], counts["stale"]),
            "t-power": (f"{self.live.power_now_kw():.1f} kW", "bold"),
            "t-energy": (fmt_kwh(self.live.energy_today_wh), ""),
            "t-revenue": self._revenue(),
        }
        for tile_id, (value, style) in tiles.items():
            self.query_one(f"#{tile_id}", Tile).set(value, style)
        now = now_ts()
        history = [(t, kw) for t, kw in self.live.site_power if now - t <= 3600]
        self.query_one(TimeChart).set_series(
            [("kW", [(t - now) / 60 for t, _ in history], [kw for _, kw in history])]
        )
        if self.live.versions["feed"] == self._feed_version:
            return  # rebuilding the event list re-lays the whole screen: only when it changed
        self._feed_version = self.live.versions["feed"]
        rows = {}
        for index, item in enumerate(list(self.live.feed)[:100]):
            rows[f"{item.at}-{index}-{item.charger_id}"] = (
                local_time(item.at), item.charger_id, Text(item.text, style=LEVEL_STYLES.get(item.level, ""))
            )
        self.query_one("#feed", SyncedTable).reset_rows(rows)
