"""The API endpoints a remote console reads and writes with: one per store read the console
makes (named after the store method), the site, wallet movements, password removal, exports.
Each answer is compared with what the store itself returns to the in-process console."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta

import pytest
from ocpp.v16 import call
from ocpp.v16.enums import ChargePointStatus

from ocpp_console.csms import CentralSystem
from ocpp_console.settings import Settings
from ocpp_console.timeutil import iso, utcnow
from tests.conftest import charger
from tests.test_api import api_for, get, post, soon


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(api_port=0, call_timeout=3.0, price_per_kwh="0.40", currency="EUR")


HOUR_AGO = iso(utcnow() - timedelta(hours=1))


async def test_every_console_read_has_an_endpoint(csms: CentralSystem) -> None:
    await csms.store.upsert_id_tag("TAG1")
    await csms.store.wallet_movement("TAG1", 5000, "EUR", "topup", "test")
    async with api_for(csms) as (api, http), charger(csms, "CP-C") as cp:
        await cp.boot()
        await cp.status(1, ChargePointStatus.charging)
        now = iso(utcnow())
        start = await cp.call(call.StartTransaction(connector_id=1, id_tag="TAG1", meter_start=1000, timestamp=now))
        tx = start.transaction_id
        await cp.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{"timestamp": now, "sampled_value": [
            {"value": "7400", "measurand": "Power.Active.Import", "unit": "W"},
            {"value": "2000", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]))
        assert (await post(http, "/api/chargers/CP-C/get-configuration", {}))[0] == 200
        assert (await post(http, "/api/chargers/CP-C/reserve-now", {"connectorId": 2, "expiryDate": soon(),
                                                                    "idTag": "TAG1", "reservationId": 5}))[0] == 200
        profile = {"chargingProfileId": 3, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
                   "chargingProfileKind": "Absolute", "chargingSchedule": {
                       "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400}]}}
        assert (await post(http, "/api/chargers/CP-C/set-charging-profile",
                           {"connectorId": 1, "csChargingProfiles": profile}))[0] == 200
        store = csms.store

        async def same(path: str, expected: object, **params: str) -> None:
            status, body = await get(http, path, **params)
            assert status == 200, (path, body)
            assert body == expected, path

        await same("/api/connectors", await store.connectors())
        await same("/api/connectors", await store.connectors("CP-C"), charger_id="CP-C")
        config = await store.configuration("CP-C")
        assert {r["key"] for r in config} >= {"HeartbeatInterval"}
        await same("/api/chargers/CP-C/configuration", config)
        reservations = await store.reservations("CP-C")
        assert [r["id"] for r in reservations] == [5]
        await same("/api/chargers/CP-C/reservations", reservations)
        profiles = await store.charging_profiles("CP-C")
        assert [p["profile_id"] for p in profiles] == [3]
        await same("/api/chargers/CP-C/charging-profiles", profiles)
        measurands = ("Power.Active.Import", "Energy.Active.Import.Register", "SoC")
        samples = await store.charger_samples_since("CP-C", HOUR_AGO, measurands)
        assert {s["measurand"] for s in samples} == {"Power.Active.Import", "Energy.Active.Import.Register"}
        await same("/api/chargers/CP-C/samples", samples, since=HOUR_AGO)
        status, only_power = await get(http, "/api/chargers/CP-C/samples", since=HOUR_AGO, measurand="Power.Active.Import")
        assert [s["value_num"] for s in only_power] == [7400.0]
        power = await store.power_samples_since(HOUR_AGO)
        assert [p["value_num"] for p in power] == [7400.0]
        await same("/api/power-samples", power, since=HOUR_AGO)
        await cp.call(call.StopTransaction(meter_stop=11000, timestamp=iso(utcnow()), transaction_id=tx, reason="Local"))
        meter_values = await store.meter_values_for(tx)
        assert len(meter_values) >= 2
        await same(f"/api/transactions/{tx}/meter-values", meter_values)
        ledger = await store.ledger_for_transaction(tx)
        assert [m["kind"] for m in ledger] == ["charge"] and ledger[0]["amount"] == -400  # 10 kWh at 0.40
        await same(f"/api/transactions/{tx}/ledger", ledger)
        await same("/api/energy-stopped", {"since": HOUR_AGO, "energy_wh": 10000.0}, since=HOUR_AGO)
        await same("/api/revenue", {"since": HOUR_AGO, "revenue": {"EUR": 400}}, since=HOUR_AGO)
        # refusals, and what is not there
        for path in ("/api/chargers/NOPE/configuration", "/api/chargers/NOPE/samples?since=" + HOUR_AGO,
                     "/api/transactions/9999/ledger", "/api/transactions/9999/meter-values"):
            assert (await get(http, path))[0] == 404, path
        for bad in ({}, {"since": "yesterday"}, {"since": "2026-11-25T08:00:00"}):  # a time needs its zone
            status, error = await get(http, "/api/revenue", **bad)
            assert status == 400 and "since" in error["message"]
        # the site the console shows in its header and decides with
        status, site = await get(http, "/api/site")
        assert status == 200 and site["ocpp"]["port"] == csms.port and site["connected"] == ["CP-C"]
        assert site["currency"] == "EUR" and site["instance"]["pid"] == csms.instance.pid
        assert site["events"] == {"epoch": api.stream.epoch, "seq": api.stream.seq}
        # the tag's last refusal, and its balance in minor units as the console computes with it
        await cp.call(call.Authorize(id_tag="NOBODY"))
        status, tags = await get(http, "/api/id-tags")
        assert [(t["id_tag"], t["balance_minor"]) for t in tags] == [("TAG1", 4600)]
        stored = {r["id_tag"]: r for r in await store.id_tags()}
        assert tags[0]["refused_status"] == stored["TAG1"]["refused_status"]


async def test_console_writes_wallet_password_export(csms: CentralSystem) -> None:
    await csms.store.upsert_id_tag("FLEET")
    await csms.store.upsert_id_tag("CAR1", parent_id_tag="FLEET")
    async with api_for(csms) as (_, http):
        status, moved = await post(http, "/api/id-tags/CAR1/wallet", {"kind": "topup", "amount": "25.50", "reason": "card"})
        assert status == 200 and moved == {"id_tag": "CAR1", "wallet_id_tag": "FLEET", "kind": "topup",
                                           "amount": "25.50", "balance": "25.50", "currency": "EUR"}
        status, moved = await post(http, "/api/id-tags/FLEET/wallet", {"kind": "adjustment", "amount": "-0.50"})
        assert status == 200 and moved["balance"] == "25.00"
        assert (await csms.store.id_tag("FLEET"))["balance"] == 2500
        ledger = await csms.store.ledger("FLEET")
        assert [(m["kind"], m["amount"], m["reason"]) for m in ledger] == [("topup", 2550, "card"), ("adjustment", -50, None)]
        for body, error in [({"kind": "topup", "amount": "-1"}, "adds money"),
                            ({"kind": "topup", "amount": "1.001"}, "more decimals"),
                            ({"kind": "gift", "amount": "1"}, "kind")]:
            status, answer = await post(http, "/api/id-tags/FLEET/wallet", body)
            assert status == 400 and error in answer["message"], (body, answer)
        assert (await post(http, "/api/id-tags/NOBODY/wallet", {"kind": "topup", "amount": "1"}))[0] == 404
        # a password set, then removed (null), as the console's `p` does
        async with http.put("/api/chargers/CP-P/password", json={"password": "a-long-enough-secret"}) as response:
            assert response.status == 200 and (await response.json())["has_password"]
        async with http.put("/api/chargers/CP-P/password", json={"password": None}) as response:
            assert response.status == 200 and not (await response.json())["has_password"]
        assert (await csms.store.password_hashes("CP-P"))[0] is None
        # the exports the console's `e` writes
        async with http.get("/api/export/ledger") as response:
            assert response.status == 200 and response.content_type == "text/csv"
            rows = list(csv.DictReader(io.StringIO(await response.text())))
            assert response.headers["X-Row-Count"] == "2" and len(rows) == 2
        async with http.get("/api/export/orders", params={"from": "2026-01-01", "to": "2026-01-31"}) as response:
            assert response.status == 200 and (await response.text()).startswith("transaction_id,")
        assert (await get(http, "/api/export/orders", **{"from": "January"}))[0] == 400
        assert (await get(http, "/api/export/refunds"))[0] == 404


async def test_reserve_now_without_a_reservation_id_gets_the_next_free_one(csms: CentralSystem) -> None:
    """As from the console: the operator cannot know which numbers the site already uses."""
    await csms.store.upsert_id_tag("TAG1")
    async with api_for(csms) as (api, http), charger(csms, "CP-R") as cp:
        await cp.boot()
        first = await post(http, "/api/chargers/CP-R/reserve-now", {"connectorId": 1, "expiryDate": soon(), "idTag": "TAG1"})
        second = await post(http, "/api/chargers/CP-R/reserve-now", {"connectorId": 2, "expiryDate": soon(), "idTag": "TAG1"})
        assert first[0] == second[0] == 200, (first, second)
        numbers = [first[1]["reservationId"], second[1]["reservationId"]]
        assert numbers[0] != numbers[1] and first[1]["status"] == "Accepted"
        # the charger got the numbers the answers name, and the site stored them
        assert [kw["reservation_id"] for name, kw in cp.received if name == "ReserveNow"] == numbers
        assert sorted(r["id"] for r in await csms.store.reservations("CP-R")) == sorted(numbers)
        # the published document says so: reservationId is optional in the request, present in the answer
        status, doc = await get(http, "/api/openapi.json")
        assert "reservationId" not in doc["components"]["schemas"]["ReserveNow"]["required"]
        assert "reservationId" in doc["components"]["schemas"]["ReserveNowResponse"]["properties"]


async def test_the_next_reservation_id_stays_within_32_bits(csms: CentralSystem) -> None:
    """A reservation numbered by hand at the top of the range does not push the next free one past it."""
    await csms.store.save_reservation(2147483647, "CP-X", 1, "TAG1", None, soon(), "Accepted")
    await csms.store.save_reservation(41, "CP-X", 1, "TAG1", None, soon(), "Accepted")
    assert await csms.store.next_reservation_id() == 42
