"""Domain events as JSON, and `GET /api/events`: the same events over a WebSocket, numbered,
resumable, and never a brake on the central system. Real central system, real API, real
sockets; chargers from tests/clients.py."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from ocpp.v16 import call
from ocpp.v16.enums import ChargePointStatus

from ocpp_console.api import ApiServer
from ocpp_console.csms import CentralSystem
from ocpp_console.csms import events as ev
from ocpp_console.csms.event_json import EVENT_TYPES, UnknownEvent, from_dict, to_dict
from ocpp_console.settings import Settings
from tests.clients import TS
from tests.conftest import TIMEOUT, charger
from tests.test_api import api_for as api_with_defaults
from tests.test_sim import until

REFUSAL = ev.IdTagRefused("CP-1", "TAG9", "Blocked", "Authorize", "wallet below minimum", 7, 2)
SAMPLES: dict[str, ev.Event] = {
    "ChargerConnected": ev.ChargerConnected("CP-1", "127.0.0.1:5000"),
    "ChargerDisconnected": ev.ChargerDisconnected("CP-1", 1006, "gone"),
    "ChargerBooted": ev.ChargerBooted("CP-1", "Accepted", "Vendor", "Model", "1.0"),
    "RegistrationChanged": ev.RegistrationChanged("CP-1", "Rejected"),
    "StatusChanged": ev.StatusChanged("CP-1", 1, "Charging", "NoError", None),
    "MeterSample": ev.MeterSample("CP-1", 1, 42, {"Power.Active.Import": 7400.5, "SoC": 61.0}),
    "TransactionStarted": ev.TransactionStarted("CP-1", 42, 1, "TAG1", "Accepted"),
    "TransactionStopped": ev.TransactionStopped("CP-1", 42, 1, 12345, "Local", True, 480, "EUR", None),
    "TransactionSettledAgain": ev.TransactionSettledAgain("CP-1", 42, "closed-after-reboot", 100, 4, "EUR"),
    "IdTagRefused": REFUSAL,
    "RemoteStartFollowed": ev.RemoteStartFollowed("CP-1", "TAG1", 43, 2, "Accepted"),
    "RemoteStartUnanswered": ev.RemoteStartUnanswered("CP-1", "TAG9", 2, 60.0, REFUSAL),
    "NotificationReceived": ev.NotificationReceived("CP-1", "FirmwareStatusNotification", "Installed"),
    "CertificateInstalled": ev.CertificateInstalled("CP-1", "0A1B", "2027-11-25T00:00:00Z"),
    "CertificateRequestRefused": ev.CertificateRequestRefused("CP-1", "CN is not the charger id"),
    "MessageLogged": ev.MessageLogged("CP-1", "in", 2, "u1", "Heartbeat", '[2,"u1","Heartbeat",{}]', TS),
    "CommandFinished": ev.CommandFinished("CP-1", "Reset", "ok", {"status": "Accepted"}, None),
    "ExternalChange": ev.ExternalChange("", 17),
    "LoadDecided": ev.LoadDecided("", 40.0, 39.6, 38.2, 6, 1),
    "FileTransfer": ev.FileTransfer("CP-1", "firmware", "sim-2.0.0.bin", "http", 65536, 300000, False, None),
}


def test_every_event_type_has_a_sample() -> None:
    assert set(SAMPLES) == set(EVENT_TYPES)  # a new event type needs its round trip tested here


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_events_round_trip_through_json_exactly(name: str) -> None:
    event = SAMPLES[name]
    data = json.loads(json.dumps(to_dict(event)))  # through real JSON text
    assert data["type"] == name and data["charger_id"] == event.charger_id
    back = from_dict(data)
    assert type(back) is type(event) and back == event
    assert {f.name for f in dataclasses.fields(event)} | {"type"} == set(data)


def test_nested_event_and_unknown_types() -> None:
    data = to_dict(SAMPLES["RemoteStartUnanswered"])
    assert data["refusal"]["type"] == "IdTagRefused" and data["refusal"]["reason"] == "wallet below minimum"
    unanswered = from_dict(data)
    assert isinstance(unanswered, ev.RemoteStartUnanswered) and unanswered.refusal == REFUSAL
    assert from_dict(to_dict(ev.RemoteStartUnanswered("CP-1", "T", None, 60.0))) == ev.RemoteStartUnanswered(
        "CP-1", "T", None, 60.0)
    with pytest.raises(UnknownEvent):
        from_dict({"type": "FluxCapacitorCharged", "charger_id": "CP-1"})
    # a field a newer service added is ignored; the rest still makes the event
    assert from_dict({**to_dict(SAMPLES["StatusChanged"]), "vendor_error": "E12"}) == SAMPLES["StatusChanged"]


# -- the stream over a real socket ------------------------------------------------------------


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(api_port=0, call_timeout=3.0)


class Reader:
    """A stream client: every message it has read, in order, split out of the frames."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []  # read from a frame, not yet taken

    async def next(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            while True:
                frame = await self.ws.receive()
                if frame.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"stream ended: {frame.type.name} {frame.data!r} {frame.extra!r}")
                return frame.data

        if not self._pending:  # a frame holds one message per line
            self._pending.extend(json.loads(line) for line in (await asyncio.wait_for(read(), timeout)).split("\n"))
        message = self._pending.pop(0)
        self.messages.append(message)
        return message

    async def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            message = await self.next(max(0.01, deadline - time.monotonic()))
            if predicate(message):
                return message


@contextlib.asynccontextmanager
async def api_for(csms: CentralSystem, authorized: bool = True, **stream_options: Any
                  ) -> AsyncIterator[tuple[ApiServer, aiohttp.ClientSession]]:
    """tests/test_api.py's api_for, with the event stream's bounds set."""
    if not stream_options:
        async with api_with_defaults(csms, authorized) as pair:
            yield pair
        return
    api = ApiServer(csms, **stream_options)
    await api.start()
    try:
        async with aiohttp.ClientSession(api.url, timeout=aiohttp.ClientTimeout(total=20),
                                         headers={"Authorization": f"Bearer {api.token}"}) as http:
            yield api, http
    finally:
        await api.stop()


@contextlib.asynccontextmanager
async def stream(api: ApiServer, http: aiohttp.ClientSession, **params: Any) -> AsyncIterator[Reader]:
    async with http.ws_connect("/api/events", params={k: str(v) for k, v in params.items()}) as ws:
        yield Reader(ws)


def of_type(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["type"] == "event" and m["event"]["type"] == name


async def test_events_arrive_in_order_with_sequence_numbers(csms: CentralSystem) -> None:
    await csms.store.upsert_id_tag("TAG1")
    async with api_for(csms) as (api, http), stream(api, http) as reader:
        hello = await reader.next()
        assert hello["type"] == "hello" and hello["epoch"] == api.stream.epoch
        assert hello["instance"]["pid"] == csms.instance.pid and hello["seq"] == api.stream.seq
        async with charger(csms, "CP-S") as cp:
            await cp.boot()
            await cp.status(1, ChargePointStatus.charging)
            start = await cp.call(call.StartTransaction(connector_id=1, id_tag="TAG1", meter_start=0, timestamp=TS))
            stopped = await reader.until(of_type("TransactionStarted"))
            assert from_dict(stopped["event"]) == ev.TransactionStarted("CP-S", start.transaction_id, 1, "TAG1", "Accepted")
        await reader.until(of_type("ChargerDisconnected"))
        events = [m for m in reader.messages if m["type"] == "event"]
        seqs = [m["seq"] for m in events]
        assert seqs == list(range(hello["seq"] + 1, hello["seq"] + 1 + len(seqs)))  # none skipped, in order
        kinds = [m["event"]["type"] for m in events]
        for earlier, later in [("ChargerConnected", "ChargerBooted"), ("ChargerBooted", "StatusChanged"),
                               ("StatusChanged", "TransactionStarted"), ("TransactionStarted", "ChargerDisconnected")]:
            assert kinds.index(earlier) < kinds.index(later), kinds
        status = next(m["event"] for m in events if m["event"]["type"] == "StatusChanged")
        assert status == {"type": "StatusChanged", "charger_id": "CP-S", "connector_id": 1, "status": "Charging",
                          "error_code": "NoError", "info": None}
        assert "MessageLogged" in kinds  # the frames too, for the message log


async def test_resume_with_since_and_resync_when_too_old(settings_factory: Callable[..., Settings]) -> None:
    csms = CentralSystem(settings_factory(api_port=0))
    await csms.start()
    try:
        async with api_for(csms, ring_events=100) as (api, http):  # a small ring
            epoch = api.stream.epoch
            async with stream(api, http) as reader:
                hello = await reader.next()
                csms.events.publish(ev.ExternalChange("", 1))
                seen = (await reader.until(of_type("ExternalChange")))["seq"]
            for n in range(2, 12):  # while it is away
                csms.events.publish(ev.ExternalChange("", n))
            async with stream(api, http, since=seen, epoch=epoch) as reader:
                assert (await reader.next())["type"] == "hello"
                missed = [await reader.next() for _ in range(10)]
                assert [m["seq"] for m in missed] == list(range(seen + 1, seen + 11))
                assert [m["event"]["data_version"] for m in missed] == list(range(2, 12))
            for n in range(200):  # more than the ring holds
                csms.events.publish(ev.ExternalChange("", 100 + n))
            async with stream(api, http, since=seen, epoch=epoch) as reader:
                assert (await reader.next())["type"] == "hello"
                resync = await reader.next()
                assert resync == {"type": "resync", "epoch": epoch, "seq": api.stream.seq, "reason": "too_old"}
                csms.events.publish(ev.ExternalChange("", 999))
                after = await reader.next()  # live again after the resync, from the newest
                assert after["seq"] == resync["seq"] + 1 and after["event"]["data_version"] == 999
            # numbers from another run of the service (its epoch differs): resync, whatever the number
            async with stream(api, http, since=1, epoch="an-earlier-run") as reader:
                await reader.next()
                assert (await reader.next())["reason"] == "restarted"
            async with stream(api, http, since=10**9) as reader:  # beyond ours: a restart too
                await reader.next()
                assert (await reader.next())["reason"] == "restarted"
            assert hello["seq"] == 0  # this run's first event is 1
    finally:
        await csms.stop()


async def test_a_client_that_never_reads_does_not_block_the_central_system(csms: CentralSystem) -> None:
    async with api_for(csms, send_timeout=1.0) as (api, http), charger(csms, "CP-FAST") as cp:
        await cp.boot()
        async with stream(api, http) as stalled:
            assert (await stalled.next())["type"] == "hello"
            await until(lambda: api.stream.clients, what="the client registered")
            raw = '[2,"x","MeterValues",{"connectorId":1,"meterValue":[]}]' + " " * 2000
            # publish far more than the socket buffers hold while the client reads nothing
            started = time.monotonic()
            for round_ in range(20):
                for n in range(2_000):
                    csms.events.publish(ev.MessageLogged("CP-X", "in", 2, str(n), "MeterValues", raw, TS))
                    csms.events.publish(ev.StatusChanged("CP-X", 1, "Charging", "NoError", str(n)))
                await asyncio.sleep(0)  # the loop turns, as it does between real messages
                # the central system still answers a charger at once
                t0 = time.monotonic()
                await asyncio.wait_for(cp.call(call.Heartbeat()), 2.0)
                assert time.monotonic() - t0 < 1.0, f"a heartbeat took {time.monotonic() - t0:.2f} s"
            publishing = time.monotonic() - started
            assert publishing < 20, publishing
            # the stalled client is dropped once its socket took nothing for send_timeout
            await until(lambda: api.stream.dropped_clients == 1 and not api.stream.clients, timeout=10,
                        what="the stalled client dropped")
            with pytest.raises(ConnectionError):  # what it reads ends before the newest event
                while True:
                    last = await stalled.next()
                    assert last["type"] != "event" or last["seq"] < api.stream.seq
            got = [m["seq"] for m in stalled.messages if m["type"] == "event"]
        # coming back with its last number: far behind the ring, so told to resync
        async with stream(api, http, since=got[-1] if got else 0, epoch=api.stream.epoch) as back:
            await back.next()
            assert (await back.next())["type"] == "resync"


async def test_a_lagging_client_skips_samples_but_not_state(csms: CentralSystem) -> None:
    async with api_for(csms, ring_events=400) as (api, http):
        async with stream(api, http) as reader:
            await reader.next()
            await until(lambda: api.stream.clients, what="the client registered")
            # 300 events at once: the writer finds itself > ring/4 behind at its first batch
            for n in range(100):
                csms.events.publish(ev.MeterSample("CP-L", 1, None, {"Power.Active.Import": float(n)}))
                csms.events.publish(ev.StatusChanged("CP-L", 1, "Charging", "NoError", str(n)))
                csms.events.publish(ev.MessageLogged("CP-L", "in", 2, str(n), "Heartbeat", "[]", TS))
            last = await reader.until(lambda m: m.get("seq") == api.stream.seq or
                                      (m["type"] == "event" and m["event"].get("info") == "99"))
            kinds = [m["event"]["type"] for m in reader.messages if m["type"] == "event"]
            assert kinds.count("StatusChanged") == 100  # every state change arrives
            assert kinds.count("MeterSample") < 100 and kinds.count("MessageLogged") < 100
            assert last["event"]["type"] == "StatusChanged"


async def test_the_stream_refuses_a_wrong_token_and_a_plain_get(settings_factory: Callable[..., Settings]) -> None:
    csms = CentralSystem(settings_factory(api_port=0, api_token="s3cret-token"))
    await csms.start()
    try:
        async with api_for(csms, authorized=False) as (api, http):
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    async with http.ws_connect("/api/events", headers=headers):
                        pass
                assert refused.value.status == 401
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:  # a web page's socket
                async with http.ws_connect("/api/events", origin="http://evil.example",
                                           headers={"Authorization": "Bearer s3cret-token"}):
                    pass
            assert refused.value.status == 403
            auth = {"Authorization": "Bearer s3cret-token"}
            async with http.ws_connect("/api/events", headers=auth) as ws:
                assert json.loads((await ws.receive(TIMEOUT)).data)["type"] == "hello"
            async with http.get("/api/events", headers=auth) as response:
                assert response.status == 426 and (await response.json())["error"] == "upgrade_required"
            async with http.get("/api/events", headers=auth, params={"since": "x"}) as response:
                assert response.status == 400
            assert not api.stream.clients
    finally:
        await csms.stop()


async def test_stopping_the_api_closes_the_streams(csms: CentralSystem) -> None:
    api = ApiServer(csms)
    await api.start()
    try:
        async with aiohttp.ClientSession(api.url, headers={"Authorization": f"Bearer {api.token}"}) as http:
            async with http.ws_connect("/api/events") as ws:
                await ws.receive(TIMEOUT)
                stopping = asyncio.create_task(api.stop())
                closed = await ws.receive(TIMEOUT)
                assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
                await asyncio.wait_for(stopping, TIMEOUT)
    finally:
        await api.stop()
