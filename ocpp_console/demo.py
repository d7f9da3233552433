"""Demo mode: the central system plus a few simulated chargers in one process.

The demo keeps its own database (unless --db is given) so that trying it never mixes
simulated chargers into a real site's data, and it provisions its chargers and id tags
as accepted so that the very first run shows live charging.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import platformdirs

from ocpp_console.csms import CentralSystem
from ocpp_console.sim import ChargerOptions, charger_ids, default_id_tags, run_chargers

log = logging.getLogger("ocpp_console.demo")

DEMO_CHARGERS = 4
DEMO_CONNECTORS = 2
DEMO_PREFIX = "DEMO"
DEMO_SPEED = 30.0  # one simulated minute every two seconds: sessions visibly progress


def demo_db_path() -> Path:
    return Path(platformdirs.user_data_dir("ocpp-console")) / "demo.sqlite"


async def provision(csms: CentralSystem, n: int = DEMO_CHARGERS, connectors: int = DEMO_CONNECTORS) -> list[str]:
    tags = default_id_tags(2 * n * connectors)
    for charger_id in charger_ids(DEMO_PREFIX, n):
        await csms.store.add_charger(charger_id, "Accepted", note="demo charger (simulated)")
    for tag in tags:
        await csms.store.upsert_id_tag(tag, note="demo id tag")
    return tags


async def run_demo_chargers(
    csms: CentralSystem,
    stop: asyncio.Event,
    n: int = DEMO_CHARGERS,
    connectors: int = DEMO_CONNECTORS,
    speed: float = DEMO_SPEED,
    seed: int | None = None,
) -> None:
    """Simulated chargers against our own central system until `stop` is set."""
    tags = await provision(csms, n, connectors)
    url = f"ws://127.0.0.1:{csms.port}"
    log.info("demo: %d simulated chargers connecting to %s", n, url)
    # Short gaps between sessions: the first cars arrive within seconds of the first start.
    options = ChargerOptions(session_gap_s=(20.0, 900.0))
    await run_chargers(url, n, connectors, DEMO_PREFIX, tags, "auto", None, None, speed, stop, seed=seed, options=options)
