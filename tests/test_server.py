"""Connections: charger ids from the path, subprotocol, replacement, registration, dead peers."""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any

import pytest
from ocpp.v16 import call
from ocpp.v16.enums import MessageTrigger, RegistrationStatus
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ocpp_console.csms import CentralSystem
from ocpp_console.csms import events as ev
from ocpp_console.csms.server import charge_point_id
from tests.clients import TestCharger
from tests.conftest import EventWaiter, charger, url


def test_charge_point_id_is_last_path_segment_url_decoded() -> None:
    assert charge_point_id("/CP1") == "CP1"
    assert charge_point_id("/ocpp/v16/CP%2001/") == "CP 01"
    assert charge_point_id("/ocpp/CP-7?token=x") == "CP-7"
    assert charge_point_id("/") == ""


async def test_url_encoded_id_is_decoded(csms: CentralSystem) -> None:
    async with connect(f"ws://127.0.0.1:{csms.port}/ocpp/Depot%20A%2F1", subprotocols=["ocpp1.6"]) as ws:
        cp = TestCharger("x", ws)
        task = asyncio.create_task(cp.start())
        await cp.boot()
        task.cancel()
    assert await csms.store.charger("Depot A/1") is not None


async def test_client_without_ocpp16_subprotocol_is_refused(csms: CentralSystem) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url(csms, "CP1")):
            pass
    assert info.value.response.status_code == 400
    assert b"ocpp1.6" in info.value.response.body
    with pytest.raises(InvalidStatus):
        async with connect(url(csms, "CP1"), subprotocols=["ocpp2.0.1"]):
            pass


async def test_subprotocol_is_negotiated_among_several(csms: CentralSystem) -> None:
    async with connect(url(csms, "CP1"), subprotocols=["ocpp2.0.1", "ocpp1.6"]) as ws:
        assert ws.subprotocol == "ocpp1.6"


async def test_missing_charger_id_is_refused(csms: CentralSystem) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with connect(f"ws://127.0.0.1:{csms.port}/", subprotocols=["ocpp1.6"]):
            pass
    assert info.value.response.status_code == 404


async def test_second_connection_with_same_id_replaces_first(csms: CentralSystem, waiter: EventWaiter, caplog: Any) -> None:
    async with charger(csms, "CP1") as old:
        await old.boot()
        async with charger(csms, "CP1") as new:
            closed = await asyncio.wait_for(old._connection.wait_closed(), 5)
            assert closed is None
            assert old._connection.close_code == 1000
            answer = await new.call(call.Heartbeat())
            assert answer.current_time
            assert csms.sessions["CP1"]._connection is not None
            assert (await csms.store.charger("CP1"))["connected"] == 1  # the old one's end did not mark it offline
    assert "replaces" in caplog.text
    await waiter.wait_for(lambda e: isinstance(e, ev.ChargerDisconnected))
    assert (await csms.store.charger("CP1"))["connected"] == 0


async def test_pending_charger_is_approved_by_the_operator(settings_factory: Any, tmp_path: Any) -> None:
    async with CentralSystem(settings_factory(unknown_chargers="pending", boot_retry_interval=17)) as system:
        waiter = EventWaiter(system)
        async with charger(system, "NEW1") as cp:
            boot = await cp.boot()
            assert boot.status == RegistrationStatus.pending and boot.interval == 17
            assert (await system.store.charger("NEW1"))["registration"] == "Pending"
            await system.commands.approve("NEW1")
            # The approved charger is asked to boot again at once.
            await asyncio.wait_for(cp.got_call.wait(), 5)
            assert cp.received[-1] == ("TriggerMessage", {"requested_message": MessageTrigger.boot_notification})
            boot = await cp.boot()
            assert boot.status == RegistrationStatus.accepted and boot.interval == 60
        await waiter.wait_for(lambda e: isinstance(e, ev.RegistrationChanged) and e.registration == "Accepted")


async def test_unknown_charger_rejected_by_setting(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(unknown_chargers="reject")) as system:
        async with charger(system, "NOPE") as cp:
            boot = await cp.boot()
    assert boot.status == RegistrationStatus.rejected
    row = await system.store.charger("NOPE") if system.store.writer else None
    assert row is None or row["registration"] == "Rejected"


async def test_half_open_connection_is_dropped_by_ping(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(ping_interval=0.2, ping_timeout=0.3)) as system:
        waiter = EventWaiter(system)
        reader, writer = await asyncio.open_connection("127.0.0.1", system.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /SILENT HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
            ).encode()
        )
        status = await reader.readline()
        assert b"101" in status
        await waiter.wait_for(lambda e: isinstance(e, ev.ChargerConnected) and e.charger_id == "SILENT")
        # Never answer the pings: the server must give up on us.
        event = await waiter.wait_for(lambda e: isinstance(e, ev.ChargerDisconnected), timeout=5)
        assert event.charger_id == "SILENT"
        assert "SILENT" not in system.sessions
        writer.close()


async def test_graceful_shutdown_answers_calls_in_flight_and_closes_with_1001(settings_factory: Any) -> None:
    import json

    system = CentralSystem(settings_factory())
    await system.start()
    waiter = EventWaiter(system)
    async with connect(url(system, "BYE"), subprotocols=["ocpp1.6"]) as ws:
        await ws.send(json.dumps([2, "b", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]))
        await ws.recv()
        frames = [json.dumps([2, f"m{i}", "MeterValues", {"connectorId": 1, "meterValue": [
            {"timestamp": "2026-11-25T08:00:00Z", "sampledValue": [{"value": str(i)}]}]}]) for i in range(20)]
        for frame in frames:
            await ws.send(frame)
        # All 20 have reached the server (most still waiting for their commit) when the stop begins.
        await waiter.wait_for(lambda e: isinstance(e, ev.MessageLogged) and e.unique_id == "m19")
        stopping = asyncio.create_task(system.stop())
        answers = []
        try:
            while True:
                answers.append(json.loads(await ws.recv()))
        except Exception:
            pass
        await stopping
        assert ws.close_code == 1001
    # Every call that reached the server before the shutdown was answered, after its commit.
    answered = {a[1] for a in answers if a[0] == 3}
    assert len(answered) == 20
    import sqlite3

    con = sqlite3.connect(system.settings.db)
    assert con.execute("SELECT count(*) FROM meter_values WHERE charger_id = 'BYE'").fetchone()[0] == 20
    with pytest.raises(OSError):  # no longer accepting
        async with connect(url(system, "LATE"), subprotocols=["ocpp1.6"], open_timeout=2):
            pass


async def test_connection_cap_and_handshake_timeout(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(max_connections=2, handshake_timeout=0.5)) as system:
        async with charger(system, "C1"), charger(system, "C2") as second:
            await second.boot()
            with pytest.raises(InvalidStatus) as info:
                async with connect(url(system, "C3"), subprotocols=["ocpp1.6"]):
                    pass
            assert info.value.response.status_code == 503
        # A client that opens a socket and never upgrades is dropped after the handshake timeout.
        reader, writer = await asyncio.open_connection("127.0.0.1", system.port)
        started = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert asyncio.get_running_loop().time() - started < 3
        writer.close()


async def test_answers_are_written_at_once_and_fall_back_to_send_when_the_link_is_not_free(csms: CentralSystem) -> None:
    """Answers skip websockets' per-message context manager only while the connection is open and
    its buffer below the high-water mark (csms/transport.py); a paused or closing link goes
    through `send`, which waits or raises. The attributes it reads must exist in the websockets
    installed: otherwise every answer would quietly take the slow path."""
    from ocpp_console.csms.transport import send_now

    async with charger(csms, "CP-FAST") as cp:
        await cp.boot()
        connection = csms.sessions["CP-FAST"]._connection
        assert connection.send_in_progress is None and connection.paused is False
        assert send_now(connection, '[2,"x","Heartbeat",{}]')  # the charger answers it, or not: it is only written
        assert (await cp.call(call.Heartbeat())).current_time  # the link is still fine for calls
        connection.paused = True  # as when the charger does not read and the buffer is full
        assert not send_now(connection, "[]")
        connection.paused = False
        await connection.close()
        assert not send_now(connection, "[]")
