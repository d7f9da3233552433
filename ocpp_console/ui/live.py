"""The console's live picture of the site, kept from the central system's events.

Events arrive on every charger message; this model only records them (cheap) and bumps a
version number per topic. Screens look at the versions a few times a second and redraw what
changed, so a busy site never floods the screen (see performance-notes.md).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ocpp_console.site import RunningTx, Site, SiteError, Tariff, as_site, is_stale, running_tx
from ocpp_console.site import events as ev
from ocpp_console.timeutil import iso, now_iso, now_ts, utcnow

POWER = "Power.Active.Import"
ENERGY = "Energy.Active.Import.Register"
SOC = "SoC"
HISTORY_SECONDS = 3600
STALE_SAMPLE_SECONDS = 900


@dataclass
class ConnectorView:
    connector_id: int
    status: str = "Unknown"
    error_code: str = "NoError"
    info: str | None = None
    power_w: float | None = None
    transaction_id: int | None = None
    updated_at: str | None = None  # our time of its last status


def transfer_text(e: ev.FileTransfer) -> str:
    """`firmware sim-2.0.0.bin: 128 of 293 KiB (http)`, `... received`, `... failed: why`."""
    what = f"{e.kind} {e.name or '(unnamed)'}"
    size = f"{e.bytes / 1024:.0f} of {e.total / 1024:.0f} KiB" if e.total else f"{e.bytes / 1024:.0f} KiB"
    if e.error:
        return f"{what}: failed after {size} ({e.protocol}): {e.error}"
    if e.done:
        return f"{what}: {'sent' if e.kind == 'firmware' else 'received'}, {e.bytes / 1024:.0f} KiB ({e.protocol})"
    return f"{what}: {size} so far ({e.protocol})"


@dataclass
class ChargerView:
    id: str
    registration: str = "Pending"
    connected: bool = False
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    last_seen: str | None = None
    has_password: bool = False
    note: str | None = None
    last_boot: str | None = None  # our time of its last BootNotification
    transfer: str | None = None  # the file it fetches from or sends to our file server now (or last)
    connectors: dict[int, ConnectorView] = field(default_factory=dict)
    version: int = 0  # bumped on every change, so screens redraw only the chargers that changed

    def connector(self, connector_id: int) -> ConnectorView:
        if connector_id not in self.connectors:
            self.connectors[connector_id] = ConnectorView(connector_id)
        return self.connectors[connector_id]

    @property
    def power_w(self) -> float:
        return sum(c.power_w or 0.0 for c in self.connectors.values() if c.connector_id > 0)

    @property
    def faulted(self) -> bool:
        return any(c.status == "Faulted" for c in self.connectors.values())

    @property
    def charging(self) -> bool:
        return any(c.status == "Charging" for c in self.connectors.values() if c.connector_id > 0)


@dataclass
class FeedItem:
    at: str
    charger_id: str
    text: str
    level: str = "info"  # info | warning | error


class LiveSite:
    def __init__(self, site: Site | Any) -> None:
        self.site = as_site(site)  # a CentralSystem is wrapped (as_site): the model reads only the Site
        self.chargers: dict[str, ChargerView] = {}
        self.running: dict[int, RunningTx] = {}
        self.feed: deque[FeedItem] = deque(maxlen=200)
        self.frames: deque[tuple[int, ev.MessageLogged]] = deque(maxlen=5000)  # (sequence number, frame)
        self._frame_seq = 0
        self.site_power: deque[tuple[float, float]] = deque(maxlen=HISTORY_SECONDS)  # (epoch s, kW)
        self.finished_today_wh = 0.0
        self.revenue_today: dict[str, int] = {}  # currency -> minor units of settled orders
        self._tasks: set[asyncio.Task[None]] = set()
        self.versions: dict[str, int] = {"chargers": 0, "transactions": 0, "feed": 0, "log": 0, "commands": 0, "tags": 0, "orders": 0, "load": 0, "received": 0}
        self.last_command: ev.CommandFinished | None = None
        self.load_summary: ev.LoadDecided | None = None  # the last decision of the site's load manager
        # Outcomes the operator waits for after a command (a Remote Start's transaction) are also
        # told as a notification: (text, title, severity); the app sets it.
        self.announce: Callable[[str, str, str], None] | None = None
        self._reloading: asyncio.Task[None] | None = None
        # Versions of removed chargers: one that comes back continues from there, so that a screen
        # never takes its new row for the old one it cached.
        self._retired: dict[str, int] = {}
        self._reload_again = False
        self._resync_pending = False  # a full read after lost events failed: the next change does it
        self._unsubscribe = self.site.subscribe(self._on_event)

    def close(self) -> None:
        self._unsubscribe()

    def _bump(self, *topics: str) -> None:
        for topic in topics:
            self.versions[topic] += 1

    # -- loading what the database already holds -------------------------------------

    async def load(self) -> None:
        """The site as it is now, and the last hour of its power (before the first screen)."""
        await self._read_everything(with_history=True)

    async def _power_history(self, site: Site) -> list[tuple[float, float]]:
        """The last hour of site power from stored meter values, a point per minute, so the
        overview chart is not empty after a restart."""
        now = now_ts()
        since = iso(datetime.fromtimestamp(now - HISTORY_SECONDS, timezone.utc))
        latest: dict[tuple[str, int], tuple[float, float]] = {}  # connector -> (time, kW)
        per_minute: dict[int, float] = {}
        for row in await site.power_samples_since(since):
            ts = parse_iso(row["timestamp"])
            if ts is None:
                continue
            t = ts.timestamp()
            latest[(row["charger_id"], row["connector_id"])] = (t, row["value_num"] / 1000)
            # A connector's last reading counts for a while, not after its session has gone quiet.
            per_minute[int(t // 60)] = sum(kw for seen, kw in latest.values() if t - seen <= STALE_SAMPLE_SECONDS)
        return [(minute * 60.0, kw) for minute, kw in sorted(per_minute.items()) if now - minute * 60 <= HISTORY_SECONDS]

    def charger(self, charger_id: str) -> ChargerView:
        if charger_id not in self.chargers:
            self.chargers[charger_id] = ChargerView(charger_id, version=self._retired.pop(charger_id, -1) + 1)
        return self.chargers[charger_id]

    # -- events ------------------------------------------------------------------------

    def _note(self, charger_id: str, text: str, level: str = "info") -> None:
        self.feed.appendleft(FeedItem(now_iso(), charger_id, text, level))
        self._bump("feed")

    def _on_event(self, event: ev.Event) -> None:
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        if handler is not None:
            handler(event)
            view = self.chargers.get(event.charger_id)
            if view is not None and not isinstance(event, ev.MessageLogged):
                view.version += 1

    def _add_frame(self, e: ev.MessageLogged) -> None:
        self._frame_seq += 1
        self.frames.append((self._frame_seq, e))

    def _on_MessageLogged(self, e: ev.MessageLogged) -> None:
        self._add_frame(e)
        self._bump("log")
        if e.direction == "in":
            self._seen(e.charger_id, e.timestamp or now_iso())

    def _seen(self, charger_id: str, at: str) -> None:
        """Any frame from a charger (a heartbeat too) is a sign of life; redrawn when the second shown changes."""
        view = self.chargers.get(charger_id)
        if view is None or (view.last_seen or "")[:19] == at[:19]:
            return
        view.last_seen = at
        view.version += 1
        self._bump("chargers")

    def _bump_sessions_of(self, view: ChargerView | None) -> None:
        """Whether a session is stale follows its charger's link, boots and statuses."""
        if view is not None and any(c.transaction_id for c in view.connectors.values()):
            self._bump("transactions")

    def _on_ChargerConnected(self, e: ev.ChargerConnected) -> None:
        view = self.charger(e.charger_id)
        view.connected = True
        view.last_seen = now_iso()
        self._bump("chargers")
        self._bump_sessions_of(view)

    def _on_ChargerDisconnected(self, e: ev.ChargerDisconnected) -> None:
        view = self.chargers.get(e.charger_id)  # None: removed (from the shell) while it was connected
        if view is not None:
            view.connected = False
            for connector in view.connectors.values():
                connector.power_w = None
        self._note(e.charger_id, f"disconnected (code {e.code})", "warning")
        self._bump("chargers")
        self._bump_sessions_of(view)

    def _on_ChargerBooted(self, e: ev.ChargerBooted) -> None:
        view = self.charger(e.charger_id)
        view.registration, view.vendor, view.model, view.firmware = e.registration, e.vendor, e.model, e.firmware_version
        view.last_seen = view.last_boot = now_iso()
        self._bump_sessions_of(view)
        level = "info" if e.registration == "Accepted" else "warning"
        self._note(e.charger_id, f"booted: {e.registration} ({e.vendor} {e.model}, fw {e.firmware_version})", level)
        self._bump("chargers")

    def _on_RegistrationChanged(self, e: ev.RegistrationChanged) -> None:
        self.charger(e.charger_id).registration = e.registration
        self._note(e.charger_id, f"registration set to {e.registration}")
        self._bump("chargers")

    def _on_StatusChanged(self, e: ev.StatusChanged) -> None:
        view = self.charger(e.charger_id)
        view.last_seen = now_iso()
        connector = view.connector(e.connector_id)
        connector.status, connector.error_code, connector.info = e.status, e.error_code, e.info
        connector.updated_at = now_iso()
        if connector.transaction_id:
            self._bump("transactions")
        if e.status != "Charging":
            connector.power_w = None if e.status in ("Available", "Unavailable", "Faulted") else connector.power_w
        if e.status == "Faulted":
            self._note(e.charger_id, f"connector {e.connector_id} faulted: {e.error_code} {e.info or ''}".strip(), "error")
        self._bump("chargers")

    def _on_MeterSample(self, e: ev.MeterSample) -> None:
        view = self.charger(e.charger_id)
        view.last_seen = now_iso()
        connector = view.connector(e.connector_id)
        if POWER in e.values:
            connector.power_w = e.values[POWER]
        tx = self.running.get(e.transaction_id) if e.transaction_id else None
        if tx is not None:
            self._apply(tx, e.values)
            self._bump("transactions")
        self._bump("chargers")

    def _apply(self, tx: RunningTx, values: dict[str, float]) -> None:
        tx.apply(values)
        if POWER in values:
            self.charger(tx.charger_id).connector(tx.connector_id).power_w = values[POWER]

    def _on_TransactionStarted(self, e: ev.TransactionStarted) -> None:
        self.running[e.transaction_id] = RunningTx(
            e.transaction_id, e.charger_id, e.connector_id, e.id_tag, e.meter_start, now_iso(), received=now_iso()
        )
        self.charger(e.charger_id).connector(e.connector_id).transaction_id = e.transaction_id
        self._note(e.charger_id, f"transaction {e.transaction_id} started on connector {e.connector_id} by {e.id_tag}")
        self._bump("transactions", "chargers")
        # meterStart is in the database; fetch it so live energy is right from the first sample
        task = asyncio.ensure_future(self._fill_meter_start(e.transaction_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill_meter_start(self, transaction_id: int) -> None:
        row = await self.site.transaction(transaction_id)
        tx = self.running.get(transaction_id)
        if row is not None and tx is not None:
            # a meter value applied meanwhile counted from the event's meter start: keep its register
            tx.energy_wh = max(0.0, tx.energy_wh + tx.meter_start - row["meter_start"]) if tx.energy_wh else 0.0
            tx.meter_start, tx.started, tx.received = row["meter_start"], row["start_timestamp"], row["started_at"]
            tx.tariff = Tariff.from_json(row["tariff"]) if row["tariff"] else None

    def _on_TransactionStopped(self, e: ev.TransactionStopped) -> None:
        tx = self.running.pop(e.transaction_id, None)
        if tx is not None:
            connector = self.charger(tx.charger_id).connector(tx.connector_id)
            if connector.transaction_id == tx.id:  # a superseding one may already have taken it
                connector.transaction_id = None
                connector.power_w = None
        if e.energy_wh is not None and e.energy_wh > 0:
            self.finished_today_wh += e.energy_wh
        if e.cost_total is not None and e.currency:
            self.revenue_today[e.currency] = self.revenue_today.get(e.currency, 0) + e.cost_total
        kwh = f"{(e.energy_wh or 0) / 1000:.2f} kWh" if e.energy_wh is not None else "unknown energy"
        level = "info" if e.known and not e.closed_by else "warning"
        verb = "closed" if e.closed_by else "stopped"
        self._note(e.charger_id, f"transaction {e.transaction_id} {verb} ({e.reason}): {kwh}", level)
        self._bump("transactions", "chargers", "orders")

    def _on_TransactionSettledAgain(self, e: ev.TransactionSettledAgain) -> None:
        self.finished_today_wh += e.energy_delta_wh or 0
        if e.cost_delta and e.currency:
            self.revenue_today[e.currency] = self.revenue_today.get(e.currency, 0) + e.cost_delta
        self._note(e.charger_id, f"transaction {e.transaction_id}: late StopTransaction, settled again", "warning")
        self._bump("orders")

    def _on_ExternalChange(self, e: ev.ExternalChange) -> None:
        if self._resync_pending:
            self._on_SiteResynced(ev.SiteResynced(""))
        self._bump("tags", "load")  # the id tags screen queries the store on each refresh
        if self._reloading is not None and not self._reloading.done():
            self._reload_again = True  # changes that land during a reload are read by one more
            return
        self._reloading = asyncio.ensure_future(self._reload_chargers())

    async def _reload_chargers(self) -> None:
        """Chargers provisioned, changed or removed by another process (the CLI): what the shell
        changes (registration, password, note, the rows themselves) comes from the database; what
        this process sees live (the connection, boots, status) stays with the events."""
        while True:
            self._reload_again = False
            rows = {row["id"]: row for row in await self.site.chargers()}
            # A charger connected but not booted yet has no row; one removed while connected is being let go.
            live = await self.site.connected()
            for charger_id in [c for c in self.chargers if c not in rows and c not in live]:
                self._retired[charger_id] = self.chargers.pop(charger_id).version
            for charger_id, row in rows.items():
                if charger_id not in self.chargers:
                    fresh = self.charger(charger_id)
                    fresh.vendor, fresh.model, fresh.firmware = row["vendor"], row["model"], row["firmware_version"]
                    fresh.last_seen, fresh.connected = row["last_seen"], row["connected"]
                view = self.chargers[charger_id]
                provisioned = (row["registration"], row["has_password"], row["note"])
                if (view.registration, view.has_password, view.note) != provisioned:
                    view.registration, view.has_password, view.note = provisioned
                    view.version += 1
            self._bump("chargers")
            if not self._reload_again:
                return

    def _on_LoadDecided(self, e: ev.LoadDecided) -> None:
        self.load_summary = e
        self._bump("load")  # the load screen reads the whole picture (Site.site_load) when it shows

    def _on_SiteResynced(self, e: ev.SiteResynced) -> None:
        self._bump("load")
        self._note("", "the event stream restarted: the whole site is read again", "warning")
        task = asyncio.ensure_future(self._resync())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resync(self) -> None:
        try:
            await self._read_everything()
        except SiteError:  # the link dropped again: the next reconnection (ExternalChange) does it
            self._resync_pending = True
        else:
            self._resync_pending = False

    async def _read_everything(self, with_history: bool = False) -> None:
        """Read everything (at start, and again for an attached console whose stream lost events:
        a transaction stopped meanwhile must not stay "running" here, nor a charger that left
        "online"). All the reads first, then one synchronous update, so that no screen draws a
        half-read site."""
        site = self.site
        rows = await site.chargers()
        connected = await site.connected()
        running = {tx.id: tx for tx in map(running_tx, await site.running())}  # the HTTP API's read model
        finished = await site.energy_stopped_since(_today_start())
        revenue = await site.revenue_since(_today_start())
        log_rows = await site.message_log(limit=self.frames.maxlen or 1000)
        history = await self._power_history(site) if with_history else []

        ids = {row["id"] for row in rows}
        for charger_id in [c for c in self.chargers if c not in ids and c not in connected]:
            self._retired[charger_id] = self.chargers.pop(charger_id).version
        for row in rows:
            view = self.charger(row["id"])
            view.registration, view.connected = row["registration"], bool(row["connected"])
            view.vendor, view.model, view.firmware = row["vendor"], row["model"], row["firmware_version"]
            view.last_seen, view.has_password, view.note = row["last_seen"], row["has_password"], row["note"]
            view.last_boot = row["last_boot"]
            for c in row["connectors"]:
                connector = view.connector(c["connector_id"])
                connector.status, connector.error_code, connector.info = c["status"], c["error_code"], c["info"]
                connector.updated_at = c["updated_at"]
                connector.transaction_id, connector.power_w = None, None
            view.version += 1
        self.running = running
        for tx in running.values():
            connector = self.charger(tx.charger_id).connector(tx.connector_id)
            connector.transaction_id, connector.power_w = tx.id, tx.power_w
        self.finished_today_wh, self.revenue_today = finished, revenue
        self.site_power.extend(history)
        # every frame at start; after a gap, those after the last one this console has
        newest = (self.frames[-1][1].timestamp or "") if self.frames else None
        for row in reversed(log_rows):
            if newest is None or (row["timestamp"] or "") > (newest or ""):
                self._add_frame(ev.MessageLogged(row["charger_id"], row["direction"], row["message_type"],
                                                 row["action"], row["unique_id"], row["raw"], row["timestamp"]))
        self._bump(*self.versions)

    def _on_FileTransfer(self, e: ev.FileTransfer) -> None:
        self.charger(e.charger_id).transfer = transfer_text(e)
        self._bump("received")  # the detail screen shows the bytes as they flow
        if e.done:
            self._note(e.charger_id, transfer_text(e), "warning" if e.error else "info")

    def _on_NotificationReceived(self, e: ev.NotificationReceived) -> None:
        self._note(e.charger_id, f"{e.action.replace('Notification', '')}: {e.status}")

    def _on_IdTagRefused(self, e: ev.IdTagRefused) -> None:
        self._note(e.charger_id, e.sentence(), "warning")
        self._bump("tags")  # the tag's last refusal

    def _on_RemoteStartFollowed(self, e: ev.RemoteStartFollowed) -> None:
        text, ok = e.sentence(), e.auth_status == "Accepted"
        self._note(e.charger_id, text, "info" if ok else "warning")
        self._announce(text, "Transaction started" if ok else "Transaction refused", "information" if ok else "warning")

    def _on_RemoteStartUnanswered(self, e: ev.RemoteStartUnanswered) -> None:
        text = e.sentence()
        self._note(e.charger_id, text, "warning")
        self._announce(text, "No transaction started", "warning")

    def _announce(self, text: str, title: str, severity: str) -> None:
        if self.announce is not None:
            self.announce(text, title, severity)

    def _on_CertificateInstalled(self, e: ev.CertificateInstalled) -> None:
        until = f", valid until {local_time(e.expiry, True)}" if e.expiry else ""
        self._note(e.charger_id, f"certificate {e.serial or '(unreadable)'} installed{until}")
        self._bump("chargers")

    def _on_CertificateRequestRefused(self, e: ev.CertificateRequestRefused) -> None:
        self._note(e.charger_id, f"certificate: {e.reason}", "warning")
        self._bump("chargers")

    def _on_CommandFinished(self, e: ev.CommandFinished) -> None:
        self.last_command = e
        self._bump("commands")

    # -- figures for the overview ---------------------------------------------------

    def is_stale(self, tx: RunningTx) -> bool:
        """An open transaction nothing says still runs: its charger offline, or rebooted since
        without the connector back in session, or the connector Available since it started."""
        view = self.chargers.get(tx.charger_id)
        if view is None:
            return True
        connector = view.connectors.get(tx.connector_id)
        status, updated = (connector.status, connector.updated_at) if connector else (None, None)
        return is_stale(view.connected, view.last_boot, tx.received, status, updated)

    def power_now_kw(self) -> float:
        return sum(c.power_w for c in self.chargers.values() if c.connected) / 1000

    def sample_site_power(self) -> float:
        kw = self.power_now_kw()
        self.site_power.append((now_ts(), kw))
        return kw

    @property
    def energy_today_wh(self) -> float:
        return self.finished_today_wh + sum(tx.energy_wh for tx in self.running.values())

    def counts(self) -> dict[str, int]:
        views = list(self.chargers.values())
        return {
            "online": sum(v.connected for v in views),
            "offline": sum(not v.connected for v in views),
            "charging": sum(v.connected and v.charging for v in views),
            "faulted": sum(v.faulted for v in views),
            "pending": sum(v.registration == "Pending" for v in views),
            "sessions": len(self.running),
            "stale": sum(self.is_stale(tx) for tx in self.running.values()),
        }


def _today_start() -> str:
    now = utcnow().astimezone()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def ago(value: str | None) -> str:
    """A short 'how long ago' for last-seen columns."""
    dt = parse_iso(value)
    if dt is None:
        return "never"
    seconds = max(0, int((utcnow() - dt).total_seconds()))
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    if seconds < 86400:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


def seen_text(value: str | None) -> str:
    """When a charger was last heard from: the time today, the date before (it does not tick)."""
    dt = parse_iso(value)
    if dt is None:
        return "never"
    local = dt.astimezone()
    today = utcnow().astimezone().date()
    return local.strftime("%H:%M:%S" if local.date() == today else "%Y-%m-%d %H:%M")


def local_time(value: str | None, with_date: bool = False) -> str:
    dt = parse_iso(value)
    if dt is None:
        return "-"
    local = dt.astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def compact_time(value: str | None) -> str:
    """A time in a narrow column: HH:MM today, MM-DD HH:MM this year, the date before."""
    dt = parse_iso(value)
    if dt is None:
        return "-"
    local = dt.astimezone()
    today = utcnow().astimezone().date()
    if local.date() == today:
        return local.strftime("%H:%M")
    return local.strftime("%m-%d %H:%M" if local.year == today.year else "%Y-%m-%d")


def format_duration(seconds: float | None) -> str:
    """The console's one way to write a duration: 45s, 12m, 1h 05m (26h 10m past a day).

    To the minute past the first one: a running session's age changes once a minute, not on
    every redraw, and an operator reads "1h 05m" at a glance where "1:05:13" needs a look."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h {minutes % 60:02d}m"


def duration(start: str | None, end: str | None = None) -> str:
    """From `start` to `end` (or now, for a running session), as format_duration writes it."""
    a = parse_iso(start)
    b = parse_iso(end) if end else utcnow()
    if a is None or b is None:
        return "-"
    return format_duration((b - a).total_seconds())


def fmt_kw(watts: float | None) -> str:
    return "-" if watts is None else f"{watts / 1000:.1f} kW"


def fmt_kwh(wh: float | None) -> str:
    return "-" if wh is None else f"{wh / 1000:.2f} kWh"


