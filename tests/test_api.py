"""The local HTTP API over real sockets: the central system and the API in one loop, a simulated
charger (or the ocpp library's own ChargePoint) on the other end, aiohttp as the HTTP client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from ocpp.routing import on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action, ChargePointStatus, ResetStatus
from pydantic import ValidationError
from websockets.asyncio.client import connect

from ocpp_console.api import ApiServer
from ocpp_console.cli import main
from ocpp_console.csms import CentralSystem
from ocpp_console.csms.operations import OPERATIONS
from ocpp_console.settings import Settings
from ocpp_console.timeutil import iso, utcnow
from tests.clients import TS, TestCharger
from tests.conftest import Console, charger
from tests.schemas import assert_valid_response, validator
from tests.test_security import basic
from tests.test_sim import fast_options, running, until

PEM = (
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBszCCAVmgAwIBAgIUE2Vi9Jm1eJx0mJb1m3mQ3x5oVxEwCgYIKoZIzj0EAwIw\n"
    "-----END CERTIFICATE-----\n"
)


@contextlib.asynccontextmanager
async def api_for(csms: CentralSystem, authorized: bool = True) -> AsyncIterator[tuple[ApiServer, aiohttp.ClientSession]]:
    """The API, and an HTTP client that carries its token (read from the token file by default)."""
    api = ApiServer(csms)
    await api.start()
    headers = {"Authorization": f"Bearer {api.token}"} if authorized else {}
    try:
        async with aiohttp.ClientSession(api.url, timeout=aiohttp.ClientTimeout(total=20), headers=headers) as http:
            yield api, http
    finally:
        await api.stop()


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    """The central system of the `csms` fixture (tests/conftest.py), with its API on a free port."""
    return settings_factory(api_port=0, call_timeout=3.0)


@pytest.fixture
def system(csms: CentralSystem) -> CentralSystem:
    return csms


async def post(http: aiohttp.ClientSession, path: str, body: Any = None) -> tuple[int, Any]:
    async with http.post(path, json=body if body is not None else {}) as response:
        return response.status, await response.json()


async def get(http: aiohttp.ClientSession, path: str, **params: Any) -> tuple[int, Any]:
    async with http.get(path, params=params) as response:
        return response.status, await response.json()


def soon(minutes: int = 30) -> str:
    return iso(utcnow() + timedelta(minutes=minutes))


async def test_every_operation_reaches_a_simulated_charger(system: CentralSystem) -> None:
    """Each of the 26 operations, by its kebab-case name, answered 200 with the charger's own
    (schema-valid) payload; effects that the central system stores are visible afterwards."""
    await system.store.upsert_id_tag("TAG1")
    done: dict[str, dict[str, Any]] = {}
    url = f"ws://127.0.0.1:{system.port}"
    async with api_for(system) as (_, http), running(url, "CP-API", connectors=2, options=fast_options()):

        async def op(name: str, body: dict[str, Any]) -> dict[str, Any]:
            status, answer = await post(http, f"/api/chargers/CP-API/{name}", body)
            assert status == 200, (name, status, answer)
            assert_valid_response(OPERATIONS[name].name, answer)
            done[name] = answer
            return answer

        assert (await op("get-configuration", {"key": ["HeartbeatInterval"]}))["configurationKey"][0]["key"] == "HeartbeatInterval"
        assert (await op("change-configuration", {"key": "MeterValueSampleInterval", "value": "30"}))["status"] == "Accepted"
        assert {r["key"]: r["value"] for r in await system.store.configuration("CP-API")}["MeterValueSampleInterval"] == "30"
        assert (await op("data-transfer", {"vendorId": "com.example", "messageId": "ping", "data": "x"}))["status"]
        assert (await op("clear-cache", {}))["status"] == "Accepted"
        assert (await op("get-local-list-version", {}))["listVersion"] >= 0
        assert (await op("send-local-list", {"listVersion": 3, "updateType": "Full", "localAuthorizationList": [
            {"idTag": "TAG1", "idTagInfo": {"status": "Accepted"}}]}))["status"] == "Accepted"
        assert (await op("get-local-list-version", {}))["listVersion"] == 3
        assert (await op("reserve-now", {"connectorId": 2, "expiryDate": soon(), "idTag": "TAG1", "reservationId": 41}))[
            "status"] == "Accepted"
        assert (await op("cancel-reservation", {"reservationId": 41}))["status"] == "Accepted"
        assert (await op("trigger-message", {"requestedMessage": "Heartbeat"}))["status"] == "Accepted"
        assert (await op("change-availability", {"connectorId": 2, "type": "Inoperative"}))["status"] == "Accepted"
        assert (await op("change-availability", {"connectorId": 2, "type": "Operative"}))["status"] == "Accepted"
        profile = {"chargingProfileId": 9, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
                   "chargingProfileKind": "Absolute", "chargingSchedule": {
                       "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400}]}}
        assert (await op("set-charging-profile", {"connectorId": 1, "csChargingProfiles": profile}))["status"] == "Accepted"
        assert (await op("get-composite-schedule", {"connectorId": 1, "duration": 600}))["status"] == "Accepted"
        assert (await op("clear-charging-profile", {"id": 9}))["status"] == "Accepted"
        assert (await op("remote-start-transaction", {"idTag": "TAG1", "connectorId": 1}))["status"] == "Accepted"
        tx = await until(lambda: system.store.transactions("CP-API", running=True), what="a running transaction")
        assert (await op("remote-stop-transaction", {"transactionId": tx[0]["id"]}))["status"] == "Accepted"
        await until(lambda: system.store.transactions("CP-API", running=False), what="the transaction stopped")
        assert (await op("unlock-connector", {"connectorId": 1}))["status"] in ("Unlocked", "NotSupported")
        assert (await op("get-diagnostics", {"location": "ftp://127.0.0.1:9/diag"}))  # fileName is optional
        # the security extension
        assert (await op("install-certificate", {"certificateType": "CentralSystemRootCertificate",
                                                 "certificate": PEM}))["status"] == "Accepted"
        ids = await op("get-installed-certificate-ids", {"certificateType": "CentralSystemRootCertificate"})
        assert ids["status"] == "Accepted" and ids["certificateHashData"]
        assert (await op("delete-certificate", {"certificateHashData": ids["certificateHashData"][0]}))["status"] == "Accepted"
        assert (await op("certificate-signed", {"certificateChain": PEM}))["status"] in ("Accepted", "Rejected")
        assert (await op("extended-trigger-message", {"requestedMessage": "Heartbeat"}))["status"] == "Accepted"
        assert (await op("get-log", {"logType": "DiagnosticsLog", "requestId": 5,
                                     "log": {"remoteLocation": "ftp://127.0.0.1:9/logs"}}))["status"] == "Accepted"
        assert (await op("signed-update-firmware", {"requestId": 6, "firmware": {
            "location": "http://127.0.0.1:9/fw.bin", "retrieveDateTime": iso(utcnow()),
            "signingCertificate": PEM, "signature": "c2lnbmF0dXJl"}}))["status"] == "Accepted"
        assert (await op("update-firmware", {"location": "http://127.0.0.1:9/fw.bin", "retrieveDate": iso(utcnow())})) == {}
        assert (await op("reset", {"type": "Soft"}))["status"] == "Accepted"
    assert set(done) == set(OPERATIONS), set(OPERATIONS) - set(done)
    commands = {r["action"] for r in await system.store.commands("CP-API")}
    assert {o.name for o in OPERATIONS.values()} <= commands  # every operation in the command log


class SlowCharger(TestCharger):
    # The same name as TestCharger's handler, so that this one replaces it: the ocpp package routes
    # an action claimed by two methods to whichever name it saw decorated last, in any class.
    @on(Action.reset)
    async def _reset(self, type: str) -> call_result.Reset:
        await asyncio.sleep(5)
        return call_result.Reset(status=ResetStatus.accepted)


async def test_status_codes(system: CentralSystem) -> None:
    async with api_for(system) as (_, http):
        status, body = await post(http, "/api/chargers/NOPE/reset", {"type": "Soft"})
        assert (status, body["error"]) == (404, "unknown_charger")
        async with charger(system, "CP-GONE") as cp:
            await cp.boot()
        await until(lambda: "CP-GONE" not in system.sessions)
        status, body = await post(http, "/api/chargers/CP-GONE/reset", {"type": "Soft"})
        assert (status, body["error"]) == (404, "offline")
        async with charger(system, "CP-1") as cp:
            await cp.boot()
            status, body = await post(http, "/api/chargers/CP-1/reboot-now", {})
            assert (status, body["error"]) == (404, "unknown_operation")
            status, body = await post(http, "/api/chargers/CP-1/reset", {"type": "Gentle"})
            assert (status, body["error"]) == (400, "invalid_payload") and "type" in body["message"]
            status, body = await post(http, "/api/chargers/CP-1/change-configuration", {"key": "HeartbeatInterval"})
            assert status == 400 and "value" in body["message"]
            async with http.post("/api/chargers/CP-1/reset", data=b"{not json",
                                 headers={"Content-Type": "application/json"}) as response:
                assert response.status == 400 and (await response.json())["error"] == "invalid_json"
            # CALLERROR: the ocpp library's ChargePoint has no GetLog handler and says NotImplemented
            status, body = await post(http, "/api/chargers/CP-1/get-log", {
                "logType": "SecurityLog", "requestId": 1, "log": {"remoteLocation": "ftp://127.0.0.1:9/x"}})
            assert (status, body["error"], body["code"]) == (502, "callerror", "NotImplemented")
            status, body = await post(http, "/api/chargers/CP-1/reset", {"type": "Hard"})
            assert (status, body) == (200, {"status": "Accepted"})
            assert ("Reset", {"type": "Hard"}) in cp.received
        async with charger(system, "CP-SLOW", SlowCharger) as cp:
            await cp.boot()
            status, body = await post(http, "/api/chargers/CP-SLOW/reset", {"type": "Soft"})
            assert (status, body["error"]) == (504, "timeout")


async def test_read_endpoints(system: CentralSystem) -> None:
    await system.store.upsert_id_tag("TAG1")
    async with api_for(system) as (_, http), charger(system, "CP-R") as cp:
        await cp.boot()
        await cp.status(1, ChargePointStatus.charging)
        tx = (await cp.call(call.StartTransaction(connector_id=1, id_tag="TAG1", meter_start=1000, timestamp=TS))).transaction_id
        status, chargers = await get(http, "/api/chargers")
        assert status == 200
        (found,) = [c for c in chargers if c["id"] == "CP-R"]
        assert found["connected"] and found["vendor"] == "TestVendor" and found["registration"] == "Accepted"
        assert found["connectors"][0] == {**found["connectors"][0], "connector_id": 1, "status": "Charging"}
        assert (await get(http, "/api/chargers/CP-R"))[1]["firmware_version"] == "1.2.3"
        assert (await get(http, "/api/chargers/NONE"))[0] == 404
        status, running_txs = await get(http, "/api/transactions", running="true")
        assert [t["id"] for t in running_txs] == [tx] and running_txs[0]["running"]
        await cp.call(call.StopTransaction(meter_stop=4500, timestamp=TS, transaction_id=tx, reason="Local"))
        status, one = await get(http, f"/api/transactions/{tx}")
        assert status == 200 and one["energy_wh"] == 3500 and not one["running"]
        assert (await get(http, "/api/transactions/99999"))[0] == 404
        assert (await get(http, "/api/transactions", limit="0"))[0] == 400
        status, orders = await get(http, "/api/orders", **{"from": "2000-01-01"})
        assert status == 200 and [o["id"] for o in orders] == [tx]
        assert (await get(http, "/api/orders", to="yesterday"))[0] == 400
        # a misspelt filter is refused, not ignored (it would answer with everything)
        status, error = await get(http, "/api/transactions", runing="true")
        assert status == 400 and error["error"] == "unknown_parameter" and "'runing'" in error["message"]
        assert (await get(http, "/api/chargers/CP-R", limit="1"))[0] == 400
        status, tags = await get(http, "/api/id-tags")
        assert [t["id_tag"] for t in tags] == ["TAG1"] and tags[0]["balance"] == "0.00"
        status, log = await get(http, "/api/messages", charger_id="CP-R", limit="3")
        assert status == 200 and len(log) == 3 and log[0]["action"] == "StopTransaction"
        status, doc = await get(http, "/api/openapi.json")
        assert status == 200 and doc["openapi"].startswith("3.")
        assert {f"/api/chargers/{{charger_id}}/{name}" for name in OPERATIONS} <= set(doc["paths"])


async def test_manage_id_tags_and_passwords(settings_factory: Callable[..., Settings]) -> None:
    csms = CentralSystem(settings_factory(api_port=0, security_profile=1, unknown_chargers="pending"))
    await csms.start()
    try:
        async with api_for(csms) as (_, http):
            async with http.put("/api/id-tags/NEWTAG", json={"status": "Blocked", "note": "lost card"}) as response:
                assert response.status == 200
                assert (await response.json())["status"] == "Blocked"
            assert (await csms.store.id_tag("NEWTAG"))["status"] == "Blocked"
            async with http.put("/api/id-tags/NEWTAG", json={"status": "Sideways"}) as response:
                assert response.status == 400
            async with http.put("/api/chargers/CP-PW/password", json={"password": "short"}) as response:
                assert response.status == 400 and "password" in (await response.json())["message"]
            async with http.put("/api/chargers/CP-PW/password", json={"password": "a-long-enough-secret"}) as response:
                assert response.status == 200 and (await response.json())["has_password"]
        async with connect(f"ws://127.0.0.1:{csms.port}/CP-PW", subprotocols=["ocpp1.6"],
                           additional_headers=basic("CP-PW", "a-long-enough-secret")) as ws:
            cp = TestCharger("CP-PW", ws)
            task = asyncio.create_task(cp.start())
            assert (await cp.boot()).status == "Accepted"  # provisioned: accepted, not pending
            task.cancel()
    finally:
        await csms.stop()


async def test_a_token_is_required_when_set(settings_factory: Callable[..., Settings]) -> None:
    with pytest.raises(ValidationError, match="needs --api-token"):
        settings_factory(api_port=0, api_host="0.0.0.0")
    settings_factory(api_port=0, api_host="0.0.0.0", api_token="t0ken")  # accepted with a token
    assert main(["serve", "--api-port", "0", "--api-host", "192.0.2.1", "--db", "/nonexistent/x.sqlite"]) == 2
    csms = CentralSystem(settings_factory(api_port=0, api_token="s3cret-token"))
    await csms.start()
    try:
        async with api_for(csms, authorized=False) as (api, http):
            assert (await get(http, "/api/chargers"))[0] == 401
            async with http.get("/api/chargers", headers={"Authorization": "Bearer wrong"}) as response:
                assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
            async with http.get("/api/chargers", headers={"Authorization": "Bearer s3cret-token"}) as response:
                assert response.status == 200
            assert (await get(http, "/api/openapi.json"))[0] == 200  # the document itself is public
    finally:
        await csms.stop()


async def test_ocpp_console_call_end_to_end(system: CentralSystem, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # the shell has the running instance's environment: `call` finds the token beside its database
    monkeypatch.setenv("OCPP_CONSOLE_DB", str(system.settings.db))
    async with api_for(system) as (api, _), charger(system, "CP-CLI") as cp:
        await cp.boot()
        code = await asyncio.to_thread(
            main, ["call", "CP-CLI", "change-configuration", "--json", '{"key": "HeartbeatInterval", "value": "90"}',
                   "--api-port", str(api.port)])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert '"status": "Accepted"' in out
        assert cp.config["HeartbeatInterval"][0] == "90"
        # the OCPP name works too, and errors come back as one line with the HTTP status
        code = await asyncio.to_thread(main, ["call", "NOBODY", "Reset", "--json", '{"type": "Soft"}',
                                              "--api-port", str(api.port)])
        out, err = capsys.readouterr()
        assert code == 1 and "404 unknown_charger" in err and out == ""
        code = await asyncio.to_thread(main, ["call", "CP-CLI", "explode", "--api-port", str(api.port)])
        assert code == 2 and "unknown operation" in capsys.readouterr().err
    # nothing listening
    code = await asyncio.to_thread(main, ["call", "CP-CLI", "reset", "--json", '{"type": "Soft"}', "--api-port", "1"])
    assert code == 2 and "cannot reach the API" in capsys.readouterr().err


def test_operation_schemas_are_the_official_ones() -> None:
    from ocpp_console.api.openapi import document

    doc = document()
    for op in OPERATIONS.values():
        schema = doc["components"]["schemas"][op.name]
        assert "$ref" not in str(schema)
        if "oneOf" in schema:  # UpdateFirmware: the official one, or a library image in place of location
            schema = schema["oneOf"][0]
        # transferProtocol: not OCPP, which of our file servers a URL we fill in names (README Firmware and diagnostics)
        assert set(schema["properties"]) - {"transferProtocol"} == set(validator(op.name).schema["properties"])


async def test_provisioning_through_the_api(system: CentralSystem) -> None:
    """Chargers and tags created, updated and removed through the API, with the wallet moved by
    a ledger entry and removals refused while a tag holds money."""
    async with api_for(system) as (_, http):
        async with http.put("/api/chargers/CP-NEW", json={"note": "bay 4", "password": "sixteen-chars-pw"}) as response:
            body = await response.json()
            assert response.status == 200 and body["registration"] == "Accepted" and body["has_password"]
            assert body["note"] == "bay 4"
        async with http.put("/api/chargers/CP-NEW", json={"password": "short"}) as response:
            assert response.status == 400
        async with http.put("/api/id-tags/PARENT", json={"balance": "25.50"}) as response:
            assert (await response.json())["balance"] == "25.50"
        async with http.put("/api/id-tags/CHILD", json={"parent_id_tag": "PARENT", "expiry_date": "2030-01-01"}) as response:
            child = await response.json()
            assert response.status == 200 and child["parent_id_tag"] == "PARENT" and child["expiry_date"].startswith("2030-01-02")  # valid through that day
        async with http.put("/api/id-tags/CHILD", json={"parent_id_tag": None}) as response:
            assert (await response.json())["parent_id_tag"] is None  # null clears
        async with http.put("/api/id-tags/ORPHAN", json={"parent_id_tag": "NO-SUCH"}) as response:
            assert response.status == 400 and "NO-SUCH" in (await response.json())["message"]
        assert [row["amount"] for row in await system.store.ledger("PARENT")] == [2550]
        async with http.delete("/api/id-tags/PARENT") as response:
            assert response.status == 409  # 25.50 in its wallet
        async with http.delete("/api/id-tags/CHILD") as response:
            assert response.status == 204
        async with http.delete("/api/id-tags/CHILD") as response:
            assert response.status == 404
        async with http.delete("/api/chargers/CP-NEW") as response:
            assert response.status == 204
        assert await system.store.charger("CP-NEW") is None
        async with http.delete("/api/chargers/CP-NEW") as response:
            assert response.status == 404


async def test_changes_through_the_api_reach_the_console(system: CentralSystem, console: Console) -> None:
    """The API writes through the running process's own store: the console still sees them."""
    from tests.test_ui import cells, until as ui_until

    app = await console(system)
    async with app.run_test(size=(140, 45)) as pilot, api_for(system) as (_, http):
        await pilot.press("2")
        async with http.put("/api/chargers/CP-FROM-API", json={"note": "new bay"}) as response:
            assert response.status == 200
        await ui_until(pilot, lambda: "CP-FROM-API" in cells(app), timeout=2.0)
        await pilot.press("4")
        async with http.put("/api/id-tags/API-TAG", json={"status": "Blocked"}) as response:
            assert response.status == 200
        await ui_until(pilot, lambda: "API-TAG" in cells(app), timeout=2.0)
        async with http.delete("/api/chargers/CP-FROM-API") as response:
            assert response.status == 204
        await pilot.press("2")
        await ui_until(pilot, lambda: "CP-FROM-API" not in cells(app), timeout=2.0)


async def test_a_pending_charger_is_approved_and_rejected_through_the_api(settings_factory: Callable[..., Settings]) -> None:
    csms = CentralSystem(settings_factory(api_port=0, unknown_chargers="pending"))
    await csms.start()
    try:
        async with api_for(csms) as (_, http), charger(csms, "CP-NEWCOMER") as cp:
            assert (await cp.boot()).status == "Pending"
            async with http.put("/api/chargers/CP-NEWCOMER", json={}) as response:
                assert response.status == 200 and (await response.json())["registration"] == "Accepted"
            # approval asks a connected charger to boot again at once
            await until(lambda: any(action == "TriggerMessage" for action, _ in cp.received), what="a TriggerMessage")
            assert (await cp.boot()).status == "Accepted"
            async with http.put("/api/chargers/CP-NEWCOMER", json={"registration": "Rejected"}) as response:
                assert response.status == 200 and (await response.json())["registration"] == "Rejected"
            assert (await cp.boot()).status == "Rejected"
    finally:
        await csms.stop()


async def test_tariffs_endpoint(settings_factory: Callable[..., Settings]) -> None:
    csms = CentralSystem(settings_factory(api_port=0, price_per_kwh="0.30",
                                         charger_tariffs={"CP-DC": {"price_per_kwh": "0.55"}}))
    await csms.start()
    try:
        async with api_for(csms) as (_, http):
            status, tariffs = await get(http, "/api/tariffs")
            assert status == 200
            assert [(t["scope"], t["price_per_kwh"], t["source"]) for t in tariffs] == [
                ("*", "0.30", "settings"), ("CP-DC", "0.55", "settings")]
    finally:
        await csms.stop()
