"""The charge point simulator: OCPP 1.6J chargers that charge simulated cars.

    from ocpp_console.sim import run_chargers
    summaries = await run_chargers("ws://127.0.0.1:9000", n=3, speed=60, duration=120)

or one charger, driven by hand:

    charger = SimulatedCharger("CP-1", "ws://127.0.0.1:9000", connectors=2)
    task = asyncio.create_task(charger.run())
    charger.plug_in(1, "TAG1")
    ...
    summary = await charger.stop()
"""

from ocpp_console.sim.auth import LocalAuth, TagInfo
from ocpp_console.sim.charger import VENDOR_ID, SimulatedCharger
from ocpp_console.sim.config import Configuration
from ocpp_console.sim.ev import EV, random_ev
from ocpp_console.sim.meter import Meter
from ocpp_console.sim.options import ChargerOptions, SessionMode, charger_url
from ocpp_console.sim.runner import build_chargers, charger_ids, default_id_tags, run_chargers, run_fleet
from ocpp_console.sim.state import Connector, Session, Summary, TagPool, Transaction

__all__ = [
    "EV",
    "VENDOR_ID",
    "ChargerOptions",
    "Configuration",
    "Connector",
    "LocalAuth",
    "Meter",
    "Session",
    "SessionMode",
    "SimulatedCharger",
    "Summary",
    "TagInfo",
    "TagPool",
    "Transaction",
    "build_chargers",
    "charger_ids",
    "charger_url",
    "default_id_tags",
    "random_ev",
    "run_chargers",
    "run_fleet",
]
