"""Load: the site limit the running sessions share, what each gets and draws, and why.

Read from the site's load manager (Site.site_load) when it decides (a LoadDecided event) or a car's
meter values move, at most a few times a second while the screen is in front; its chart keeps the
last hour, asking the site only for the points it has not seen."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.widgets import Footer, Header, Static

from ocpp_console.timeutil import now_ts
from ocpp_console.ui.live import compact_time, format_duration, parse_iso
from ocpp_console.ui.screens.base import LiveScreen
from ocpp_console.ui.widgets.chart import TimeChart
from ocpp_console.ui.widgets.tables import SyncedTable
from ocpp_console.ui.widgets.tiles import Tile

CHART_SECONDS = 3600
COLUMNS = [
    ("charger", "Charger"), ("connector", "#"), ("tag", "Id tag"), ("share", "Share"), ("measured", "Measured"),
    ("state", "State"), ("why", "Why"), ("turn", "Next turn"), ("turn_at", "At"),
]
HIDE_BELOW = {"tag": 100, "turn_at": 100}  # at 80 columns the reason and the next turn matter more
STATE_STYLES = {"charging": "bold green", "paused": "bold yellow", "fixed": "bold red", "new": "dim"}
REASONS = {
    "share": "its share of the limit",
    "cap": "capped: its car draws less",
    "max": "its charger's maximum",
    "fixed load": "refuses profiles: counted at its maximum",
}
OFF_TEXT = (
    "Load management is off: every car charges at its charger's maximum, and nothing keeps the site "
    "under its grid connection. Press l (Set site limit) to share a limit between the running "
    "sessions now; to keep one across restarts, start the central system with --site-limit-kw 40 "
    "(or OCPP_CONSOLE_SITE_LIMIT_KW, or site_limit_kw in its TOML file)."
)


def kw(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} kW"


def why(session: dict[str, Any]) -> str:
    reason = str(session.get("reason") or "")
    if session["state"] == "fixed":
        return REASONS["fixed load"] if reason == "fixed load" else f"refuses profiles ({reason})"
    if reason.startswith("paused: "):
        return reason.removeprefix("paused: ")
    return REASONS.get(reason, reason)


def next_turn(at: str | None, now: float) -> tuple[str, str]:
    """When a paused session's turn comes: in how long, and at what time."""
    moment = parse_iso(at)
    if moment is None:
        return "", ""
    return f"in {format_duration(moment.timestamp() - now)}", compact_time(at)


class LoadScreen(LiveScreen):
    TOPICS = ("load", "transactions")  # a decision, or a car's meter values (its measured power)
    ALWAYS_REFRESH_EVERY = 5.0  # the chart moves on, the next turn comes closer
    SCREENS_IN_FOOTER = "always"  # one key of its own: room for 1-6
    BINDINGS = [Binding("l", "set_limit", "Set limit")]
    AUTO_FOCUS = "SyncedTable"

    def compose(self) -> ComposeResult:
        yield Header()
        with Grid(id="load-tiles"):
            yield Tile("Site limit", "l-limit")
            yield Tile("Allocated", "l-allocated")
            yield Tile("Measured", "l-measured")
            yield Tile("Sessions", "l-sessions")
            yield Tile("Failsafe each", "l-safe")
        yield Static(OFF_TEXT, id="load-off")
        yield Static("", id="load-fixed")
        yield TimeChart("Site power against the limit, last hour (kW)", x_window=60, id="load-chart")
        yield SyncedTable(COLUMNS, hide_below=HIDE_BELOW, id="load-sessions")
        yield Footer()

    def on_mount(self) -> None:
        self.load: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []  # the decisions of the last hour, oldest first

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "-narrow")

    def action_set_limit(self) -> None:
        self.console.set_site_limit()

    async def refresh_data(self) -> None:
        since = self.history[-1]["at"] if self.history else ""  # "": every point the site kept
        load = await self.console.site.site_load(since)
        self.load = load
        now = now_ts()
        self.history = [p for p in [*self.history, *load.get("history", [])]
                        if (moment := parse_iso(p["at"])) is not None and now - moment.timestamp() <= CHART_SECONDS]
        enabled = load["limit_kw"] is not None
        self.set_class(not enabled, "-off")
        self._tiles(load, enabled)
        fixed = load.get("fixed_chargers") or []
        self.query_one("#load-fixed", Static).update(Text(
            "Fixed loads (they refuse charging profiles: counted at their maximum): " + ", ".join(fixed), style="bold red"
        ) if fixed else "")
        self.set_class(bool(fixed), "-fixed")
        self._chart(now)
        rows = {}
        for s in load["sessions"]:
            state = s["state"] if enabled else "-"
            rows[s["transaction_id"]] = (
                s["charger_id"], str(s["connector_id"]), s["id_tag"],
                kw(s["allocated_kw"]) if enabled else "-", kw(s["measured_kw"]),
                Text(state, style=STATE_STYLES.get(state, "")),
                why(s) if enabled else "load management is off",
                *(next_turn(s["next_turn_at"], now) if enabled and s["state"] == "paused" else ("", "")),
            )
        self.query_one("#load-sessions", SyncedTable).show(rows)

    def _tiles(self, load: dict[str, Any], enabled: bool) -> None:
        sessions = load["sessions"]
        paused = sum(1 for s in sessions if s["state"] == "paused")
        over = enabled and load["measured_kw"] > load["limit_kw"]
        tiles = {
            "l-limit": (kw(load["limit_kw"]) if enabled else "off", "bold" if enabled else "bold yellow"),
            "l-allocated": (kw(load["allocated_kw"]) if enabled else "-", ""),
            "l-measured": (kw(load["measured_kw"]), "bold red" if over else "bold"),
            "l-sessions": (f"{len(sessions)} · {paused} paused" if paused else str(len(sessions)),
                           "bold yellow" if paused else ""),
            "l-safe": (kw(load["safe_kw"]), ""),
        }
        for tile_id, (value, style) in tiles.items():
            self.query_one(f"#{tile_id}", Tile).set(value, style)

    def _chart(self, now: float) -> None:
        xs = [(parse_iso(p["at"]).timestamp() - now) / 60 for p in self.history]  # type: ignore[union-attr]
        series = [
            ("measured", xs, [p["measured_kw"] for p in self.history]),
            ("allocated", xs, [p["allocated_kw"] for p in self.history]),
        ]
        if self.load is not None and self.load["limit_kw"] is not None:  # now: decisions may be 30 s apart
            xs = [*xs, 0.0]
            series = [("measured", xs, [*series[0][2], self.load["measured_kw"]]),
                      ("allocated", xs, [*series[1][2], self.load["allocated_kw"]])]
        points = [*self.history, {"limit_kw": self.load["limit_kw"]}] if self.load is not None else self.history
        limits = [(x, p["limit_kw"]) for x, p in zip(xs, points) if p["limit_kw"] is not None]
        if limits:
            series.append(("limit", [x for x, _ in limits], [y for _, y in limits]))
        self.query_one("#load-chart", TimeChart).set_series(series)
