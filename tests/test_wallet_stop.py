"""Prepaid wallets stop a session (`--stop-on-empty-wallet`): the real central system, a charger
built on the ocpp library's own ChargePoint over a real socket, a real SQLite file."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ocpp.routing import on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action, Reason, RemoteStartStopStatus

from ocpp_console import provision
from ocpp_console.csms import CentralSystem
from ocpp_console.csms.billing import from_minor
from ocpp_console.settings import Settings
from ocpp_console.timeutil import iso, utcnow
from ocpp_console.ui.live import LiveSite
from ocpp_console.ui.screens.order_detail import OrderDetailScreen
from tests.clients import TestCharger
from tests.conftest import Console, charger, eventually
from tests.test_api import api_for, get
from tests.test_billing import mv
from tests.test_provision import run_cli
from tests.test_ui import cells, text_of, until

ONE_EURO_PER_KWH = dict(price_per_kwh="1.00", currency="EUR", timezone="UTC", idle_grace_minutes="0")


def ago(minutes: float) -> str:
    return iso(utcnow() - timedelta(minutes=minutes))


def stops(cp: TestCharger) -> list[dict[str, Any]]:
    return [kw for action, kw in cp.received if action == "RemoteStopTransaction"]


async def start(system: CentralSystem, cp: TestCharger, tag: str, balance: str) -> int:
    await provision.add_or_update_tag(system.store, tag, balance=balance, currency="EUR")
    await cp.boot()
    started = await cp.call(call.StartTransaction(connector_id=1, id_tag=tag, meter_start=0, timestamp=ago(10)))
    assert started.id_tag_info["status"] == "Accepted"
    return int(started.transaction_id)


async def meter(cp: TestCharger, tx: int, wh: int, minutes_ago: float = 0) -> None:
    await cp.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=mv(ago(minutes_ago), wh, 11000)))


async def test_a_session_is_stopped_when_its_cost_reaches_the_wallet_and_the_order_says_why(
    settings_factory: Callable[..., Settings], tmp_path: Any, console: Console,
) -> None:
    settings = settings_factory(stop_on_empty_wallet=True, **ONE_EURO_PER_KWH)
    async with CentralSystem(settings) as system:
        system.wallet_guard.check_every = 0.05
        async with charger(system, "CP-W") as cp, api_for(system) as (_, http):
            tx = await start(system, cp, "PREPAID", "2.00")
            await meter(cp, tx, 1500, minutes_ago=5)  # 1.50 EUR of 2.00: keeps charging
            assert await system.wallet_guard.check(tx) is False
            status, live = await get(http, f"/api/transactions/{tx}")
            assert status == 200 and live["running"] and (live["energy_wh"], live["cost"]) == (1500, "1.50")
            assert live["power_w"] == 11000
            model = LiveSite(system)  # the console's Transactions screen reads this model
            await model.load()
            shown = model.running[tx]
            model.close()
            status, listed = await get(http, "/api/transactions", running="true")
            assert [(t["id"], t["energy_wh"], t["cost"], t["power_w"]) for t in listed] == [
                (tx, int(shown.energy_wh), str(from_minor(shown.cost_so_far() or 0, "EUR")), shown.power_w)]
            await meter(cp, tx, 2100)  # 2.10 EUR: the wallet is spent
            await eventually(lambda: stops(cp), timeout=5)
            assert stops(cp) == [{"transaction_id": tx}]
            # the charger ends the session as asked, with its own reason
            await cp.call(call.StopTransaction(meter_stop=2100, timestamp=ago(0), transaction_id=tx, id_tag="PREPAID",
                                               reason=Reason.remote))
            row = await system.store.transaction(tx)
            status, order = await get(http, f"/api/transactions/{tx}")
        tag = await system.store.id_tag("PREPAID")
    assert row is not None and row["stop_reason"] == "Remote" and row["cost_total"] == 210
    assert row["stop_note"].startswith("wallet empty: cost so far 2.10 EUR reached the spendable balance 2.00 EUR")
    assert "wallet_empty" in row["flags"].split(",")
    assert status == 200 and order["stop_note"] == row["stop_note"] and "wallet_empty" in order["flags"]
    assert order["running"] is False and order["cost"] == "2.10" and tag is not None and tag["balance"] == -10
    exported = await asyncio.to_thread(run_cli, ["export", "orders", "--db", str(settings.db), "--config",
                                                 str(tmp_path / "none.toml"), "--out", "-"])
    assert exported.code == 0, exported.err
    (line,) = list(csv.DictReader(io.StringIO(exported.out)))
    assert line["stop_reason"] == "Remote" and line["stop_note"] == row["stop_note"]
    assert "wallet_empty" in line["flags"]
    # The console says why too: in the Orders tab, and on the order itself.
    async with CentralSystem(settings) as system:
        app = await console(system)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("3", "]")
            await until(pilot, lambda: cells(app, "#orders").get(str(tx), [""])[-2] == "Remote, wallet empty")
            await pilot.press("enter")
            detail = await until(pilot, lambda: isinstance(app.screen, OrderDetailScreen) and app.screen)
            await until(pilot, lambda: "Remote (wallet empty: cost so far 2.10 EUR" in text_of(detail.query_one("#order")))


class RefusingCharger(TestCharger):
    """Answers every RemoteStopTransaction Rejected, and keeps charging."""

    @on(Action.remote_stop_transaction)
    def _remote_stop(self, **kw: Any) -> Any:
        self._got("RemoteStopTransaction", **kw)
        self.stop_times.append(time.monotonic())
        return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.rejected)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stop_times: list[float] = []


async def test_a_refusing_charger_is_asked_again_with_back_off_never_a_storm(
    settings_factory: Callable[..., Settings],
) -> None:
    async with CentralSystem(settings_factory(stop_on_empty_wallet=True, **ONE_EURO_PER_KWH)) as system:
        guard = system.wallet_guard
        guard.check_every, guard.retry_first, guard.sweep_every = 0.0, 0.4, 0.05
        async with charger(system, "CP-R", RefusingCharger) as cp:
            assert isinstance(cp, RefusingCharger)
            tx = await start(system, cp, "SPENT", "1.00")
            for wh in range(1000, 3000, 100):  # 20 meter values over the balance, as fast as they come
                await meter(cp, tx, wh)
            await eventually(lambda: len(cp.stop_times) >= 3, timeout=5)
            first_three = list(cp.stop_times[:3])
        row = await system.store.transaction(tx)
    gaps = [b - a for a, b in zip(first_three, first_three[1:])]
    assert gaps[0] >= 0.4 * 0.9 and gaps[1] >= 0.8 * 0.9, gaps  # 0.4 s, then doubled
    assert row is not None and row["stopped_at"] is None and row["stop_note"].startswith("wallet empty")


async def test_an_offline_charger_is_not_stormed_and_is_asked_when_it_is_back(
    settings_factory: Callable[..., Settings],
) -> None:
    async with CentralSystem(settings_factory(stop_on_empty_wallet=True, **ONE_EURO_PER_KWH)) as system:
        guard = system.wallet_guard
        guard.retry_first = 0.5
        await guard.stop()  # checks by hand first
        async with charger(system, "CP-O") as cp:
            tx = await start(system, cp, "GONE", "0.50")
            await meter(cp, tx, 900)  # 0.90 EUR of 0.50, and then the link drops
        await eventually(lambda: "CP-O" not in system.sessions)
        assert await guard.check(tx) is True  # asked: offline
        assert guard.requests[tx].attempts == 1
        for _ in range(5):
            assert await guard.check(tx) is False  # within the back-off: not asked again
        guard.check_every, guard.sweep_every = 0.0, 0.05
        guard.start()  # now the periodic sweep too
        async with charger(system, "CP-O") as cp:
            await eventually(lambda: stops(cp), timeout=5)  # once the back-off has passed
            await asyncio.sleep(0.2)  # four sweeps within the next back-off (1 s)
            assert stops(cp) == [{"transaction_id": tx}] and guard.requests[tx].attempts == 2


async def test_a_fleet_wallet_counts_all_its_running_sessions(settings_factory: Callable[..., Settings]) -> None:
    async with CentralSystem(settings_factory(stop_on_empty_wallet=True, **ONE_EURO_PER_KWH)) as system:
        guard = system.wallet_guard
        guard.check_every = 3600.0  # only the explicit checks below
        await provision.add_or_update_tag(system.store, "FLEET", balance="3.00", currency="EUR")
        await provision.add_or_update_tag(system.store, "VAN-1", parent="FLEET", currency="EUR")
        await provision.add_or_update_tag(system.store, "VAN-2", parent="FLEET", currency="EUR")
        async with charger(system, "CP-F") as cp:
            await cp.boot()
            txs = []
            for connector, tag in ((1, "VAN-1"), (2, "VAN-2")):
                started = await cp.call(call.StartTransaction(connector_id=connector, id_tag=tag, meter_start=0,
                                                              timestamp=ago(10)))
                txs.append(started.transaction_id)
            for connector, tx in ((1, txs[0]), (2, txs[1])):
                await cp.call(call.MeterValues(connector_id=connector, transaction_id=tx, meter_value=mv(ago(0), 1400, 0)))
            assert await guard.check(txs[0]) is False  # 2.80 of 3.00 together
            await cp.call(call.MeterValues(connector_id=2, transaction_id=txs[1], meter_value=mv(ago(0), 1700, 0)))
            assert await guard.check(txs[0]) is True  # 1.40 + 1.70 = 3.10: the fleet's wallet is spent
            assert stops(cp) == [{"transaction_id": txs[0]}]
        row = await system.store.transaction(txs[0])
    assert row is not None and "with 1 other running session(s) of the wallet" in row["stop_note"]
    assert "of FLEET" in row["stop_note"]


async def test_off_by_default_and_a_free_session_is_never_stopped(settings_factory: Callable[..., Settings]) -> None:
    async with CentralSystem(settings_factory(**ONE_EURO_PER_KWH)) as system:
        assert system.wallet_guard._sweeper is None  # not asked for: not running
    async with CentralSystem(settings_factory(stop_on_empty_wallet=True, timezone="UTC")) as system:
        async with charger(system, "CP-FREE") as cp:
            tx = await start(system, cp, "EMPTY", "0.00")
            await meter(cp, tx, 50_000)
            assert await system.wallet_guard.check(tx) is False  # a free tariff costs nothing to stop for
            assert stops(cp) == []
