"""What every console screen shares: the live model, throttled refresh, the filter box."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from textual import events
from textual.binding import ActiveBinding, Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Input, TabbedContent, TabPane

from ocpp_console.site import SiteError
from ocpp_console.ui.widgets.tables import SyncedTable

if TYPE_CHECKING:
    from ocpp_console.ui.app import ConsoleApp
    from ocpp_console.ui.live import LiveSite

REFRESH_SECONDS = 0.25  # at most 4 redraws a second per screen, however busy the site
WIDE_FOOTER = 120  # columns from which the footer shows every key; below, the essential ones
SCREENS = Binding.Group("Screens", compact=True)  # 1-6 in the footer: "123456 Screens"
TABS = Binding.Group("Tab")  # [ and ] in the footer: "[ ] Tab"
TAB_BINDINGS = [
    Binding("left_square_bracket", "tab(-1)", "Previous tab", group=TABS),
    Binding("right_square_bracket", "tab(1)", "Next tab", group=TABS),
]


class LiveScreen(Screen[None]):
    """Redraws when the live model's versions of its TOPICS change, checked a few times a second."""

    TOPICS: ClassVar[tuple[str, ...]] = ()
    AUTO_FOCUS = "SyncedTable"  # the list, never the (hidden) filter box
    ALWAYS_REFRESH_EVERY: ClassVar[float | None] = None  # e.g. for durations that tick
    # Keys that stay out of a narrow footer (they work, and `?` lists them): the least used.
    NARROW_FOOTER_HIDES: ClassVar[frozenset[str]] = frozenset()
    # The 1-6 screen keys in the footer: "wide" (from WIDE_FOOTER columns), "always" (a screen with
    # few keys of its own), "never" (a screen Esc leaves, with many keys of its own).
    SCREENS_IN_FOOTER: ClassVar[str] = "wide"

    def __init__(self) -> None:
        super().__init__()
        self._seen: dict[str, int] = {}
        self._since_forced = 0.0
        self.refreshed_at = 0.0
        self._built = False

    @property
    def console(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    @property
    def live(self) -> LiveSite:
        return self.console.live

    def on_mount(self) -> None:
        # Textual calls every on_mount of the class's MRO itself: a subclass's on_mount runs first
        # and must not call this one again (that once started two refresh timers per screen).
        self.set_interval(REFRESH_SECONDS, self._tick)
        self.call_after_refresh(self._tick, True)

    @property
    def _leaving(self) -> bool:
        """The screen (or the whole app, on `q`) is being taken down: its widgets may be gone."""
        return self._closing or self._closed or self._pruning or not self.is_attached or self.app._exit

    async def _tick(self, force: bool = False) -> None:
        if (not self.is_current and not force) or self._leaving:
            return
        self._since_forced += REFRESH_SECONDS
        changed = any(self.live.versions[t] != self._seen.get(t) for t in self.TOPICS)
        if self.ALWAYS_REFRESH_EVERY is not None and self._since_forced >= self.ALWAYS_REFRESH_EVERY:
            changed = True
        if changed or force:
            self._since_forced = 0.0
            for topic in self.TOPICS:
                self._seen[topic] = self.live.versions[topic]
            try:
                await self.refresh_data()
            except NoMatches:
                # A redraw that awaited the store while the console quit finds its tables removed.
                if self._leaving:
                    return
                raise
            except SiteError:  # a site attached over the API, out of reach: keep what is shown, retry
                self._seen.clear()
                return
            self.refreshed_at = time.perf_counter()  # for the UI latency benchmark
            if not self._built:
                self._built = True
                self.call_after_refresh(self.console.settle_heap)  # its tables now exist for good

    async def refresh_data(self) -> None:
        """Redraw from the live model (and the store, where needed)."""

    async def on_screen_resume(self) -> None:
        self.console.sync_help(self)
        await self._tick(force=True)

    # -- footer and tabs -------------------------------------------------------------------

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        """What the footer shows: below WIDE_FOOTER columns, the screen's essential keys, `?` and
        `q` (the 1-6 screen keys and the least used ones step aside: they still work)."""
        bindings = super().active_bindings
        wide = self.app.size.width >= WIDE_FOOTER
        hide_screens = self.SCREENS_IN_FOOTER == "never" or (self.SCREENS_IN_FOOTER == "wide" and not wide)
        hidden = set() if wide else self.NARROW_FOOTER_HIDES
        return {
            key: active._replace(binding=replace(active.binding, show=False))
            if (hide_screens and active.binding.group is SCREENS) or key in hidden else active
            for key, active in bindings.items()
        }

    def on_resize(self, event: events.Resize) -> None:
        self.refresh_bindings()  # the footer's choice of keys depends on the width

    def action_tab(self, step: int) -> None:
        """`[` and `]`: the previous or next tab, and the focus to its list (Enter acts on it)."""
        tabbed = self.query(TabbedContent).first()
        panes = [pane.id for pane in tabbed.query(TabPane) if pane.id]
        if not panes:
            return
        index = panes.index(tabbed.active) if tabbed.active in panes else 0
        tabbed.active = panes[(index + step) % len(panes)]
        # In a scrolling screen (a charger's detail at 80x24) the tabs come into view, at the top.
        self.call_after_refresh(tabbed.scroll_visible, animate=False, top=True)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """A tab shown (by key or mouse) gives its list the focus: Enter and the arrows act on it."""
        tables = event.pane.query(SyncedTable)
        if tables:
            tables.first().focus(scroll_visible=False)


class FilterMixin:
    """A hidden filter box opened with `/`; rows whose text lacks the filter are hidden."""

    FILTER_BINDINGS = [Binding("slash", "filter", "Filter"), Binding("escape", "clear_filter", "Clear filter", show=False)]
    filter_text: str = ""

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)  # type: ignore[attr-defined]
        box.add_class("-open")
        box.focus()

    async def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)  # type: ignore[attr-defined]
        box.value = ""
        box.remove_class("-open")
        self.filter_text = ""
        await self.refilter()

    def matches(self, *cells: object) -> bool:
        if not self.filter_text:
            return True
        needle = self.filter_text.lower()
        return any(needle in str(c).lower() for c in cells)

    async def refilter(self) -> None:
        """Redraw after the filter changed."""

    # Plain handler names, not @on: Textual collects @on handlers only from the dict of a class its
    # metaclass builds, so on this mixin they were never called (the filter did nothing).
    async def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.filter_text = event.value.strip()
            await self.refilter()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.query_one("SyncedTable").focus()  # type: ignore[attr-defined]
