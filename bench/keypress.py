"""Key press to screen in a running console (in-process or attached): the measurement both
ui_latency.py and attach_latency.py make, the same way."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from textual import events

SCREENS = {"1": "OverviewScreen", "2": "ChargersScreen", "3": "TransactionsScreen", "4": "IdTagsScreen",
           "5": "MessageLogScreen"}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


async def lag_probe(samples: list[float], stop: asyncio.Event) -> None:
    """How late the event loop runs a 10 ms sleep, over and over until `stop`."""
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.01)
        samples.append(time.perf_counter() - started - 0.01)


@dataclass
class Presses:
    presses: list[float] = field(default_factory=list)  # seconds, first visits left out
    by_screen: dict[str, list[float]] = field(default_factory=dict)
    first_visits: dict[str, float] = field(default_factory=dict)  # a screen's first visit builds it
    lags: list[float] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        ms = lambda seconds: round(seconds * 1000, 1)  # noqa: E731
        return {
            "key_presses": len(self.presses),
            "key_to_screen_ms_p50": ms(statistics.median(self.presses)),
            "key_to_screen_ms_p95": ms(pct(self.presses, 95)),
            "key_to_screen_ms_max": ms(max(self.presses)),
            "loop_lag_ms_p50": ms(statistics.median(self.lags)),
            "loop_lag_ms_p99": ms(pct(self.lags, 99)),
            "loop_lag_ms_max": ms(max(self.lags)),
            "key_to_screen_ms_median_by_screen": {k: ms(statistics.median(v)) for k, v in self.by_screen.items() if v},
            "first_visit_ms": {k: ms(v) for k, v in self.first_visits.items()},
        }


async def press_screens(app: Any, seconds: float) -> Presses:
    """Screens 1-5 in turn, 0.25 s apart: key press to the new screen current and redrawn from
    the live model (its `refreshed_at`)."""
    result = Presses()
    stop = asyncio.Event()
    probe = asyncio.create_task(lag_probe(result.lags, stop))
    deadline = time.perf_counter() + seconds
    keys = "21345"
    i = 0
    while time.perf_counter() < deadline:
        key = keys[i % len(keys)]
        i += 1
        started = time.perf_counter()
        app.post_message(events.Key(key, key))
        while type(app.screen).__name__ != SCREENS[key] or app.screen.refreshed_at < started:
            await asyncio.sleep(0.001)
        elapsed = time.perf_counter() - started
        if SCREENS[key] in result.by_screen:
            result.presses.append(elapsed)
            result.by_screen[SCREENS[key]].append(elapsed)
        else:
            result.by_screen[SCREENS[key]] = []
            result.first_visits[SCREENS[key]] = elapsed
        await asyncio.sleep(0.25)
    stop.set()
    await probe
    return result
