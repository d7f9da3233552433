"""Tariffs, settlement and wallets, over real sockets; exact money."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from ocpp.v16 import call

from ocpp_console.csms import CentralSystem
from ocpp_console.csms.billing import Tariff, Window, settle, timeline
from ocpp_console.sim import SimulatedCharger
from ocpp_console.settings import load_settings
from tests.conftest import charger, eventually

PRICED = dict(price_per_kwh="0.30", price_per_minute="0.02", idle_price_per_minute="0.10", idle_grace_minutes="5",
              session_fee="1.00", currency="EUR", timezone="UTC")


def mv(ts: str, wh: int, w: int) -> list[dict[str, Any]]:
    return [{"timestamp": ts, "sampledValue": [
        {"value": str(wh), "unit": "Wh", "measurand": "Energy.Active.Import.Register"},
        {"value": str(w), "unit": "W", "measurand": "Power.Active.Import"},
    ]}]


async def session(cp: Any, tag: str, start: str, samples: list[tuple[str, int, int]], stop: str, meter_stop: int,
                  meter_start: int = 0, connector: int = 1) -> int:
    started = await cp.call(call.StartTransaction(connector_id=connector, id_tag=tag, meter_start=meter_start,
                                                  timestamp=start))
    tx = started.transaction_id
    for ts, wh, w in samples:
        await cp.call(call.MeterValues(connector_id=connector, transaction_id=tx, meter_value=mv(ts, wh, w)))
    await cp.call(call.StopTransaction(meter_stop=meter_stop, timestamp=stop, transaction_id=tx, id_tag=tag))
    return tx


def test_settlement_line_items_are_exact() -> None:
    tariff = Tariff(price_per_kwh=Decimal("0.30"), price_per_minute=Decimal("0.02"),
                    idle_price_per_minute=Decimal("0.10"), idle_grace_minutes=Decimal(5), session_fee=Decimal("1.00"))
    points = timeline("2026-11-25T10:00:00Z", "2026-11-25T11:30:00Z", 0, 20000, [
        ("2026-11-25T10:30:00Z", "Energy.Active.Import.Register", 10000.0),
        ("2026-11-25T11:00:00Z", "Energy.Active.Import.Register", 20000.0),
        ("2026-11-25T11:00:00Z", "Power.Active.Import", 0.0),
    ])
    result = settle(tariff, points, 0, 20000)
    assert result.items == {"energy": 600, "time": 120, "idle": 250, "session_fee": 100}
    assert result.total == 1070 and result.charging_seconds == 3600 and result.idle_seconds == 1800
    assert result.discrepancy_wh == 0


def test_currency_minor_units() -> None:
    from ocpp_console.csms.billing import format_money, to_minor

    assert to_minor(Decimal("12.345"), "EUR") == 1235  # half up
    assert to_minor(Decimal("1234.5"), "JPY") == 1235
    assert to_minor(Decimal("1.2345"), "KWD") == 1235
    assert format_money(1235, "EUR") == "12.35 EUR" and format_money(1235, "JPY") == "1235 JPY"


def test_time_of_use_window_across_midnight() -> None:
    window = Window.parse("22:00-06:00=0.20")
    from datetime import time

    assert window.contains(time(23, 0)) and window.contains(time(5, 59)) and not window.contains(time(6, 0))
    with pytest.raises(ValueError, match="HH:MM-HH:MM=PRICE"):
        Window.parse("tonight=cheap")


async def test_priced_session_over_real_sockets(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(**PRICED)) as system:
        await system.store.upsert_id_tag("CARD")
        await system.store.wallet_movement("CARD", 5000, "EUR", "topup", "first top-up")
        async with charger(system, "CP1") as cp:
            await cp.boot()
            tx = await session(cp, "CARD", "2026-11-25T10:00:00Z", [
                ("2026-11-25T10:30:00Z", 10000, 20000), ("2026-11-25T11:00:00Z", 20000, 0),
            ], "2026-11-25T11:30:00Z", 20000)
        row = await system.store.transaction(tx)
        ledger = await system.store.ledger("CARD")
        balance = (await system.store.id_tag("CARD"))["balance"]
    assert row is not None
    assert row["cost_total"] == 1070 and row["currency"] == "EUR"
    assert (row["charging_seconds"], row["idle_seconds"]) == (3600, 1800)
    assert [(r["kind"], r["amount"], r["balance_after"]) for r in ledger] == [("topup", 5000, 5000), ("charge", -1070, 3930)]
    assert balance == 3930


async def test_time_of_use_session_crossing_the_window(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(price_per_kwh="0.40", tou_windows="22:00-06:00=0.20",
                                              timezone="UTC", idle_grace_minutes="0")) as system:
        await system.store.upsert_id_tag("NIGHT")
        async with charger(system, "CP1") as cp:
            await cp.boot()
            # 5 kWh every half hour from 21:00 to 23:00: 10 kWh at 0.40, 10 kWh at 0.20
            tx = await session(cp, "NIGHT", "2026-11-25T21:00:00Z", [
                ("2026-11-25T21:30:00Z", 5000, 10000), ("2026-11-25T22:00:00Z", 10000, 10000),
                ("2026-11-25T22:30:00Z", 15000, 10000),
            ], "2026-11-25T23:00:00Z", 20000)
        row = await system.store.transaction(tx)
    assert row is not None and row["cost_total"] == 600
    # a half-hour straddling the boundary is split: 21:45-22:15 for 5 kWh -> half at each price
    tariff = Tariff(price_per_kwh=Decimal("0.40"), windows=(Window.parse("22:00-06:00=0.20"),), timezone="UTC")
    straddle = settle(tariff, timeline("2026-11-25T21:45:00Z", "2026-11-25T22:15:00Z", 0, 5000, []), 0, 5000)
    assert straddle.items["energy"] == 150


async def test_repeated_stop_does_not_charge_twice(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(**PRICED)) as system:
        await system.store.upsert_id_tag("CARD")
        async with charger(system, "CP1") as cp:
            await cp.boot()
            tx = await session(cp, "CARD", "2026-11-25T10:00:00Z", [], "2026-11-25T10:30:00Z", 10000)
            for _ in range(3):  # the charger never got our answer and sends it again
                await cp.call(call.StopTransaction(meter_stop=10000, timestamp="2026-11-25T10:30:00Z", transaction_id=tx))
        charges = [r for r in await system.store.ledger("CARD") if r["kind"] == "charge"]
        balance = (await system.store.id_tag("CARD"))["balance"]
    assert len(charges) == 1 and charges[0]["amount"] < 0
    assert balance == charges[0]["amount"]  # one debit from an empty wallet


async def test_child_tag_spends_the_parents_wallet(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(**PRICED)) as system:
        await system.store.upsert_id_tag("FLEET")
        await system.store.upsert_id_tag("VAN-1", parent_id_tag="FLEET")
        await system.store.wallet_movement("VAN-1", 2000, "EUR", "topup", "topped up through the van's card")
        async with charger(system, "CP1") as cp:
            await cp.boot()
            tx = await session(cp, "VAN-1", "2026-11-25T10:00:00Z", [], "2026-11-25T10:30:00Z", 10000)
        row = await system.store.transaction(tx)
        fleet, van = await system.store.id_tag("FLEET"), await system.store.id_tag("VAN-1")
        wallets = {r["id_tag"] for r in await system.store.ledger()}
    assert row is not None and row["wallet_id_tag"] == "FLEET"
    assert van["balance"] == 0
    assert fleet["balance"] == 2000 - row["cost_total"]
    assert wallets == {"FLEET"}


async def test_below_minimum_balance_is_blocked(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(min_balance="5.00", **PRICED)) as system:
        await system.store.upsert_id_tag("POOR")
        await system.store.upsert_id_tag("RICH")
        await system.store.wallet_movement("POOR", 499, "EUR", "topup", None)
        await system.store.wallet_movement("RICH", 500, "EUR", "topup", None)
        async with charger(system, "CP1") as cp:
            await cp.boot()
            assert (await cp.call(call.Authorize(id_tag="POOR"))).id_tag_info["status"] == "Blocked"
            assert (await cp.call(call.Authorize(id_tag="RICH"))).id_tag_info["status"] == "Accepted"
            start = await cp.call(call.StartTransaction(connector_id=1, id_tag="POOR", meter_start=0,
                                                        timestamp="2026-11-25T10:00:00Z"))
            assert start.id_tag_info["status"] == "Blocked" and start.transaction_id > 0
    async with CentralSystem(settings_factory(min_balance="5.00", wallet=False, **PRICED)) as system:
        await system.store.upsert_id_tag("EMPTY")  # balance 0, below the minimum, but wallets are off
        async with charger(system, "CP1") as cp:
            await cp.boot()
            assert (await cp.call(call.Authorize(id_tag="EMPTY"))).id_tag_info["status"] == "Accepted"


async def test_simulated_session_is_settled_and_paid(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(**PRICED)) as system:
        await system.store.upsert_id_tag("SIMCARD")
        await system.store.wallet_movement("SIMCARD", 10_000, "EUR", "topup", None)
        sim = SimulatedCharger("SIM-BILL", f"ws://127.0.0.1:{system.port}", sessions="none", speed=600, seed=3)
        task = asyncio.create_task(sim.run())
        try:
            await sim.wait_ready(10)
            sim.plug_in(1, "SIMCARD", stay_s=1800)

            async def finished() -> Any:
                rows = await system.store.transactions("SIM-BILL", running=False)
                return rows[0] if rows else None

            row = await eventually(finished, 30)
        finally:
            await sim.stop()
            await asyncio.wait_for(task, 15)
        tag = await system.store.id_tag("SIMCARD")
    import json

    items = json.loads(row["cost_items"])
    assert row["energy_wh"] > 0 and row["cost_total"] == sum(items.values())
    expected_energy = (Decimal(row["energy_wh"]) / 1000 * Decimal("0.30")).quantize(Decimal("0.01"))
    assert items["energy"] == int(expected_energy * 100)
    assert items["session_fee"] == 100 and items["time"] == round(row["charging_seconds"] / 60 * 2)
    assert row["energy_discrepancy_wh"] in (0, None)
    assert tag["balance"] == 10_000 - row["cost_total"]


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["topup", "session", "adjust"]), st.sampled_from(["A", "B", "A1"]),
                          st.integers(min_value=-3000, max_value=30000)), min_size=1, max_size=12))
def test_balance_always_equals_the_ledger(tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, str, int]]) -> None:
    async def run() -> None:
        path = tmp_path_factory.mktemp("wallet")
        settings = load_settings(path / "none.toml", host="127.0.0.1", port=0, db=path / "w.sqlite",
                                 unknown_chargers="accept", wallet=False, **PRICED)
        async with CentralSystem(settings) as system:
            await system.store.upsert_id_tag("A")
            await system.store.upsert_id_tag("B")
            await system.store.upsert_id_tag("A1", parent_id_tag="A")
            async with charger(system, "CP1") as cp:
                await cp.boot()
                minute = 0
                for kind, tag, amount in ops:
                    if kind == "session":
                        start = f"2026-11-25T{minute // 60:02d}:{minute % 60:02d}:00Z"
                        minute += 30
                        stop = f"2026-11-25T{minute // 60:02d}:{minute % 60:02d}:00Z"
                        await session(cp, tag, start, [], stop, abs(amount))
                    else:
                        await system.store.wallet_movement(tag, amount, "EUR", "topup" if kind == "topup" else "adjustment",
                                                           "property test")
            for tag in ("A", "B", "A1"):
                balance = (await system.store.id_tag(tag))["balance"]
                assert balance == sum(r["amount"] for r in await system.store.ledger(tag))
            assert (await system.store.id_tag("A1"))["balance"] == 0  # the child never holds money
            charged = sum(r["amount"] for r in await system.store.ledger() if r["kind"] == "charge")
            orders = sum(t["cost_total"] for t in await system.store.orders())
            assert -charged == orders

    asyncio.run(run())


async def test_export_orders_and_ledger_csv(settings_factory: Any, tmp_path: Path) -> None:
    settings = settings_factory(**PRICED)
    async with CentralSystem(settings) as system:
        await system.store.upsert_id_tag("CARD")
        await system.store.wallet_movement("CARD", 5000, "EUR", "topup", "cash")
        async with charger(system, "CP1") as cp:
            await cp.boot()
            await session(cp, "CARD", "2026-11-25T10:00:00Z", [
                ("2026-11-25T10:30:00Z", 10000, 20000), ("2026-11-25T11:00:00Z", 20000, 0),
            ], "2026-11-25T11:30:00Z", 20000)
            await session(cp, "CARD", "2026-11-26T10:00:00Z", [], "2026-11-26T10:30:00Z", 25000, meter_start=20000)
    out = tmp_path / "orders.csv"
    env_free = {"TZ": "UTC", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "ocpp_console", "export", "orders", "--config", str(tmp_path / "none.toml"),
         "--db", str(settings.db), "--from", "2026-11-25", "--to", "2026-11-25", "--out", str(out)],
        capture_output=True, text=True, timeout=60, env=env_free,
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 1  # the 26th is outside the range
    row = rows[0]
    for column in ("transaction_id", "charger", "connector", "id_tag", "start", "stop", "energy_kwh", "charging_minutes",
                   "idle_minutes", "energy_cost", "time_cost", "idle_cost", "session_fee_cost", "total", "currency",
                   "stop_reason"):
        assert column in row
    assert (row["energy_kwh"], row["charging_minutes"], row["idle_minutes"]) == ("20.000", "60.00", "30.00")
    assert (row["energy_cost"], row["time_cost"], row["idle_cost"], row["session_fee_cost"]) == ("6.00", "1.20", "2.50", "1.00")
    assert row["total"] == "10.70" and row["currency"] == "EUR"
    assert sum(Decimal(row[f"{i}_cost"]) for i in ("energy", "time", "idle", "session_fee")) == Decimal(row["total"])
    ledger = subprocess.run(
        [sys.executable, "-m", "ocpp_console", "export", "ledger", "--config", str(tmp_path / "none.toml"),
         "--db", str(settings.db), "--out", "-"], capture_output=True, text=True, timeout=60, env=env_free,
    )
    lines = list(csv.DictReader(io.StringIO(ledger.stdout)))
    assert [(r["kind"], r["amount"]) for r in lines] == [("topup", "50.00"), ("charge", "-10.70"), ("charge", "-3.10")]  # 1.50 + 0.60 + 1.00
    assert lines[-1]["balance_after"] == "36.20"


async def test_per_charger_tariff_from_the_toml_file(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text(
        'price_per_kwh = "0.30"\ncurrency = "EUR"\nunknown_chargers = "accept"\n\n'
        '[charger_tariffs.DC-01]\nprice_per_kwh = "0.60"\nsession_fee = "2"\n'
    )
    settings = load_settings(config, host="127.0.0.1", port=0, db=tmp_path / "t.sqlite")
    assert settings.charger_tariffs == {"DC-01": {"price_per_kwh": "0.60", "session_fee": "2"}}
    async with CentralSystem(settings) as system:
        totals = {}
        for cp_id in ("AC-01", "DC-01"):
            async with charger(system, cp_id) as cp:
                await cp.boot()
                tx = await session(cp, f"T-{cp_id}", "2026-11-25T10:00:00Z", [], "2026-11-25T10:30:00Z", 10000)
            totals[cp_id] = (await system.store.transaction(tx))["cost_total"]
    assert totals == {"AC-01": 300, "DC-01": 800}


def test_bad_tariff_settings_are_refused(tmp_path: Path) -> None:
    from pydantic import ValidationError

    for bad in ({"tou_windows": "night=cheap"}, {"currency": "euro"}, {"timezone": "Mars/Olympus"},
                {"charger_tariffs": {"X": {"price_per_kwh": "lots"}}}, {"charger_tariffs": {"X": {"colour": "red"}}}):
        with pytest.raises(ValidationError):
            load_settings(tmp_path / "none.toml", **bad)
