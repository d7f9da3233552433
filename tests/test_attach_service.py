"""The site as a service, end to end: `ocpp-console serve` in a subprocess, simulated chargers
connected to it over real sockets, two consoles attached through Pilot as `ocpp-console attach`
makes them. One starts a transaction, the other sees it; the service restarts and both consoles
catch up without a restart of their own; quitting them never touches the chargers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from ocpp_console.api.token import client_token
from ocpp_console.attach import attach_app
from ocpp_console.cli import main
from ocpp_console.settings import load_settings
from ocpp_console.sim import SimulatedCharger
from ocpp_console.site.remote import RemoteSite
from ocpp_console.ui.app import ConsoleApp
from ocpp_console.ui.screens.modals import ActionForm
from tests.conftest import running
from tests.test_cli import free_port
from tests.test_readme_actions import _fill
from tests.test_service import Served
from tests.test_ui import SIZE, cells, table, until


def _row(app: ConsoleApp, charger_id: str) -> list[str]:
    return cells(app, "#chargers").get(charger_id, [])


def _power_kw(app: ConsoleApp, charger_id: str) -> float:
    """The Power column of the chargers table ("7.4 kW", or "-" when idle)."""
    text = next((c for c in _row(app, charger_id) if c.endswith(" kW")), "")
    return float(text.split()[0]) if text else 0.0


@contextlib.asynccontextmanager
async def simulated(port: int, *ids: str) -> AsyncIterator[list[SimulatedCharger]]:
    chargers = [SimulatedCharger(cid, f"ws://127.0.0.1:{port}", connectors=2, sessions="none", speed=60, seed=i)
                for i, cid in enumerate(ids)]
    async with running(chargers, stop_timeout=20):
        yield chargers


async def test_two_consoles_attached_to_serve_follow_it_across_a_restart(tmp_path: Path) -> None:
    ocpp_port, api_port = free_port(), free_port()
    db = tmp_path / "site.sqlite"
    argv = ["tags", "add", "DRIVER-1", "--db", str(db), "--config", str(tmp_path / "none.toml")]
    assert await asyncio.to_thread(main, argv) == 0
    serve_args = ("--api-port", str(api_port), "--unknown-chargers", "accept")
    served = Served(tmp_path, *serve_args, port=ocpp_port)
    lines: list[str] = []  # both runs' logs
    try:
        await asyncio.to_thread(served.wait_for, r"HTTP API on")
        # `attach` with no --url: found from the same settings as `call` (port, token file beside the db)
        settings = load_settings(tmp_path / "none.toml", db=db, api_port=api_port)
        first, second = attach_app(settings, None), attach_app(settings, None)
        url = f"http://127.0.0.1:{api_port}"
        async with simulated(ocpp_port, "SIM-1", "SIM-2") as sims:
            async with first.run_test(size=SIZE) as one, second.run_test(size=SIZE) as two:
                for app, pilot in ((first, one), (second, two)):
                    assert app.sub_title == f"attached to {url}"
                    await pilot.press("2")
                    await until(pilot, lambda app=app: all("online" in " ".join(_row(app, c)) for c in ("SIM-1", "SIM-2")), 15)

                # A Remote Start from the first console starts a transaction on SIM-1 ...
                grid = table(first, "#chargers")
                grid.move_cursor(row=grid.get_row_index("SIM-1"))
                await until(one, lambda: first.screen.selected == "SIM-1")
                await one.press("s")
                form = await until(one, lambda: isinstance(first.screen, ActionForm) and first.screen)
                await _fill(one, form, {"id_tag": "DRIVER-1", "connector_id": "1"}, frozenset())
                await one.press("ctrl+s")
                note = await until(one, lambda: next(
                    (n for n in first._notifications if n.title == "Transaction started"), None), 20)
                tx = int(str(note.message).split()[1])  # "transaction N started on SIM-1 connector 1"
                # ... and the second console sees it within a second, then its power, live.
                started = time.perf_counter()
                await until(two, lambda: tx in second.live.running, 5)
                assert time.perf_counter() - started < 1.0
                await until(two, lambda: _power_kw(second, "SIM-1") > 0, 10)
                await until(one, lambda: _power_kw(first, "SIM-1") > 0, 10)

                # The service restarts: both consoles say so, retry, and catch up on their own.
                assert await asyncio.to_thread(served.stop) == 0
                lines += served.lines
                for app, pilot in ((first, one), (second, two)):
                    await until(pilot, lambda app=app: app.sub_title.startswith("reconnecting"), 10)
                await one.press("3")  # a screen drawn while the service is away keeps what it had
                served = Served(tmp_path, *serve_args, port=ocpp_port)
                await asyncio.to_thread(served.wait_for, r"HTTP API on")
                for app, pilot in ((first, one), (second, two)):
                    await until(pilot, lambda app=app: app.sub_title == f"attached to {url}", 20)
                for app, pilot in ((first, one), (second, two)):
                    await pilot.press("2")
                    await until(pilot, lambda app=app: "online" in " ".join(_row(app, "SIM-1")), 20)
                    await until(pilot, lambda app=app: tx in app.live.running, 10)
                # Meter values sent after the restart reach both consoles: the transaction's energy grows.
                before = [app.live.running[tx].energy_wh for app in (first, second)]
                await until(one, lambda: first.live.running[tx].energy_wh > before[0], 20)
                await until(two, lambda: second.live.running[tx].energy_wh > before[1], 20)
            # Both consoles quit: the chargers stay connected to the service, the transaction runs on.
            site = RemoteSite(url, client_token(settings))
            await site.start()
            try:
                assert await site.connected() == {"SIM-1", "SIM-2"}
                assert [row["id"] for row in await site.running()] == [tx]
            finally:
                await site.stop()
            assert all(sim.summary.reconnects == 1 for sim in sims)  # once, for the restart
    finally:
        assert await asyncio.to_thread(served.stop) == 0
    assert not any("Traceback" in line for line in lines + served.lines)
