"""Running N simulated chargers together, in the caller's event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Callable, Sequence

from ocpp_console.sim.charger import SimulatedCharger
from ocpp_console.sim.options import ChargerOptions, SessionMode
from ocpp_console.sim.state import Summary, TagPool

log = logging.getLogger("ocpp_console.sim")

# Spread the chargers' first connections over a moment, as a real fleet powering up would.
MAX_STARTUP_SPREAD_S = 5.0


def charger_ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i:03d}" for i in range(1, n + 1)]


def default_id_tags(count: int) -> list[str]:
    """Enough id tags that every connector can charge at once (an idTag is at most 20 characters)."""
    return [f"SIMTAG{i:04d}" for i in range(1, max(10, count) + 1)]


def build_chargers(
    url: str,
    n: int = 1,
    connectors: int = 1,
    prefix: str = "SIM",
    id_tags: Sequence[str] | None = None,
    sessions: SessionMode = "auto",
    password: str | None = None,
    speed: float = 1.0,
    *,
    seed: int | str | None = None,
    fetch_firmware: bool = False,
    upload_diagnostics: bool = False,
    options: ChargerOptions | None = None,
) -> list[SimulatedCharger]:
    """N chargers PREFIX-001... sharing one pool of id tags (a tag charges at one place at a time)."""
    if n < 1:
        raise ValueError("at least one charger")
    base = options or ChargerOptions()
    pool = TagPool(id_tags or default_id_tags(2 * n * connectors))
    chargers = []
    for charger_id in charger_ids(prefix, n):
        opts = dataclasses.replace(
            base,
            fetch_firmware=fetch_firmware or base.fetch_firmware,
            upload_diagnostics=upload_diagnostics or base.upload_diagnostics,
            config=dict(base.config),
        )
        chargers.append(
            SimulatedCharger(
                charger_id,
                url,
                connectors=connectors,
                sessions=sessions,
                speed=speed,
                password=password,
                seed=seed,
                options=opts,
                tag_pool=pool,
            )
        )
    return chargers


async def run_fleet(
    chargers: Sequence[SimulatedCharger],
    duration: float | None = None,
    stop_event: asyncio.Event | None = None,
    *,
    seed: int | str | None = None,
) -> list[Summary]:
    """Run the chargers until `duration` seconds have passed or `stop_event` is set, then end
    every running session (StopTransaction, reason Local) and return one Summary each."""
    rng = random.Random(seed)
    spread = min(MAX_STARTUP_SPREAD_S, 0.05 * len(chargers))

    async def run_one(charger: SimulatedCharger, delay: float) -> Summary:
        await asyncio.sleep(delay)
        return await charger.run()

    tasks = [
        asyncio.create_task(run_one(c, rng.uniform(0, spread) if i else 0.0), name=f"sim-{c.id}")
        for i, c in enumerate(chargers)
    ]
    everything = asyncio.ensure_future(asyncio.gather(*tasks, return_exceptions=True))
    ending = asyncio.ensure_future(stop_event.wait()) if stop_event is not None else None
    try:
        await asyncio.wait({everything, *([ending] if ending else [])}, timeout=duration,
                           return_when=asyncio.FIRST_COMPLETED)
        await asyncio.gather(*(c.stop() for c in chargers), return_exceptions=True)
        results = await everything
    except asyncio.CancelledError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        if ending is not None:
            ending.cancel()
    summaries = []
    for charger, result in zip(chargers, results):
        if isinstance(result, BaseException):
            log.error("%s: the simulation failed", charger.id, exc_info=result)
            charger.summary.errors += 1
            summaries.append(charger.summary)
        else:
            summaries.append(result)
    return summaries


async def run_chargers(
    url: str,
    n: int = 1,
    connectors: int = 1,
    prefix: str = "SIM",
    id_tags: Sequence[str] | None = None,
    sessions: SessionMode = "auto",
    duration: float | None = None,
    password: str | None = None,
    speed: float = 1.0,
    stop_event: asyncio.Event | None = None,
    *,
    seed: int | str | None = None,
    fetch_firmware: bool = False,
    upload_diagnostics: bool = False,
    options: ChargerOptions | None = None,
    on_started: Callable[[list[SimulatedCharger]], None] | None = None,
) -> list[Summary]:
    """Run N simulated chargers (ids PREFIX-001...) against the central system at `url`.

    Runs in the caller's event loop (e.g. beside the central system in demo mode) until
    `duration` seconds pass or `stop_event` is set. `on_started` receives the chargers
    before they connect, for callers that want to watch or drive them.
    """
    chargers = build_chargers(
        url, n, connectors, prefix, id_tags, sessions, password, speed,
        seed=seed, fetch_firmware=fetch_firmware, upload_diagnostics=upload_diagnostics, options=options,
    )
    if on_started is not None:
        on_started(chargers)
    return await run_fleet(chargers, duration, stop_event, seed=seed)
