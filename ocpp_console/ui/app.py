"""The operator console: a Textual app over a site (ocpp_console.site: today the central system in
this process)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import HelpPanel, TabbedContent

from ocpp_console import __version__
from ocpp_console.runtime import settle_heap
from ocpp_console.site import (
    CommandError,
    PasswordError,
    Site,
    SiteError,
    as_site,
    check_password,
    format_money,
    to_minor,
)
from ocpp_console.timeutil import utcnow
from ocpp_console.ui.actions import (
    ACTIONS,
    ACTIONS_BY_KEY,
    ActionSpec,
    EXPORT_FORM,
    PASSWORD_FORM,
    SITE_LIMIT_FORM,
    WALLET_FORM,
    lockout_warning,
)
from ocpp_console.ui.live import LiveSite, fmt_kwh
from ocpp_console.ui.screens.base import SCREENS
from ocpp_console.ui.screens.charger_detail import ChargerDetailScreen
from ocpp_console.ui.screens.chargers import ChargersScreen
from ocpp_console.ui.screens.id_tags import IdTagsScreen
from ocpp_console.ui.screens.load import LoadScreen
from ocpp_console.ui.screens.message_log import MessageLogScreen
from ocpp_console.ui.screens.modals import ActionForm, ActionPicker, ConfirmScreen, IdTagForm
from ocpp_console.ui.screens.order_detail import OrderDetailScreen
from ocpp_console.ui.screens.overview import OverviewScreen
from ocpp_console.ui.screens.transactions import TransactionsScreen
from ocpp_console.ui.sentences import answer, confirmation, failure, lockout_confirmation, site_limit_confirmation

BUSY_STATES = {"Charging", "SuspendedEV", "SuspendedEVSE"}


class Service(Protocol):
    """Something that runs beside the central system for the app's lifetime (the HTTP API)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class ConsoleApp(App[None]):
    TITLE = "ocpp-console"
    CSS_PATH = Path(__file__).with_name("console.tcss")
    MODES = {
        "overview": OverviewScreen,
        "chargers": ChargersScreen,
        "transactions": TransactionsScreen,
        "tags": IdTagsScreen,
        "log": MessageLogScreen,
        "load": LoadScreen,
    }
    BINDINGS = [
        Binding("1", "switch_mode('overview')", "Overview", group=SCREENS),
        Binding("2", "switch_mode('chargers')", "Chargers", group=SCREENS),
        Binding("3", "switch_mode('transactions')", "Transactions", group=SCREENS),
        Binding("4", "switch_mode('tags')", "Id tags", group=SCREENS),
        Binding("5", "switch_mode('log')", "Message log", group=SCREENS),
        Binding("6", "switch_mode('load')", "Load", group=SCREENS),
        Binding("question_mark", "toggle_help", "Keys", key_display="?"),
        Binding("q", "quit_console", "Quit"),
    ]
    show_keys = False  # `?` turned the keys panel on: every screen shown shows it, with its own keys

    def __init__(
        self,
        site: Site | Any,
        *,
        manage_csms: bool = True,
        background: Sequence[Callable[[Any, asyncio.Event], Awaitable[None]]] = (),
        prepare: Callable[[Any], Awaitable[object]] | None = None,
        services: Sequence[Service] = (),
    ) -> None:
        """`site`: a Site, or a central system (wrapped in a LocalSite by ocpp_console.site.as_site);
        `manage_csms`: the app starts and stops the site. `background` jobs and `prepare` are handed
        `site` as it was given (e.g. the demo's chargers get the central system they were built for)."""
        super().__init__()
        self._given = site
        self.site = as_site(site)
        self.manage_csms = manage_csms
        self._background = list(background)  # e.g. the demo's simulated chargers
        self._services = list(services)  # e.g. the HTTP API: started after the central system
        self._started_services: list[Service] = []
        self._background_tasks: list[asyncio.Task[None]] = []
        self._stop_background = asyncio.Event()
        self._prepare = prepare  # runs once the central system listens, before the first screen
        self.live = LiveSite(self.site)
        self.live.announce = self._announce  # e.g. how a Remote Start ended
        self.sub_title = f"OCPP 1.6J central system {__version__}"

    async def on_mount(self) -> None:
        if self.manage_csms:
            try:
                await self.site.start()
            except SiteError as exc:
                self.exit(return_code=1, message=f"ocpp-console: {exc}")
                return
        for service in self._services:
            try:
                await service.start()
            except OSError as exc:
                self.exit(return_code=1, message=f"ocpp-console: cannot start {type(service).__name__}: {exc}")
                return
            self._started_services.append(service)
        if self._prepare is not None:
            await self._prepare(self._given)
        await self.live.load()
        self.sub_title = self.site.info().charger_url
        if self.site.link_text() is not None:  # attached over the API: the link is what matters
            self._show_link()
            self.site.watch_link(self._show_link)
        for service in self._started_services:
            if url := getattr(service, "url", None):
                self.sub_title += f"  ·  API {url}/api"
                if where := getattr(service, "token_source", None):
                    # the token itself stays off the screen (screenshots, shoulders): only where it is
                    self.notify(f"HTTP API at {url}/api; its bearer token is in {where}", timeout=10)
        # Build every screen now, so that a key press never waits for a first build (a table of
        # 1,000 chargers takes ~250 ms to build; switching to a built screen, ~25 ms).
        with self.batch_update():
            for mode in ("chargers", "transactions", "tags", "log", "load", "overview"):
                await self.switch_mode(mode)
        self.settle_heap()
        for job in self._background:
            self._background_tasks.append(asyncio.create_task(job(self._given, self._stop_background)))

    async def on_unmount(self) -> None:
        self._stop_background.set()
        if self._background_tasks:
            # Simulated chargers finish their sessions before the central system goes away.
            await asyncio.wait(self._background_tasks, timeout=15)
        self.live.close()
        for service in reversed(self._started_services):
            await service.stop()
        if self.manage_csms:
            await self.site.stop()

    def _show_link(self) -> None:
        self.sub_title = self.site.link_text() or ""

    def _announce(self, text: str, title: str, severity: str) -> None:
        self.notify(text, title=title, severity=severity, timeout=10)  # type: ignore[arg-type]

    def settle_heap(self) -> None:
        settle_heap()

    # -- navigation ------------------------------------------------------------------

    def open_charger(self, charger_id: str) -> None:
        self.push_screen(ChargerDetailScreen(charger_id))

    def open_order(self, transaction_id: int) -> None:
        self.push_screen(OrderDetailScreen(transaction_id))

    def action_toggle_help(self) -> None:
        self.show_keys = not self.screen.query(HelpPanel)
        self.sync_help(self.screen)

    def sync_help(self, screen: Screen[Any]) -> None:
        """The keys panel on `screen` as `?` left it (a panel lists the keys of its own screen)."""
        panels = screen.query(HelpPanel)
        if self.show_keys and not panels:
            screen.mount(HelpPanel())
        elif not self.show_keys and panels:
            panels.remove()

    async def action_quit(self) -> None:
        """ctrl+q (Textual's own quit key) asks as `q` does: it would disconnect the chargers too."""
        self.action_quit_console()

    @work
    async def action_quit_console(self) -> None:
        online = sum(v.connected for v in self.live.chargers.values())
        if online and self.manage_csms and self.site.owns_chargers:
            message = f"{online} charger(s) are connected; quitting stops the central system and disconnects them."
            if not await self.push_screen_wait(ConfirmScreen("Quit ocpp-console?", message, "Quit")):
                return
        self.exit()

    # -- remote actions --------------------------------------------------------------

    def selected_charger(self, screen: Screen[Any] | None = None) -> str | None:
        """The charger of `screen` (the palette passes the screen it was opened over: while it is
        open, self.screen is the palette itself)."""
        screen = screen or self.screen
        if isinstance(screen, ChargerDetailScreen):
            return screen.charger_id
        if isinstance(screen, ChargersScreen):
            return screen.selected
        return None

    @work
    async def pick_action(self, charger_id: str, context: dict[str, Any] | None = None) -> None:
        key = await self.push_screen_wait(ActionPicker(charger_id))
        if key:
            self.start_action(charger_id, key, context)

    def start_action(self, charger_id: str, key: str, context: dict[str, Any] | None = None) -> None:
        context = {**(context or {}), "free_connector": self._free_connector(charger_id)}
        if context.get("transaction_id") is None:  # from the chargers list: its running transaction, if any
            running = sorted((tx for tx in self.live.running.values() if tx.charger_id == charger_id), key=lambda t: t.id)
            if running:
                context["transaction_id"], context["connector_id"] = running[0].id, running[0].connector_id
        self._run_action(charger_id, key, context)

    def _free_connector(self, charger_id: str) -> int | None:
        """The first connector a Remote Start can use: Available, else Preparing (a cable already in)."""
        view = self.live.chargers.get(charger_id)
        connectors = sorted((c for c in view.connectors.values() if c.connector_id > 0), key=lambda c: c.connector_id) if view else []
        for wanted in ("Available", "Preparing"):
            for connector in connectors:
                if connector.status == wanted and not connector.transaction_id:
                    return connector.connector_id
        return None

    def _car_is_charging(self, charger_id: str) -> bool:
        view = self.live.chargers.get(charger_id)
        return bool(view) and any(
            c.status in BUSY_STATES or c.transaction_id for c in view.connectors.values() if c.connector_id > 0
        )

    async def _with_choices(self, spec: ActionSpec) -> ActionSpec | None:
        """The form with the choices read from the site now (the firmware library's images)."""
        if not any(f.choices_from for f in spec.fields):
            return spec
        try:
            images = tuple(r["name"] for r in await self.site.firmware_images())
        except SiteError as exc:
            self.notify(str(exc), title=spec.title, severity="error")
            return None
        return replace(spec, fields=tuple(replace(f, choices=images) if f.choices_from == "firmware" else f
                                          for f in spec.fields))

    @work(group="actions")
    async def _run_action(self, charger_id: str, key: str, context: dict[str, Any]) -> None:
        spec = await self._with_choices(ACTIONS_BY_KEY[key])
        if spec is None:
            return
        values = await self.push_screen_wait(ActionForm(spec, charger_id, spec.defaults(context)))
        if values is None:
            return
        running = [tx for tx in self.live.running.values() if tx.charger_id == charger_id]
        if spec.disturbs == "always" or (spec.disturbs and self._car_is_charging(charger_id)):
            ask = confirmation(spec.key, spec.title, charger_id, values, running)
            if not await self.push_screen_wait(ConfirmScreen(ask.title, ask.message, ask.button)):
                self.notify(f"{spec.title} on {charger_id} cancelled: nothing was sent.", title=charger_id)
                return
        warning = lockout_warning(spec.key, values)
        if warning:
            ask = lockout_confirmation(spec.title, charger_id, values, warning)
            if not await self.push_screen_wait(ConfirmScreen(ask.title, ask.message, ask.button)):
                self.notify(f"{spec.title} on {charger_id} cancelled: nothing was sent.", title=charger_id)
                return
        try:
            result = await spec.run(self.site, charger_id, values)
        except CommandError as exc:
            self.notify(failure(spec.title, charger_id, exc), title=f"{spec.title}: {exc.outcome}", severity="error",
                        timeout=8)
            return
        message, severity = answer(spec.key, spec.title, charger_id, values, result)
        self.notify(message, title=spec.title, severity=severity)
        if spec.key == "get_config":
            self._show_configuration(charger_id)

    def _show_configuration(self, charger_id: str) -> None:
        """The keys just fetched are in the detail screen's Configuration tab: show it there."""
        screen = self.screen
        if isinstance(screen, ChargerDetailScreen) and screen.charger_id == charger_id:
            screen.query_one("#detail-tabs", TabbedContent).active = "tab-config"

    @work
    async def set_registration(self, charger_id: str, approve: bool) -> None:
        verb = "approve" if approve else "reject"
        try:
            if approve:
                await self.site.approve(charger_id)
            else:
                if not await self.push_screen_wait(
                    ConfirmScreen(f"Reject {charger_id}?", "It will be refused at every boot.", "Reject charger")
                ):
                    return
                await self.site.reject(charger_id)
        except CommandError as exc:
            self.notify(f"Could not {verb} {charger_id}: {exc}.", title="Registration", severity="error")
            return
        self.notify(f"{charger_id} is accepted; a connected charger is asked to boot again now." if approve
                    else f"{charger_id} is rejected: it is refused at every boot.", title="Registration")

    # -- transactions ------------------------------------------------------------------

    @work
    async def close_transaction(self, transaction_id: int) -> None:
        """Close a stuck transaction by hand, after a confirmation naming it."""
        tx = self.live.running.get(transaction_id)
        if tx is None:
            self.notify(f"Transaction {transaction_id} is not running", severity="warning")
            return
        state = ("stale: its charger is offline or rebooted since it started" if self.live.is_stale(tx)
                 else "its charger has not said that it ended")
        message = (
            f"Transaction {tx.id} on {tx.charger_id} connector {tx.connector_id} (id tag {tx.id_tag}): {state}.\n"
            "It is closed with its last meter value and settled now; the charger is not told. If its "
            "StopTransaction comes later, that replaces the closing and only the difference is settled."
        )
        title = f"Close transaction {tx.id} on {tx.charger_id} connector {tx.connector_id}?"
        if not await self.push_screen_wait(ConfirmScreen(title, message, "Close transaction")):
            self.notify(f"Transaction {tx.id} stays open: nothing was changed.", title="Close transaction cancelled")
            return
        try:
            closed = await self.site.close_transaction(tx.id)
        except SiteError as exc:
            self.notify(str(exc), severity="error")
            return
        cost = format_money(closed["cost_total"], closed["currency"] or self.site.info().currency)
        self.notify(f"Transaction {closed['transaction_id']} on {tx.charger_id} connector {tx.connector_id} closed: "
                    f"{fmt_kwh(closed['energy_wh'])}, {cost}.", title="Transaction closed")

    # -- id tags -----------------------------------------------------------------------

    @work
    async def edit_id_tag(self, row: dict[str, Any] | None) -> None:
        values = await self.push_screen_wait(IdTagForm(row))
        if values is not None:
            await self.save_id_tag(values)

    async def save_id_tag(self, values: dict[str, Any]) -> None:
        try:
            await self.site.save_id_tag(values["id_tag"], values["status"], values.get("expiry_date"),
                                        values.get("parent_id_tag"), values.get("note"))
        except SiteError as exc:  # e.g. its parent does not exist
            self.notify(f"Id tag {values['id_tag']} not saved: {exc}", title="Id tag not saved", severity="error")
            return
        self.live.versions["tags"] += 1
        self.notify(f"Id tag {values['id_tag']} saved: {values['status']}.", title="Id tag saved")

    @work
    async def set_password(self, charger_id: str) -> None:
        values = await self.push_screen_wait(ActionForm(PASSWORD_FORM, charger_id))
        if values is None:
            return
        password = values["password"]
        if password is not None:
            try:
                check_password(password)
            except PasswordError as exc:
                self.notify(str(exc), severity="error")
                return
        try:
            await self.site.set_password(charger_id, password)
        except SiteError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify("password set" if password else "password removed", title=charger_id)

    # -- wallets and exports --------------------------------------------------------------

    @work
    async def wallet_movement(self, id_tag: str) -> None:
        values = await self.push_screen_wait(ActionForm(WALLET_FORM, id_tag, {"kind": "topup"}))
        if values is None:
            return
        currency = self.site.info().currency
        amount = to_minor(values["amount"], currency)
        if values["kind"] == "topup" and amount < 0:
            self.notify("A top-up adds money: use an adjustment to take some out", severity="error")
            return
        try:
            wallet, balance = await self.site.wallet_movement(id_tag, amount, values["kind"], values["reason"])
        except SiteError as exc:
            self.notify(str(exc), severity="error")
            return
        self.live.versions["tags"] += 1
        self.notify(f"Wallet of {wallet}: {values['kind']} of {format_money(amount, currency)}; the balance is now "
                    f"{format_money(balance, currency)}.", title="Wallet")

    @work
    async def export_csv(self, kind: str) -> None:
        default = f"{kind}-{utcnow().astimezone():%Y%m%d-%H%M}.csv"
        values = await self.push_screen_wait(ActionForm(EXPORT_FORM, kind, {"path": str(Path.cwd() / default)}))
        if values is None:
            return
        text, count = await self.site.export_csv(kind, values["first"], values["last"])
        path = Path(values["path"]).expanduser()
        try:
            path.write_text(text, encoding="utf-8", newline="")
        except OSError as exc:
            self.notify(f"Could not write {path}: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"{count} rows written to {path}", title=f"Export {kind}")

    # -- load management -----------------------------------------------------------------

    @work(group="site-limit", exclusive=True)
    async def set_site_limit(self) -> None:
        """A new site limit (empty: off), after a confirmation saying what it does to the cars."""
        try:
            load = await self.site.site_load()
        except SiteError as exc:
            self.notify(str(exc), title="Site limit", severity="error")
            return
        now = load["limit_kw"]
        subject = "now off" if now is None else f"now {now:g} kW"
        values = await self.push_screen_wait(
            ActionForm(SITE_LIMIT_FORM, subject, {"limit_kw": "" if now is None else f"{now:g}"}))
        if values is None:
            return
        limit = values["limit_kw"]
        if limit == now:
            self.notify(f"The site limit is {subject.removeprefix('now ')} already: nothing was changed.", title="Site limit")
            return
        ask = site_limit_confirmation(load, limit)
        if not await self.push_screen_wait(ConfirmScreen(ask.title, ask.message, ask.button)):
            self.notify("The site limit stays as it was: nothing was changed.", title="Site limit cancelled")
            return
        try:
            after = await self.site.set_site_limit(limit)
        except SiteError as exc:
            self.notify(f"The site limit was not changed: {exc}", title="Site limit", severity="error")
            return
        self.live.versions["load"] += 1
        if after["limit_kw"] is None:
            self.notify("Load management is off: our profiles are cleared, the cars charge at their chargers' maximum.",
                        title="Site limit off")
            return
        paused = sum(1 for s in after["sessions"] if s["state"] == "paused")
        self.notify(f"Site limit {after['limit_kw']:g} kW: {len(after['sessions'])} session(s) share "
                    f"{after['allocated_kw']:.1f} kW" + (f", {paused} paused (they take turns)." if paused else "."),
                    title="Site limit")

    # -- command palette ---------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, title in (("overview", "Overview"), ("chargers", "Chargers"), ("transactions", "Transactions"),
                            ("tags", "Id tags"), ("log", "Message log"), ("load", "Load")):
            yield SystemCommand(f"Go to {title}", f"Show the {title.lower()} screen", lambda m=mode: self.switch_mode(m))
        charger_id = self.selected_charger(screen)
        if charger_id is not None:
            context = screen.context() if isinstance(screen, ChargerDetailScreen) else {}
            for spec in ACTIONS:
                yield SystemCommand(
                    f"{spec.title} · {charger_id}", spec.help,
                    lambda key=spec.key: self.start_action(charger_id, key, context),
                )
            yield SystemCommand(f"Approve · {charger_id}", "Accept a pending charger",
                                lambda: self.set_registration(charger_id, True))
            yield SystemCommand(f"Reject · {charger_id}", "Refuse this charger",
                                lambda: self.set_registration(charger_id, False))
            yield SystemCommand(f"Set password · {charger_id}", "HTTP Basic password (security profiles 1-2)",
                                lambda: self.set_password(charger_id))
        if isinstance(screen, TransactionsScreen) and (tx := screen.selected_running()) is not None:
            yield SystemCommand(f"Close transaction {tx.id} · {tx.charger_id} #{tx.connector_id}",
                                "Close a stuck transaction with its last meter value and settle it",
                                lambda tx_id=tx.id: self.close_transaction(tx_id))
        yield SystemCommand("Set site limit", "The grid connection the running sessions share (empty: load management off)",
                            self.set_site_limit)
        yield SystemCommand("Add id tag", "Create a new id tag", lambda: self.edit_id_tag(None))
        yield SystemCommand("Export orders (CSV)", "Finished transactions with line items", lambda: self.export_csv("orders"))
        yield SystemCommand("Export ledger (CSV)", "Every wallet movement", lambda: self.export_csv("ledger"))
