"""Hardening found by an adversarial run (issue 12), each reproduced against the main of before:

- integers: `transactionId`/`meterStart` of 2**63 answered InternalError (SQLite overflow), 2**64
  was stored as a float, 2**40 accepted, `connectorId: -1` created a connector row;
- disk: 40 malformed 1 MiB frames from an unauthenticated charger grew the database by 61 MiB
  (logged whole, not counted against the call rate limit);
- secrets: `authorizationkey` (CiString: the same key) was logged in clear, and a key reported in
  GetConfiguration was stored in clear.

Real server, raw frames over a real WebSocket (websockets client).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from ocpp_console.csms import CentralSystem
from ocpp_console.settings import Settings
from tests.clients import TS
from tests.conftest import raw_socket
from tests.test_errors import assert_callerror, booted, recv_json, still_usable


async def answer(ws: Any, uid: str, action: str, payload: dict[str, Any]) -> Any:
    await ws.send(json.dumps([2, uid, action, payload]))
    frame = await recv_json(ws)
    assert frame[1] == uid, frame
    return frame


def rows(db: Any, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


# -- integers ------------------------------------------------------------------------------

BIG = [2**31, 2**40, 2**63, 2**64, -(2**31) - 1, -(2**63) - 1]


@pytest.mark.parametrize("value", BIG)
async def test_out_of_range_integers_are_a_property_constraint_violation(csms: CentralSystem, value: int) -> None:
    async with raw_socket(csms, "CP-INT") as ws:
        await booted(ws)
        start = {"connectorId": 1, "idTag": "T", "meterStart": value, "timestamp": TS}
        assert_callerror(await answer(ws, "s1", "StartTransaction", start), "s1", "PropertyConstraintViolation")
        start = {"connectorId": value, "idTag": "T", "meterStart": 0, "timestamp": TS}
        assert_callerror(await answer(ws, "s2", "StartTransaction", start), "s2", "PropertyConstraintViolation")
        mv = {"connectorId": 1, "transactionId": value,
              "meterValue": [{"timestamp": TS, "sampledValue": [{"value": "1"}]}]}
        assert_callerror(await answer(ws, "m1", "MeterValues", mv), "m1", "PropertyConstraintViolation")
        await still_usable(ws)
    await csms.store.flush()
    assert rows(csms.settings.db, "SELECT count(*) FROM transactions") == [(0,)]
    assert rows(csms.settings.db, "SELECT count(*) FROM meter_values") == [(0,)]


async def test_a_negative_connector_creates_no_connector(csms: CentralSystem) -> None:
    async with raw_socket(csms, "CP-NEG") as ws:
        await booted(ws)
        status = {"connectorId": -1, "errorCode": "NoError", "status": "Available"}
        assert_callerror(await answer(ws, "n1", "StatusNotification", status), "n1", "PropertyConstraintViolation")
        mv = {"connectorId": -1, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": "1"}]}]}
        assert_callerror(await answer(ws, "n2", "MeterValues", mv), "n2", "PropertyConstraintViolation")
        ok = await answer(ws, "n3", "StatusNotification", {**status, "connectorId": 0})
        assert ok[0] == 3  # connector 0, the charger itself, is fine
        await still_usable(ws)
    await csms.store.flush()
    assert [c["connector_id"] for c in await csms.store.connectors("CP-NEG")] == [0]


@pytest.mark.parametrize("value", [2**63, 2**64, -(2**63) - 1, 2**31])
async def test_a_stop_with_an_out_of_range_transaction_id_is_answered_and_flagged(csms: CentralSystem,
                                                                                 value: int) -> None:
    async with raw_socket(csms, "CP-STOP") as ws:
        await booted(ws)
        stop = {"transactionId": value, "meterStop": value, "timestamp": TS, "reason": "Local"}
        frame = await answer(ws, "x1", "StopTransaction", stop)
        assert frame == [3, "x1", {}]  # a normal answer, never a CALLERROR
        await still_usable(ws)
    (kept,) = await csms.store.unknown_stops("CP-STOP")
    assert kept["transaction_id"] == 0 and kept["meter_stop"] == 0  # no transaction of ours has id 0
    assert "transaction_id_out_of_range" in kept["flags"].split(",")
    assert float(json.loads(kept["payload"])["transactionId"]) == float(value)  # the charger's number, kept


async def test_a_stop_with_an_out_of_range_meter_is_answered_and_bills_nothing(csms: CentralSystem) -> None:
    await csms.store.upsert_id_tag("TAG")
    async with raw_socket(csms, "CP-METER") as ws:
        await booted(ws)
        started = await answer(ws, "a", "StartTransaction",
                               {"connectorId": 1, "idTag": "TAG", "meterStart": 500, "timestamp": TS})
        tx = started[2]["transactionId"]
        frame = await answer(ws, "b", "StopTransaction", {"transactionId": tx, "meterStop": 2**63, "timestamp": TS})
        assert frame[0] == 3
    row = await csms.store.transaction(tx)
    assert row is not None and row["stopped_at"] is not None
    assert row["meter_stop"] == 500 and row["energy_wh"] == 0
    assert "meter_stop_out_of_range" in row["flags"]


# -- disk ----------------------------------------------------------------------------------


def db_bytes(db: Any) -> int:
    from pathlib import Path

    return sum(p.stat().st_size for p in (Path(db), Path(f"{db}-wal")) if p.exists())


async def test_garbage_frames_cannot_fill_the_disk_and_close_the_link(csms: CentralSystem) -> None:
    """40 malformed 1 MiB frames from a connection that never booted (profile 0, no login): the
    log keeps a clipped glimpse of the first ones, the link is closed with 1008 after repeated
    garbage, and another charger is answered all along."""
    from websockets.exceptions import ConnectionClosed

    from tests.conftest import charger

    await csms.store.flush()
    before = db_bytes(csms.settings.db)
    megabyte = "[" + "9," * (512 * 1024 - 1) + "x"  # 1 MiB, not JSON
    async with raw_socket(csms, "GARBAGE") as ws, charger(csms, "CP-QUIET") as quiet:
        await quiet.boot()
        sent = 0
        with pytest.raises(ConnectionClosed):
            for _ in range(40):
                await ws.send(megabyte)
                sent += 1
                await quiet.call(__import__("ocpp.v16.call", fromlist=["Heartbeat"]).Heartbeat())
            await asyncio.wait_for(ws.recv(), 10)  # the answers, then the close
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1008, ws.close_code
        assert "CP-QUIET" in csms.sessions
        await quiet.call(__import__("ocpp.v16.call", fromlist=["Heartbeat"]).Heartbeat())
    await csms.store.flush()
    logged = rows(csms.settings.db, "SELECT raw FROM message_log WHERE charger_id = 'GARBAGE'")
    assert logged and all(len(raw) <= 1100 for (raw,) in logged)
    assert f"({len(megabyte)} bytes)" in logged[0][0]
    assert any("1008" in raw for (raw,) in logged)
    assert db_bytes(csms.settings.db) - before < 1024 * 1024, "the database grew by megabytes"


async def test_a_big_call_before_boot_is_logged_clipped(csms: CentralSystem) -> None:
    async with raw_socket(csms, "CP-EARLY") as ws:
        big = {"vendorId": "v", "data": "z" * 500_000}
        assert_callerror(await answer(ws, "e1", "DataTransfer", big), "e1", "SecurityError")
    await csms.store.flush()
    (raw,), *_ = rows(csms.settings.db, "SELECT raw FROM message_log WHERE charger_id = 'CP-EARLY' AND direction = 'in'")
    assert len(raw) < 1100 and raw.endswith("bytes)")


async def test_the_message_log_is_bounded_by_size(settings_factory: Callable[..., Settings]) -> None:
    async with CentralSystem(settings_factory(message_log_max_mb=1)) as system:
        async with raw_socket(system, "CP-BIG") as ws:
            await booted(ws)
            for i in range(30):  # 30 x 100 kB, accepted and logged whole
                frame = await answer(ws, f"d{i}", "DataTransfer", {"vendorId": "v", "data": "y" * 100_000})
                assert frame[0] == 3
        await system.store.flush()
        (total, count), = rows(system.settings.db, "SELECT sum(length(raw)), count(*) FROM message_log")
        assert total <= 1024 * 1024 and count < 30 * 2
        # the newest frames are the ones kept
        newest = rows(system.settings.db, "SELECT unique_id FROM message_log ORDER BY id DESC LIMIT 1")
        assert newest == [("d29",)]


# -- secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["authorizationkey", "AUTHORIZATIONKEY", "AuthorizationKey"])
async def test_the_authorization_key_is_masked_in_any_spelling(settings_factory: Callable[..., Settings],
                                                               spelling: str) -> None:
    """ChangeConfiguration of `authorizationkey` (CiString: the AuthorizationKey) and a charger that
    reports the key in GetConfiguration: the value is nowhere in the database, the API or the
    commands' results; and the key counts as the login password it is."""
    from tests.conftest import charger
    from tests.test_api import api_for

    secret = "Sup3r-Secret-Key-0042"
    async with CentralSystem(settings_factory(api_port=0)) as system:
        async with charger(system, "CP-KEY") as cp, api_for(system) as (_, http):
            cp.config[spelling] = ("Old-Secret-Key-00001", False)  # a charger that knows the key so spelt
            await cp.boot()
            async with http.post("/api/chargers/CP-KEY/change-configuration",
                                 json={"key": spelling, "value": secret}) as response:
                assert response.status == 200 and (await response.json())["status"] == "Accepted"
            assert cp.config[spelling][0] == secret  # the charger got the real key
            # the charger reports it back (many do, though the whitepaper makes it write-only)
            async with http.post("/api/chargers/CP-KEY/get-configuration", json={}) as response:
                body = await response.json()
                assert response.status == 200 and secret not in json.dumps(body)
                assert {k["key"]: k["value"] for k in body["configurationKey"]}[spelling] == "********"
            result = await system.commands.get_configuration("CP-KEY", [spelling])
            assert secret not in str(result) and result.configuration_key[0]["value"] == "********"
            async with http.get("/api/messages", params={"charger_id": "CP-KEY"}) as response:
                assert secret not in await response.text()
        await system.store.flush()
        assert (await system.store.password_hashes("CP-KEY"))[1] is not None  # the new key, pending
        for table in ("message_log", "commands", "configuration"):
            dump = json.dumps(rows(system.settings.db, f"SELECT * FROM {table}"))
            assert secret not in dump, table
        stored = {r["key"]: r["value"] for r in await system.store.configuration("CP-KEY")}
        assert stored[spelling] == "********"
        logged = rows(system.settings.db, "SELECT raw FROM message_log WHERE action = 'GetConfiguration'")
        assert logged and all("********" in raw for (raw,) in logged if "configurationKey" in raw)
