"""OCPP-J error handling: every bad frame gets the 1.6 CALLERROR and the connection stays usable."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from ocpp_console.csms import CentralSystem
from tests.clients import TS
from tests.conftest import charger, eventually, raw_socket

BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}


async def recv_json(ws: Any, timeout: float = 5.0) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def booted(ws: Any) -> None:
    await ws.send(json.dumps([2, "boot", "BootNotification", BOOT]))
    assert (await recv_json(ws))[0] == 3


async def still_usable(ws: Any) -> None:
    await ws.send(json.dumps([2, "hb-after", "Heartbeat", {}]))
    answer = await recv_json(ws)
    assert answer[:2] == [3, "hb-after"] and "currentTime" in answer[2]


def assert_callerror(frame: Any, uid: str, code: str) -> None:
    assert frame[0] == 4, frame
    assert frame[1] == uid, frame
    assert frame[2] == code, frame
    assert isinstance(frame[3], str)
    assert isinstance(frame[4], dict)
    assert len(frame) == 5


MV = {"connectorId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": "1"}]}]}

CASES = [
    # (raw frame, uniqueId expected in the answer, error code)
    ('[2, "j1", "Heartbeat", {', "j1", "FormationViolation"),  # broken JSON, id salvaged
    ("not json at all", "-1", "FormationViolation"),
    ('{"a": 1}', "-1", "FormationViolation"),  # not an array
    ("[]", "-1", "ProtocolError"),
    ('[2, 17, "Heartbeat", {}]', "-1", "TypeConstraintViolation"),  # non-string uniqueId
    ('[2, "' + "x" * 37 + '", "Heartbeat", {}]', "-1", "PropertyConstraintViolation"),
    ('[2, "u1", "Heartbeat"]', "u1", "ProtocolError"),  # payload missing
    ('[2, "u2", "Heartbeat", []]', "u2", "FormationViolation"),  # payload not an object
    ('[2, "u3", "Heartbeat", {}, 5]', "u3", "FormationViolation"),
    ('[2, "u4", 42, {}]', "u4", "TypeConstraintViolation"),
    ('[2, "u5", "FlyToTheMoon", {}]', "u5", "NotImplemented"),
    ('[2, "u6", "Reset", {"type": "Hard"}]', "u6", "NotSupported"),  # a central-system action
    ('[2, "u7", "Authorize", {}]', "u7", "ProtocolError"),  # required field missing
    ('[2, "u8", "Authorize", {"idTag": 5}]', "u8", "TypeConstraintViolation"),
    ('[2, "u9", "Authorize", {"idTag": "' + "A" * 21 + '"}]', "u9", "PropertyConstraintViolation"),
    ('[2, "u10", "Authorize", {"idTag": "A", "extra": 1}]', "u10", "FormationViolation"),
    ('[2, "u11", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"}]', "u11",
     "PropertyConstraintViolation"),
    ('[2, "u12", "MeterValues", {"connectorId": 1, "meterValue": []}]', "u12", "OccurenceConstraintViolation"),
    ('[2, "u13", "StartTransaction", {"connectorId": "one", "idTag": "A", "meterStart": 0, "timestamp": "' + TS + '"}]',
     "u13", "TypeConstraintViolation"),
    ('[2, "u14", "Heartbeat", {"x": NaN}]', "u14", "FormationViolation"),  # NaN is not JSON
    ("[" * 100_000 + "]" * 100_000, "-1", "FormationViolation"),  # nesting that kills json.loads
    ('["2", "u15", "Heartbeat", {}]', "u15", "FormationViolation"),
]


@pytest.mark.parametrize(("raw", "uid", "code"), CASES, ids=[c[2] + ":" + c[0][:24] for c in CASES])
async def test_bad_frame_gets_callerror_and_connection_survives(csms: CentralSystem, raw: str, uid: str, code: str) -> None:
    async with raw_socket(csms, "BAD") as ws:
        await booted(ws)
        await ws.send(raw)
        assert_callerror(await recv_json(ws), uid, code)
        await still_usable(ws)


async def test_frames_that_are_ignored_leave_the_connection_usable(csms: CentralSystem) -> None:
    async with raw_socket(csms, "IGN") as ws:
        await booted(ws)
        await ws.send('[7, "x", "Whatever", {}]')  # unknown MessageTypeId: ignored
        await ws.send('[3, "never-asked", {}]')  # CALLRESULT for a call never made
        await ws.send('[4, "never-asked", "GenericError", "", {}]')
        await ws.send(b"\x00\x01binary")  # OCPP-J is text only
        await still_usable(ws)  # the next answer is the heartbeat's: nothing was sent for the others
    await csms.store.flush()  # the message log is written behind the answers
    log = await csms.store.message_log("IGN")
    assert any(r["raw"].startswith("<binary frame") for r in log)


async def test_calls_before_acceptance_get_security_error(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(unknown_chargers="pending")) as system:
        async with raw_socket(system, "NEW") as ws:
            await ws.send(json.dumps([2, "b", "BootNotification", BOOT]))
            boot = await recv_json(ws)
            assert boot[2]["status"] == "Pending"
            await ws.send(json.dumps([2, "h", "Heartbeat", {}]))
            assert_callerror(await recv_json(ws), "h", "SecurityError")


async def test_same_unique_id_while_in_flight_is_a_protocol_error(csms: CentralSystem) -> None:
    async with raw_socket(csms, "DUP") as ws:
        await booted(ws)
        start = json.dumps([2, "same", "StartTransaction",
                            {"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": TS}])
        # Both frames leave in one write: the second arrives while the first is being committed.
        await ws.send(start)
        await ws.send(start)
        answers = [await recv_json(ws), await recv_json(ws)]
        kinds = sorted(a[0] for a in answers)
        assert kinds == [3, 4]
        error = next(a for a in answers if a[0] == 4)
        assert_callerror(error, "same", "ProtocolError")
        await still_usable(ws)


async def test_one_chargers_bad_frames_do_not_disturb_another(csms: CentralSystem) -> None:
    async with raw_socket(csms, "NOISY") as noisy, charger(csms, "QUIET") as quiet:
        await booted(noisy)
        await quiet.boot()
        for raw, _, _ in CASES:
            await noisy.send(raw)
        for _ in range(20):
            await quiet.call(__import__("ocpp.v16.call", fromlist=["Heartbeat"]).Heartbeat())
        errors = [await recv_json(noisy) for _ in CASES]
        assert all(e[0] == 4 for e in errors)
        await still_usable(noisy)


async def test_answers_are_sent_in_call_order(csms: CentralSystem) -> None:
    async with raw_socket(csms, "ORDER") as ws:
        await booted(ws)
        for i in range(30):
            await ws.send(json.dumps([2, f"m{i}", "MeterValues", MV]))
        uids = [(await recv_json(ws))[1] for _ in range(30)]
    assert uids == [f"m{i}" for i in range(30)]


async def test_a_charger_that_sends_calls_ahead_of_their_answers_is_read_so_far_ahead(csms: CentralSystem) -> None:
    """A charger waits for each answer; one that does not has at most CALLS_WAITING_MAX calls
    waiting in its session: its connection then stops reading (the rest wait in the socket)
    until they are answered, and every call is answered, in order."""
    import threading

    from ocpp_console.csms.session import CALLS_WAITING_MAX

    async with raw_socket(csms, "AHEAD") as ws:
        await booted(ws)
        gate = threading.Event()
        blocked = csms.store._write(lambda conn: gate.wait(10))  # the writer thread waits
        try:
            for i in range(60):
                await ws.send(json.dumps([2, f"m{i}", "MeterValues", MV]))
            session = csms.sessions["AHEAD"]
            connection = session._connection
            await eventually(lambda: connection.held)
            # what one read brought is queued; nothing more is read from the socket
            assert len(session._calls) >= CALLS_WAITING_MAX and not connection.transport.is_reading()
            for i in range(60, 120):
                await ws.send(json.dumps([2, f"m{i}", "MeterValues", MV]))
        finally:
            gate.set()
        await blocked
        uids = [(await recv_json(ws))[1] for _ in range(120)]
        assert uids == [f"m{i}" for i in range(120)]
        assert not connection.held and connection.transport.is_reading()
        await still_usable(ws)


async def test_a_charger_s_connection_keeps_within_the_keys_cpython_shares(csms: CentralSystem) -> None:
    """Past 30 instance attributes CPython stops sharing a dict's keys between instances of a
    class: ~1.4 KiB more per charger (bench/README.md, session 16). The connection's own state
    lives in __slots__ for that reason."""
    from ocpp_console.csms.connection import ChargerConnection

    async with raw_socket(csms, "SLIM") as ws:
        await booted(ws)
        connection = csms.sessions["SLIM"]._connection
        assert isinstance(connection, ChargerConnection)
        assert len(vars(connection)) <= 30, sorted(vars(connection))
        assert not set(ChargerConnection.__slots__) & set(vars(connection))


async def test_too_many_calls_per_second_get_generic_error(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(max_calls_per_second=5)) as system:  # bursts of 20
        async with raw_socket(system, "FLOOD") as ws:
            await booted(ws)
            for i in range(60):
                await ws.send(json.dumps([2, f"f{i}", "Heartbeat", {}]))
            answers = [await recv_json(ws) for _ in range(60)]
            errors = [a for a in answers if a[0] == 4]
            assert 30 <= len(errors) <= 45
            assert all(e[2] == "GenericError" for e in errors)
            await asyncio.sleep(1.0)  # the bucket refills: the connection is still good
            await still_usable(ws)


async def test_huge_frame_closes_with_1009(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(max_frame_size=64 * 1024)) as system:
        async with raw_socket(system, "HUGE") as ws:
            await booted(ws)
            await ws.send(json.dumps([2, "big", "DataTransfer", {"vendorId": "x", "data": "A" * 200_000}]))
            with pytest.raises(Exception):
                await recv_json(ws)
            assert ws.close_code == 1009  # message too big, a clear close
        async with raw_socket(system, "HUGE") as ws:  # and the charger can come back
            await still_usable(ws)


async def test_lenient_enums_is_a_setting_and_is_logged(settings_factory: Any) -> None:
    frame = json.dumps([2, "s1", "StatusNotification", {"connectorId": 1, "errorCode": "noerror", "status": "CHARGING"}])
    async with CentralSystem(settings_factory()) as strict:
        async with raw_socket(strict, "CASE") as ws:
            await booted(ws)
            await ws.send(frame)
            assert_callerror(await recv_json(ws), "s1", "PropertyConstraintViolation")
    async with CentralSystem(settings_factory(lenient_enums=True)) as lenient:
        async with raw_socket(lenient, "CASE") as ws:
            await booted(ws)
            await ws.send(frame)
            assert (await recv_json(ws))[0] == 3
        await lenient.store.flush()
        assert {c["connector_id"]: c["status"] for c in await lenient.store.connectors("CASE")} == {1: "Charging"}
        log = [r["raw"] for r in await lenient.store.message_log("CASE")]
        assert any("tolerated" in raw and "'CHARGING' read as 'Charging'" in raw for raw in log)


async def test_a_fragmented_message_is_one_call_and_bad_utf8_closes_with_1007(csms: CentralSystem) -> None:
    """Messages go from the socket to the session without websockets' recv (csms/connection.py):
    fragments are joined into one call, and a text message that is not UTF-8 closes the
    connection with 1007 (invalid data), as websockets' own reader does; other chargers go on."""
    from websockets.exceptions import ConnectionClosed

    async with raw_socket(csms, "FRAG") as ws, raw_socket(csms, "FINE") as fine:
        await booted(ws)
        await booted(fine)
        call = json.dumps([2, "hb-frag", "Heartbeat", {}])
        await ws.send([call[:5], call[5:12], call[12:]])  # one message, three frames
        answer = await recv_json(ws)
        assert answer[:2] == [3, "hb-frag"]
        await ws.send(b'[2, "x", "Heartbeat", {\xff}]', text=True)
        with pytest.raises(ConnectionClosed):
            await recv_json(ws)
        assert ws.close_code == 1007
        await still_usable(fine)
    await csms.store.flush()
    log = [r["unique_id"] for r in await csms.store.message_log("FRAG")]
    assert log.count("hb-frag") == 2  # the call and its answer, once each


async def test_a_message_over_the_size_limit_in_fragments_closes_with_1009(settings_factory: Any) -> None:
    """max_frame_size holds for a message sent in fragments too (websockets' protocol counts them)."""
    from websockets.exceptions import ConnectionClosed

    async with CentralSystem(settings_factory(max_frame_size=4096)) as system:
        async with raw_socket(system, "BIG") as ws:
            await booted(ws)
            with pytest.raises(ConnectionClosed):
                await ws.send(["x" * 3000, "y" * 3000])
                await recv_json(ws)
            assert ws.close_code == 1009


async def test_calls_sent_before_the_session_started_are_answered_in_order(csms: CentralSystem) -> None:
    """A charger may send at once after the handshake, before its session has started (the
    connection keeps those messages and hands them over first)."""
    async with raw_socket(csms, "EAGER") as ws:
        await ws.send(json.dumps([2, "boot", "BootNotification", BOOT]))
        for n in range(3):
            await ws.send(json.dumps([2, f"hb-{n}", "Heartbeat", {}]))
        answers = [await recv_json(ws) for _ in range(4)]
        assert [a[1] for a in answers] == ["boot", "hb-0", "hb-1", "hb-2"]
        assert all(a[0] == 3 for a in answers)
