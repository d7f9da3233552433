"""Demo mode: the central system plus a few simulated chargers in one process.

The demo keeps its own database (unless --db is given) so that trying it never mixes
simulated chargers into a real site's data, and starts it afresh on every run (the file
stays after the run, for a look with --db). It provisions its chargers and id tags as
accepted, funds the tags' wallets and prices the sessions with a sample tariff (unless the
settings name prices), so that the very first run shows live charging and revenue.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

from ocpp_console import provision as provisioning
from ocpp_console.csms import CentralSystem
from ocpp_console.csms.instance import Instance, running_instance
from ocpp_console.sim import ChargerOptions, charger_ids, default_id_tags, run_chargers

log = logging.getLogger("ocpp_console.demo")

DEMO_CHARGERS = 4
DEMO_CONNECTORS = 2
DEMO_PREFIX = "DEMO"
DEMO_SPEED = 30.0  # one simulated minute every two seconds: sessions visibly progress
# A sample tariff (energy and charging time), used unless the settings name any price.
DEMO_TARIFF = {"price_per_kwh": Decimal("0.39"), "price_per_minute": Decimal("0.02")}
PRICE_SETTINGS = ("price_per_kwh", "price_per_minute", "idle_price_per_minute", "session_fee", "tou_windows")
DEMO_BALANCE = "50.00"  # each demo tag's wallet, in the site currency

if TYPE_CHECKING:
    from ocpp_console.settings import Settings


def header(n: int, speed: float = DEMO_SPEED) -> str:
    """What the console's header and the serve log say about the demo."""
    return f"demo: {n} simulated chargers, simulated time x{speed:g}"


def title(speed: float = DEMO_SPEED) -> str:
    """The console's title in the demo: short, so that the URL beside it fits 80 columns."""
    return f"ocpp-console demo · time x{speed:g}"


def with_demo_tariff(settings: Settings) -> Settings:
    """The sample tariff, unless a flag, the environment or the TOML file names a price."""
    if set(PRICE_SETTINGS) & settings.model_fields_set:
        return settings
    return settings.model_copy(update=DEMO_TARIFF)


async def fresh_database(path: Path) -> Instance | None:
    """Remove the demo's database of a previous run, so that every run starts empty. If another
    demo still runs on it, nothing is removed and that instance is returned."""
    from ocpp_console.store import Store

    if path.exists():
        store = await Store(path).open()
        try:
            other = await running_instance(store)
        finally:
            await store.close()
        if other is not None:
            return other
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    return None


def demo_db_path() -> Path:
    return Path(platformdirs.user_data_dir("ocpp-console")) / "demo.sqlite"


async def provision(csms: CentralSystem, n: int = DEMO_CHARGERS, connectors: int = DEMO_CONNECTORS) -> list[str]:
    tags = default_id_tags(2 * n * connectors)
    for charger_id in charger_ids(DEMO_PREFIX, n):
        await csms.store.add_charger(charger_id, "Accepted", note="demo charger (simulated)")
    for tag in tags:
        if await csms.store.id_tag(tag) is None:  # a funded wallet; one of an older run keeps its money
            await provisioning.add_or_update_tag(csms.store, tag, balance=DEMO_BALANCE, note="demo id tag",
                                                 currency=csms.settings.currency)
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
    log.info("%s, connecting to %s; wallets of %s %s each", header(n, speed), url, DEMO_BALANCE, csms.settings.currency)
    # Short gaps between sessions: the first cars arrive within seconds of the first start.
    options = ChargerOptions(session_gap_s=(20.0, 900.0))
    await run_chargers(url, n, connectors, DEMO_PREFIX, tags, "auto", None, None, speed, stop, seed=seed, options=options)
