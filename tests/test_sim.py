"""The charger simulator against our central system, over real sockets, checked in its database."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import pytest
from ocpp.v16.enums import (
    AvailabilityStatus,
    AvailabilityType,
    CancelReservationStatus,
    ChargePointErrorCode,
    ChargingRateUnitType,
    ClearCacheStatus,
    ClearChargingProfileStatus,
    ChargingProfileStatus,
    ConfigurationStatus,
    DataTransferStatus,
    GetCompositeScheduleStatus,
    MessageTrigger,
    RemoteStartStopStatus,
    ReservationStatus,
    ResetStatus,
    ResetType,
    TriggerMessageStatus,
    UnlockStatus,
    UpdateStatus,
    UpdateType,
)
from ocpp.v16 import call
from websockets.asyncio.server import serve

from ocpp_console.csms import CentralSystem, InvalidCommand
from ocpp_console.csms import events as evs
from ocpp_console.settings import Settings
from ocpp_console.sim import EV, ChargerOptions, SimulatedCharger
from ocpp_console.timeutil import iso, utcnow
from tests.conftest import EventWaiter

T = TypeVar("T")
TIMEOUT = 10.0
SPEED = 600.0  # a simulated minute every 0.1 s


def fast_options(**overrides: Any) -> ChargerOptions:
    """Short real-time delays so the tests run in seconds; config keys go in `config`."""
    values: dict[str, Any] = dict(
        call_timeout=5.0,
        reconnect_initial_s=0.05,
        reconnect_max_s=0.3,
        reboot_s=1.0,
        transfer_s=30.0,
        unplug_s=30.0,
        tick_s=0.05,
        drain_timeout_s=3.0,
        config={"MeterValueSampleInterval": "60"},
    )
    values.update(overrides)
    return ChargerOptions(**values)


def big_ev(power_w: float = 11_000.0) -> EV:
    """A car that will not be full during a test."""
    return EV(capacity_wh=1_000_000.0, soc=10.0, target_soc=100.0, max_power_w=power_w, ramp_s=0.0)


async def until(check: Callable[[], Any], timeout: float = TIMEOUT, what: str = "condition") -> Any:
    """Poll `check` (sync or async) until it returns something truthy; fail after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value {last!r}")
        await asyncio.sleep(0.02)


def base_url(csms: CentralSystem) -> str:
    return f"ws://127.0.0.1:{csms.port}"


@contextlib.asynccontextmanager
async def running(
    url: str, cp_id: str, *, connectors: int = 1, ready: bool = True, options: ChargerOptions | None = None, **kw: Any
) -> AsyncIterator[SimulatedCharger]:
    charger = SimulatedCharger(
        cp_id, url, connectors=connectors, speed=kw.pop("speed", SPEED), seed=kw.pop("seed", 1),
        options=options or fast_options(), **kw,
    )
    task = asyncio.create_task(charger.run())
    try:
        if ready:
            await charger.wait_ready(TIMEOUT)
            await charger.wait_idle(TIMEOUT)  # the boot's StatusNotifications are through
        yield charger
    finally:
        await charger.stop()
        await asyncio.wait_for(task, TIMEOUT)


def fresh(waiter: EventWaiter) -> Callable[[Callable[[evs.Event], bool]], Awaitable[evs.Event]]:
    """Wait for an event matching a predicate that arrives after this call."""
    old = {id(e) for e in waiter.events}

    def wait(predicate: Callable[[evs.Event], bool]) -> Awaitable[evs.Event]:
        return waiter.wait_for(lambda e: id(e) not in old and predicate(e))

    return wait


async def statuses(csms: CentralSystem, cp_id: str) -> dict[int, str]:
    return {c["connector_id"]: c["status"] for c in await csms.store.connectors(cp_id)}


async def status_is(csms: CentralSystem, cp_id: str, connector_id: int, status: str) -> bool:
    return (await statuses(csms, cp_id)).get(connector_id) == status


async def start_transaction(charger: SimulatedCharger, connector_id: int = 1, tag: str = "TAG1", ev: EV | None = None) -> int:
    charger.plug_in(connector_id, tag, ev=ev or big_ev())

    def tx_id() -> int | None:
        tx = charger.connectors[connector_id].transaction
        return tx.transaction_id if tx else None

    return int(await until(tx_id, what=f"transaction on connector {connector_id}"))


def power_samples(rows: list[dict[str, Any]], after: str) -> list[float]:
    return [
        r["value_num"]
        for r in rows
        if r["measurand"] == "Power.Active.Import" and r["source"] == "MeterValues" and r["timestamp"] > after
    ]


def periods(result: Any) -> list[tuple[int, float]]:
    """A GetCompositeSchedule answer's periods (the ocpp library hands limits over as Decimal)."""
    return [(p["start_period"], float(p["limit"])) for p in result.charging_schedule["charging_schedule_period"]]


def compress(values: list[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        if not out or out[-1] != v:
            out.append(v)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def tags(csms: CentralSystem) -> None:
    for tag in ("TAG1", "TAG2", "TAG3", "PARENT"):
        await csms.store.upsert_id_tag(tag)
    await csms.store.upsert_id_tag("CHILD", parent_id_tag="PARENT")


# -- a full session ----------------------------------------------------------------------


async def test_full_session_is_recorded(csms: CentralSystem, waiter: EventWaiter, tags: None) -> None:
    async with running(base_url(csms), "SIM-A") as charger:
        # Nearly at its 80 % target: the car goes SuspendedEV before the driver comes back.
        ev = EV(capacity_wh=10_000.0, soc=77.0, target_soc=80.0, max_power_w=11_000.0, ramp_s=0.0)
        charger.plug_in(1, "TAG1", ev=ev, stay_s=1200)
        stopped = await waiter.wait_for(lambda e: isinstance(e, evs.TransactionStopped) and e.charger_id == "SIM-A")
        await charger.wait_idle(TIMEOUT)
        summary = charger.summary
        assert ev.soc >= 80.0

    row = await csms.store.transaction(stopped.transaction_id)
    assert row is not None
    assert row["id_tag"] == "TAG1" and row["auth_status"] == "Accepted" and row["flags"] == ""
    assert row["energy_wh"] == row["meter_stop"] - row["meter_start"] > 250  # ~3 % of 10 kWh
    assert (row["stop_reason"], row["stop_id_tag"]) == ("Local", "TAG1")
    assert (summary.sessions, summary.energy_wh, summary.errors) == (1, row["energy_wh"], 0)

    samples = await csms.store.meter_values_for(stopped.transaction_id)
    periodic = [s for s in samples if s["source"] == "MeterValues"]
    measurands = {s["measurand"] for s in periodic}
    assert {"Energy.Active.Import.Register", "Power.Active.Import", "Current.Import", "Voltage", "SoC"} <= measurands
    assert all(s["location"] == "EV" and s["unit"] == "Percent" for s in periodic if s["measurand"] == "SoC")
    energy = [s["value_num"] for s in periodic if s["measurand"] == "Energy.Active.Import.Register"]
    assert energy == sorted(energy) and row["meter_start"] <= energy[0] and energy[-1] <= row["meter_stop"]
    assert all(0 <= p <= 11_040 for p in power_samples(periodic, ""))
    assert all(not s["unknown_transaction"] for s in samples)
    contexts = {s["context"] for s in samples if s["source"] == "StopTransaction"}
    assert {"Transaction.Begin", "Transaction.End"} <= contexts  # transactionData

    history = [h["status"] for h in await csms.store.status_history("SIM-A") if h["connector_id"] == 1]
    assert compress(history) == ["Available", "Preparing", "Charging", "SuspendedEV", "Finishing", "Available"]

    log = list(reversed(await csms.store.message_log("SIM-A")))
    calls = [r["action"] for r in log if r["direction"] == "in" and r["message_type"] == 2]
    assert calls[0] == "BootNotification"
    assert calls.index("Authorize") < calls.index("StartTransaction") < calls.index("MeterValues")
    assert calls.index("StopTransaction") > max(i for i, a in enumerate(calls) if a == "MeterValues")
    for r in log:
        if r["direction"] == "in" and r["action"] in ("StartTransaction", "StopTransaction", "StatusNotification"):
            assert json.loads(r["raw"])[3]["timestamp"].endswith("Z")


async def test_boot_pending_only_boots_until_accepted_then_heartbeats(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(unknown_chargers="pending", boot_retry_interval=1, heartbeat_interval=1)
    async with CentralSystem(settings) as cs:
        waiter = EventWaiter(cs)
        async with running(base_url(cs), "SIM-P", ready=False) as charger:
            await waiter.wait_for(lambda e: isinstance(e, evs.ChargerBooted) and e.registration == "Pending")
            # It boots again after the interval given, and says nothing else meanwhile.
            await until(lambda: sum(isinstance(e, evs.ChargerBooted) for e in waiter.events) >= 2, what="second boot")
            assert not charger.ready
            log = await cs.store.message_log("SIM-P")
            assert {r["action"] for r in log if r["direction"] == "in"} == {"BootNotification"}

            await cs.commands.approve("SIM-P")  # triggers a BootNotification at once
            await charger.wait_ready(TIMEOUT)
            assert charger.summary.boots == 1

            async def heartbeats() -> int:
                rows = await cs.store.message_log("SIM-P")
                return sum(1 for r in rows if r["direction"] == "in" and r["action"] == "Heartbeat" and r["message_type"] == 2)

            await until(lambda: _at_least(heartbeats, 2), timeout=5, what="two heartbeats")
            assert await statuses(cs, "SIM-P") == {0: "Available", 1: "Available"}


async def _at_least(fn: Callable[[], Awaitable[int]], n: int) -> bool:
    return await fn() >= n


# -- remote control -----------------------------------------------------------------------


async def test_remote_start_stop_and_unlock(csms: CentralSystem, waiter: EventWaiter, tags: None) -> None:
    async with running(base_url(csms), "SIM-R", connectors=2) as charger:
        started_event = fresh(waiter)
        result = await csms.commands.remote_start_transaction("SIM-R", "TAG1", connector_id=1)
        assert result.status == RemoteStartStopStatus.accepted
        started = await started_event(lambda e: isinstance(e, evs.TransactionStarted))
        assert (started.connector_id, started.id_tag) == (1, "TAG1")
        await until(lambda: status_is(csms, "SIM-R", 1, "Charging"), what="connector 1 Charging")

        busy = await csms.commands.remote_start_transaction("SIM-R", "TAG2", connector_id=1)
        assert busy.status == RemoteStartStopStatus.rejected
        no_such = await csms.commands.remote_start_transaction("SIM-R", "TAG2", connector_id=5)
        assert no_such.status == RemoteStartStopStatus.rejected
        unknown = await csms.commands.remote_stop_transaction("SIM-R", started.transaction_id + 1000)
        assert unknown.status == RemoteStartStopStatus.rejected

        stopped_event = fresh(waiter)
        stop = await csms.commands.remote_stop_transaction("SIM-R", started.transaction_id)
        assert stop.status == RemoteStartStopStatus.accepted
        stopped = await stopped_event(lambda e: isinstance(e, evs.TransactionStopped))
        assert (stopped.transaction_id, stopped.reason) == (started.transaction_id, "Remote")

        # Without a connector id it picks a free one; unlocking it ends that transaction.
        second_event = fresh(waiter)
        again = await csms.commands.remote_start_transaction("SIM-R", "TAG2")
        assert again.status == RemoteStartStopStatus.accepted
        second = await second_event(lambda e: isinstance(e, evs.TransactionStarted))
        unlock_stop = fresh(waiter)
        unlocked = await csms.commands.unlock_connector("SIM-R", second.connector_id)
        assert unlocked.status == UnlockStatus.unlocked
        ended = await unlock_stop(lambda e: isinstance(e, evs.TransactionStopped))
        assert (ended.transaction_id, ended.reason) == (second.transaction_id, "UnlockCommand")
        assert (await csms.commands.unlock_connector("SIM-R", 9)).status == UnlockStatus.not_supported

    rows = {r["id"]: r for r in await csms.store.transactions("SIM-R")}
    assert set(rows) == {started.transaction_id, second.transaction_id}
    assert rows[started.transaction_id]["stop_reason"] == "Remote"
    assert all(r["energy_wh"] == r["meter_stop"] - r["meter_start"] >= 0 for r in rows.values())


# -- configuration --------------------------------------------------------------------------

STANDARD_KEYS = {
    "HeartbeatInterval", "MeterValueSampleInterval", "MeterValuesSampledData", "ConnectionTimeOut",
    "AuthorizeRemoteTxRequests", "LocalAuthorizeOffline", "LocalAuthListEnabled", "LocalAuthListMaxLength",
    "SendLocalListMaxLength", "NumberOfConnectors", "SupportedFeatureProfiles", "ChargeProfileMaxStackLevel",
    "ChargingScheduleAllowedChargingRateUnit", "ChargingScheduleMaxPeriods", "MaxChargingProfilesInstalled",
    "ReserveConnectorZeroSupported", "StopTransactionOnEVSideDisconnect", "StopTxnSampledData",
    "ClockAlignedDataInterval", "GetConfigurationMaxKeys", "ResetRetries", "TransactionMessageAttempts",
    "TransactionMessageRetryInterval", "UnlockConnectorOnEVSideDisconnect", "WebSocketPingInterval",
}


async def test_get_and_change_configuration(csms: CentralSystem) -> None:
    async with running(base_url(csms), "SIM-C", connectors=2, password="0123456789abcdef") as charger:
        everything = await csms.commands.get_configuration("SIM-C")
        keys = {k["key"]: k for k in everything.configuration_key}
        assert STANDARD_KEYS <= set(keys)
        assert keys["NumberOfConnectors"] == {"key": "NumberOfConnectors", "readonly": True, "value": "2"}
        assert keys["SupportedFeatureProfiles"]["readonly"] and not keys["HeartbeatInterval"]["readonly"]
        assert keys["HeartbeatInterval"]["value"] == "60"  # from the BootNotification answer
        assert "AuthorizationKey" not in keys and not everything.unknown_key

        some = await csms.commands.get_configuration("SIM-C", ["HeartbeatInterval", "NoSuchKey", "AuthorizationKey"])
        assert [k["key"] for k in some.configuration_key] == ["HeartbeatInterval"]
        assert some.unknown_key == ["NoSuchKey"]

        change = csms.commands.change_configuration
        assert (await change("SIM-C", "NumberOfConnectors", "3")).status == ConfigurationStatus.rejected
        assert (await change("SIM-C", "NoSuchKey", "1")).status == ConfigurationStatus.not_supported
        assert (await change("SIM-C", "MeterValueSampleInterval", "often")).status == ConfigurationStatus.rejected
        assert (await change("SIM-C", "MeterValuesSampledData", "Bogus.Measurand")).status == ConfigurationStatus.rejected
        assert (await change("SIM-C", "HeartbeatInterval", "120")).status == ConfigurationStatus.accepted
        assert (await change("SIM-C", "StopTransactionOnEVSideDisconnect", "FALSE")).status == ConfigurationStatus.accepted
        assert (await change("SIM-C", "AuthorizationKey", "fedcba9876543210fedc")).status == ConfigurationStatus.accepted
        # The console refuses to send a key of the wrong length; sent anyway, the charger refuses it too.
        with pytest.raises(InvalidCommand):
            await change("SIM-C", "AuthorizationKey", "short")
        raw = await csms.commands.send("SIM-C", call.ChangeConfiguration(key="AuthorizationKey", value="short"))
        assert raw.status == ConfigurationStatus.rejected

        after = await csms.commands.get_configuration("SIM-C", ["HeartbeatInterval", "StopTransactionOnEVSideDisconnect"])
        assert {k["key"]: k["value"] for k in after.configuration_key} == {
            "HeartbeatInterval": "120", "StopTransactionOnEVSideDisconnect": "false"
        }
        assert charger.config.get("AuthorizationKey") == "fedcba9876543210fedc"

    stored = {r["key"]: r for r in await csms.store.configuration("SIM-C")}
    assert stored["NumberOfConnectors"]["readonly"] == 1 and stored["HeartbeatInterval"]["value"] == "120"
    assert stored["NoSuchKey"]["known"] == 0


async def test_basic_auth_and_reconnect_after_a_refused_connection() -> None:
    """The AuthorizationKey is the Basic-auth password; after a dropped connection the charger
    comes back (with back-off) and boots again only if it was never Accepted."""
    seen: list[str | None] = []

    async def handler(ws: Any) -> None:
        seen.append(ws.request.headers.get("Authorization"))
        await ws.close()  # drop it at once, without a word

    async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:  # type: ignore[list-item]
        port = next(iter(server.sockets)).getsockname()[1]
        async with running(f"ws://127.0.0.1:{port}", "SIM-B", ready=False, password="0123456789abcdef") as charger:
            await until(lambda: len(seen) >= 3, what="three connection attempts")
            assert not charger.ready and charger.summary.boots == 0
    assert seen[0] == "Basic " + base64.b64encode(b"SIM-B:0123456789abcdef").decode()
    assert charger.summary.reconnects >= 2


# -- reset, availability, cache, triggers ----------------------------------------------------------


async def test_reset_stops_transactions_and_boots_again(csms: CentralSystem, waiter: EventWaiter, tags: None) -> None:
    async with running(base_url(csms), "SIM-X") as charger:
        tx = await start_transaction(charger)
        stop_event, boot_event = fresh(waiter), fresh(waiter)
        assert (await csms.commands.reset("SIM-X", ResetType.soft)).status == ResetStatus.accepted
        stopped = await stop_event(lambda e: isinstance(e, evs.TransactionStopped))
        assert (stopped.transaction_id, stopped.reason) == (tx, "SoftReset")
        await boot_event(lambda e: isinstance(e, evs.ChargerBooted) and e.charger_id == "SIM-X")
        await charger.wait_ready(TIMEOUT)
        assert charger.summary.boots == 2

        hard_boot = fresh(waiter)
        assert (await csms.commands.reset("SIM-X", ResetType.hard)).status == ResetStatus.accepted
        await hard_boot(lambda e: isinstance(e, evs.ChargerBooted))
        await charger.wait_ready(TIMEOUT)
        assert charger.summary.boots == 3
        disconnects = [e for e in waiter.events if isinstance(e, evs.ChargerDisconnected)]
        assert len(disconnects) >= 2  # each reset closed the connection

    row = await csms.store.transaction(tx)
    assert row is not None and row["stop_reason"] == "SoftReset" and row["energy_wh"] == row["meter_stop"] - row["meter_start"]


async def test_change_availability(csms: CentralSystem, waiter: EventWaiter, tags: None) -> None:
    async with running(base_url(csms), "SIM-AV", connectors=2) as charger:
        result = await csms.commands.change_availability("SIM-AV", 2, AvailabilityType.inoperative)
        assert result.status == AvailabilityStatus.accepted
        await until(lambda: status_is(csms, "SIM-AV", 2, "Unavailable"), what="connector 2 Unavailable")
        refused = await csms.commands.remote_start_transaction("SIM-AV", "TAG1", connector_id=2)
        assert refused.status == RemoteStartStopStatus.rejected
        expiry = iso(utcnow() + timedelta(hours=1))
        assert (await csms.commands.reserve_now("SIM-AV", 2, "TAG1", expiry)).status == ReservationStatus.unavailable

        tx = await start_transaction(charger, 1)
        await until(lambda: status_is(csms, "SIM-AV", 1, "Charging"), what="connector 1 Charging")
        scheduled = await csms.commands.change_availability("SIM-AV", 1, AvailabilityType.inoperative)
        assert scheduled.status == AvailabilityStatus.scheduled
        await charger.wait_idle(TIMEOUT)
        # Not before the transaction ends.
        assert (await statuses(csms, "SIM-AV"))[1] == "Charging" and charger.connectors[1].transaction is not None
        stopped = fresh(waiter)
        await csms.commands.remote_stop_transaction("SIM-AV", tx)
        await stopped(lambda e: isinstance(e, evs.TransactionStopped))
        await until(lambda: status_is(csms, "SIM-AV", 1, "Unavailable"), what="connector 1 Unavailable after the stop")

        everything = await csms.commands.change_availability("SIM-AV", 0, AvailabilityType.operative)
        assert everything.status == AvailabilityStatus.accepted

        async def all_available() -> bool:
            return await statuses(csms, "SIM-AV") == {0: "Available", 1: "Available", 2: "Available"}

        await until(all_available, what="all connectors Available")
        assert (await csms.commands.change_availability("SIM-AV", 7, AvailabilityType.operative)).status == (
            AvailabilityStatus.rejected
        )


async def test_clear_cache_and_trigger_messages(csms: CentralSystem, waiter: EventWaiter, tags: None) -> None:
    async with running(base_url(csms), "SIM-T", connectors=2) as charger:
        stopped = fresh(waiter)
        charger.plug_in(1, "TAG1", ev=big_ev(), stay_s=120)
        await stopped(lambda e: isinstance(e, evs.TransactionStopped))
        assert "TAG1" in charger.auth.cache
        assert (await csms.commands.clear_cache("SIM-T")).status == ClearCacheStatus.accepted
        assert charger.auth.cache == {}

        tx = await start_transaction(charger, 2, "TAG2")
        await until(lambda: status_is(csms, "SIM-T", 2, "Charging"), what="connector 2 Charging")
        trigger = csms.commands.trigger_message

        booted = fresh(waiter)
        assert (await trigger("SIM-T", MessageTrigger.boot_notification)).status == TriggerMessageStatus.accepted
        await booted(lambda e: isinstance(e, evs.ChargerBooted))

        heartbeat = fresh(waiter)
        assert (await trigger("SIM-T", MessageTrigger.heartbeat)).status == TriggerMessageStatus.accepted
        await heartbeat(lambda e: isinstance(e, evs.MessageLogged) and e.action == "Heartbeat" and e.direction == "in")

        status = fresh(waiter)
        assert (await trigger("SIM-T", MessageTrigger.status_notification, 2)).status == TriggerMessageStatus.accepted
        # connector 1 may report its own change meanwhile (its car leaving): the trigger's is connector 2's
        changed = await status(lambda e: isinstance(e, evs.StatusChanged) and e.connector_id == 2)
        assert changed.status == "Charging"

        meter = fresh(waiter)
        assert (await trigger("SIM-T", MessageTrigger.meter_values, 2)).status == TriggerMessageStatus.accepted
        sample = await meter(lambda e: isinstance(e, evs.MeterSample))
        assert (sample.connector_id, sample.transaction_id) == (2, tx)

        for message, action in (
            (MessageTrigger.diagnostics_status_notification, "DiagnosticsStatusNotification"),
            (MessageTrigger.firmware_status_notification, "FirmwareStatusNotification"),
        ):
            note = fresh(waiter)
            assert (await trigger("SIM-T", message)).status == TriggerMessageStatus.accepted
            got = await note(lambda e: isinstance(e, evs.NotificationReceived))
            assert (got.action, got.status) == (action, "Idle")

        assert (await trigger("SIM-T", MessageTrigger.status_notification, 5)).status == TriggerMessageStatus.rejected
        log = await csms.store.message_log("SIM-T")
        # Every trigger was answered before the triggered message went out.
        ordered = list(reversed(log))
        answer = next(i for i, r in enumerate(ordered) if r["direction"] == "in" and r["action"] == "TriggerMessage")
        boot_after = [i for i, r in enumerate(ordered) if r["direction"] == "in" and r["action"] == "BootNotification"]
        assert boot_after[-1] > answer


# -- firmware and diagnostics --------------------------------------------------------------------


class _Files(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, bytes]] = []

    def do_GET(self) -> None:  # noqa: N802
        self.requests.append(("GET", self.path, b""))
        if self.path.startswith("/fw/"):
            body = b"\x7fFIRMWARE" * 1000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def do_PUT(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.requests.append(("PUT", self.path, body))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def file_server() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    requests: list[tuple[str, str, bytes]] = []
    handler = type("Files", (_Files,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


async def _firmware_notes(csms: CentralSystem, cp_id: str) -> list[str]:
    return [n["status"] for n in await csms.store.notifications(cp_id) if n["action"] == "FirmwareStatusNotification"]


async def test_update_firmware_reboots_with_the_new_version(csms: CentralSystem, waiter: EventWaiter) -> None:
    async with running(base_url(csms), "SIM-F") as charger:
        booted = fresh(waiter)
        await csms.commands.update_firmware("SIM-F", "https://firmware.invalid/images/sim-2.0.0.bin")
        boot = await booted(lambda e: isinstance(e, evs.ChargerBooted))
        assert boot.firmware_version == "2.0.0"
        await charger.wait_ready(TIMEOUT)
    assert await _firmware_notes(csms, "SIM-F") == ["Downloading", "Downloaded", "Installing", "Installed"]
    row = await csms.store.charger("SIM-F")
    assert row is not None and row["firmware_version"] == "2.0.0"


async def test_update_firmware_fetches_the_image_when_asked(
    csms: CentralSystem, waiter: EventWaiter, file_server: tuple[str, list[tuple[str, str, bytes]]]
) -> None:
    url, requests = file_server
    async with running(base_url(csms), "SIM-FF", options=fast_options(fetch_firmware=True)) as charger:
        await csms.commands.update_firmware("SIM-FF", f"{url}/missing/sim-9.9.9.bin", retries=0)
        await until(lambda: _firmware_notes(csms, "SIM-FF"), what="a firmware notification")
        await until(lambda: _has(_firmware_notes(csms, "SIM-FF"), "DownloadFailed"), what="DownloadFailed")
        assert charger.firmware_version == "1.0.0"

        booted = fresh(waiter)
        await csms.commands.update_firmware("SIM-FF", f"{url}/fw/image.bin")
        boot = await booted(lambda e: isinstance(e, evs.ChargerBooted))
        assert boot.firmware_version == "1.0.1"  # no version in the name: the last number goes up
    assert ("GET", "/fw/image.bin", b"") in requests
    assert (await csms.store.charger("SIM-FF"))["firmware_version"] == "1.0.1"  # type: ignore[index]


async def _has(values: Awaitable[list[str]], wanted: str) -> bool:
    return wanted in await values


async def test_get_diagnostics(csms: CentralSystem, file_server: tuple[str, list[tuple[str, str, bytes]]]) -> None:
    url, requests = file_server

    async def diagnostics(cp_id: str) -> list[str]:
        return [n["status"] for n in await csms.store.notifications(cp_id) if n["action"] == "DiagnosticsStatusNotification"]

    async with running(base_url(csms), "SIM-D"):
        result = await csms.commands.get_diagnostics("SIM-D", "ftp://diagnostics.invalid/upload/")
        assert result.file_name.startswith("diagnostics-SIM-D-") and result.file_name.endswith(".log")
        await until(lambda: _has(diagnostics("SIM-D"), "Uploaded"), what="Uploaded")
        assert await diagnostics("SIM-D") == ["Uploading", "Uploaded"]

    async with running(base_url(csms), "SIM-DU", options=fast_options(upload_diagnostics=True)):
        result = await csms.commands.get_diagnostics("SIM-DU", f"{url}/diag/")
        await until(lambda: _has(diagnostics("SIM-DU"), "Uploaded"), what="Uploaded")
    puts = [(path, body) for method, path, body in requests if method == "PUT"]
    assert [p for p, _ in puts] == [f"/diag/{result.file_name}"]
    assert b"SIM-DU" in puts[0][1] and b"AuthorizationKey" not in puts[0][1]


async def test_data_transfer(csms: CentralSystem) -> None:
    async with running(base_url(csms), "SIM-DT"):
        echo = await csms.commands.data_transfer("SIM-DT", "ocpp-console-sim", "echo", "hello")
        assert (echo.status, echo.data) == (DataTransferStatus.accepted, "hello")
        other = await csms.commands.data_transfer("SIM-DT", "ocpp-console-sim", "launch")
        assert other.status == DataTransferStatus.unknown_message_id
        vendor = await csms.commands.data_transfer("SIM-DT", "acme", "echo", "x")
        assert vendor.status == DataTransferStatus.unknown_vendor_id
    rows = await csms.store.data_transfers("SIM-DT")
    assert [(r["direction"], r["status"]) for r in rows] == [
        ("out", "Accepted"), ("out", "UnknownMessageId"), ("out", "UnknownVendorId")
    ]


# -- reservations ----------------------------------------------------------------------------------


async def test_reservations(csms: CentralSystem, waiter: EventWaiter, tags: None) -> None:
    expiry = iso(utcnow() + timedelta(hours=1))
    async with running(base_url(csms), "SIM-RS", connectors=2) as charger:
        reserve = csms.commands.reserve_now
        first = await reserve("SIM-RS", 1, "TAG1", expiry)
        assert first.status == ReservationStatus.accepted
        await until(lambda: status_is(csms, "SIM-RS", 1, "Reserved"), what="connector 1 Reserved")
        assert (await reserve("SIM-RS", 0, "TAG2", expiry)).status == ReservationStatus.rejected
        assert (await reserve("SIM-RS", 1, "TAG2", expiry)).status == ReservationStatus.occupied
        other = await csms.commands.remote_start_transaction("SIM-RS", "TAG2", connector_id=1)
        assert other.status == RemoteStartStopStatus.rejected

        # Another driver's card is refused on the reserved connector; it stays Reserved.
        charger.plug_in(1, "TAG2", ev=big_ev())
        await until(lambda: charger.summary.rejected == 1 and charger.connectors[1].session is None, what="refusal")
        await until(lambda: status_is(csms, "SIM-RS", 1, "Reserved"), what="connector 1 Reserved again")

        started = fresh(waiter)
        charger.plug_in(1, "TAG1", ev=big_ev())
        tx = await started(lambda e: isinstance(e, evs.TransactionStarted))
        assert (await reserve("SIM-RS", 1, "TAG3", expiry)).status == ReservationStatus.occupied
        row = await csms.store.transaction(tx.transaction_id)
        assert row is not None and row["reservation_id"] == first.reservation_id

        # A tag whose parent is the reservation's parent tag may use it.
        by_parent = await reserve("SIM-RS", 2, "SOMEONE", expiry, parent_id_tag="PARENT")
        assert by_parent.status == ReservationStatus.accepted
        child = fresh(waiter)
        charger.plug_in(2, "CHILD", ev=big_ev())
        child_tx = await child(lambda e: isinstance(e, evs.TransactionStarted))
        child_row = await csms.store.transaction(child_tx.transaction_id)
        assert child_row is not None and child_row["reservation_id"] == by_parent.reservation_id

        for connector in (1, 2):
            charger.request_stop(connector)
        await until(lambda: all(c.session is None for c in charger.connectors.values()), what="sessions over")

        cancel = await reserve("SIM-RS", 1, "TAG2", expiry)
        await until(lambda: status_is(csms, "SIM-RS", 1, "Reserved"), what="Reserved for the cancel test")
        assert (await csms.commands.cancel_reservation("SIM-RS", cancel.reservation_id)).status == (
            CancelReservationStatus.accepted
        )
        await until(lambda: status_is(csms, "SIM-RS", 1, "Available"), what="Available after the cancel")
        assert (await csms.commands.cancel_reservation("SIM-RS", cancel.reservation_id)).status == (
            CancelReservationStatus.rejected
        )

        soon = iso(utcnow() + timedelta(seconds=1))
        assert (await reserve("SIM-RS", 2, "TAG2", soon)).status == ReservationStatus.accepted
        await until(lambda: status_is(csms, "SIM-RS", 2, "Reserved"), what="Reserved until expiry")
        await until(lambda: status_is(csms, "SIM-RS", 2, "Available"), timeout=5, what="Available after expiry")
        assert charger.connectors[2].reservation is None

        # A faulted connector cannot be reserved.
        charger.set_fault(1, ChargePointErrorCode.ground_failure)
        await until(lambda: status_is(csms, "SIM-RS", 1, "Faulted"), what="connector 1 Faulted")
        assert (await reserve("SIM-RS", 1, "TAG2", expiry)).status == ReservationStatus.faulted
        charger.set_fault(1, None)
        await until(lambda: status_is(csms, "SIM-RS", 1, "Available"), what="connector 1 repaired")
        assert {c["connector_id"]: c["error_code"] for c in await csms.store.connectors("SIM-RS")}[1] == "NoError"
        faults = [h for h in await csms.store.status_history("SIM-RS") if h["status"] == "Faulted"]
        assert [f["error_code"] for f in faults] == ["GroundFailure"]

    used = {r["id"]: r["status"] for r in await csms.store.reservations("SIM-RS")}
    assert used[first.reservation_id] == "Used" and used[by_parent.reservation_id] == "Used"


# -- local authorization list --------------------------------------------------------------------


async def test_local_list(csms: CentralSystem) -> None:
    async with running(base_url(csms), "SIM-L") as charger:
        version = csms.commands.get_local_list_version
        send = csms.commands.send_local_list
        assert (await version("SIM-L")).list_version == 0
        full = [{"idTag": "L1", "idTagInfo": {"status": "Accepted"}}, {"idTag": "L2", "idTagInfo": {"status": "Blocked"}}]
        assert (await send("SIM-L", 1, UpdateType.full, full)).status == UpdateStatus.accepted
        assert (await version("SIM-L")).list_version == 1
        assert {t: i.status for t, i in charger.auth.local_list.items()} == {"L1": "Accepted", "L2": "Blocked"}

        stale = [{"idTag": "L3", "idTagInfo": {"status": "Accepted"}}]
        assert (await send("SIM-L", 1, UpdateType.differential, stale)).status == UpdateStatus.version_mismatch
        diff = [{"idTag": "L2"}, {"idTag": "L3", "idTagInfo": {"status": "Accepted"}}]
        assert (await send("SIM-L", 2, UpdateType.differential, diff)).status == UpdateStatus.accepted
        assert sorted(charger.auth.local_list) == ["L1", "L3"]
        too_many = [{"idTag": f"X{i}", "idTagInfo": {"status": "Accepted"}} for i in range(51)]
        assert (await send("SIM-L", 3, UpdateType.full, too_many)).status == UpdateStatus.failed
        assert (await version("SIM-L")).list_version == 2
        assert (await csms.store.charger("SIM-L"))["local_list_version"] == 2  # type: ignore[index]

        await csms.commands.change_configuration("SIM-L", "LocalAuthListEnabled", "false")
        assert (await send("SIM-L", 4, UpdateType.full, full)).status == UpdateStatus.not_supported
        assert (await version("SIM-L")).list_version == -1


# -- smart charging ------------------------------------------------------------------------------


def profile(profile_id: int, purpose: str, limit: float, *, unit: str = "W", stack: int = 0, **extra: Any) -> dict[str, Any]:
    schedule: dict[str, Any] = {"chargingRateUnit": unit, "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}
    schedule.update(extra.pop("schedule", {}))
    return {
        "chargingProfileId": profile_id,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": extra.pop("kind", "Relative"),
        "chargingSchedule": schedule,
        **extra,
    }


async def test_charging_profiles_limit_the_power(csms: CentralSystem, tags: None) -> None:
    async with running(base_url(csms), "SIM-S", connectors=2) as charger:
        setp = csms.commands.set_charging_profile
        rejected = ChargingProfileStatus.rejected
        assert (await setp("SIM-S", 1, profile(1, "TxProfile", 3000))).status == rejected  # no transaction
        assert (await setp("SIM-S", 1, profile(2, "ChargePointMaxProfile", 3000))).status == rejected
        assert (await setp("SIM-S", 0, profile(3, "TxDefaultProfile", 3000, stack=11))).status == rejected

        tx = await start_transaction(charger, 1)

        async def powers(after: str) -> list[float]:
            return power_samples(await csms.store.meter_values_for(tx), after)

        async def settled(after: str, low: float, high: float, n: int = 3) -> bool:
            values = await powers(after)
            return len(values) >= n and all(low <= v <= high for v in values)

        await until(lambda: settled("", 10_000, 11_040, 2), what="full power before any profile")

        result = await setp("SIM-S", 1, profile(10, "TxProfile", 3000, transactionId=tx))
        assert result.status == ChargingProfileStatus.accepted
        mark = iso(utcnow())
        await until(lambda: settled(mark, 0, 3000), what="power held at 3 kW")
        composite = await csms.commands.get_composite_schedule("SIM-S", 1, 600)
        assert composite.status == GetCompositeScheduleStatus.accepted
        assert periods(composite) == [(0, 3000.0)]
        in_amps = await csms.commands.get_composite_schedule("SIM-S", 1, 600, ChargingRateUnitType.amps)
        assert periods(in_amps) == [(0, 4.3)]

        # Same purpose and stack level: replaces it. 10 A on 3 phases at 230 V is 6.9 kW.
        assert (await setp("SIM-S", 1, profile(11, "TxProfile", 10, unit="A"))).status == ChargingProfileStatus.accepted
        mark = iso(utcnow())
        await until(lambda: settled(mark, 6000, 6900), what="power held at 6.9 kW")

        clear = csms.commands.clear_charging_profile
        assert (await clear("SIM-S", id=11)).status == ClearChargingProfileStatus.accepted
        assert (await clear("SIM-S", id=11)).status == ClearChargingProfileStatus.unknown
        mark = iso(utcnow())
        await until(lambda: settled(mark, 10_000, 11_040), what="full power again")

        # Default profiles for every connector: the higher stack level wins while it lasts.
        start = iso(utcnow())
        two_step = profile(20, "TxDefaultProfile", 2000, stack=1, kind="Absolute", schedule={
            "startSchedule": start, "duration": 3600,
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 2000}, {"startPeriod": 1800, "limit": 4000}],
        })
        assert (await setp("SIM-S", 0, two_step)).status == ChargingProfileStatus.accepted
        base = profile(21, "TxDefaultProfile", 5000, kind="Absolute", schedule={"startSchedule": start})
        assert (await setp("SIM-S", 0, base)).status == ChargingProfileStatus.accepted
        mark = iso(utcnow())
        await until(lambda: settled(mark, 1500, 2000), what="power held at 2 kW by the default profile")
        schedule = await csms.commands.get_composite_schedule("SIM-S", 2, 7200)
        assert periods(schedule) == [(0, 2000.0), (1800, 4000.0), (3600, 5000.0)]

        # A charger-wide maximum caps everything.
        assert (await setp("SIM-S", 0, profile(30, "ChargePointMaxProfile", 1500))).status == ChargingProfileStatus.accepted
        mark = iso(utcnow())
        await until(lambda: settled(mark, 1000, 1500), what="power held at 1.5 kW")
        capped = await csms.commands.get_composite_schedule("SIM-S", 1, 600)
        assert periods(capped) == [(0, 1500.0)]
        assert (await clear("SIM-S", charging_profile_purpose="TxDefaultProfile")).status == (
            ClearChargingProfileStatus.accepted
        )
        assert [p.id for p in charger.profiles.installed] == [30]
        # Nothing allowed at all: the car waits, and the charger says it is the one holding back.
        assert (await setp("SIM-S", 0, profile(31, "ChargePointMaxProfile", 0))).status == ChargingProfileStatus.accepted
        await until(lambda: status_is(csms, "SIM-S", 1, "SuspendedEVSE"), what="SuspendedEVSE")
        assert [p.id for p in charger.profiles.installed] == [31]  # same purpose and stack level: replaced

    stored = {r["profile_id"]: r["status"] for r in await csms.store.charging_profiles("SIM-S")}
    # What the central system keeps is what the charger holds: rejected ones never, replaced ones no more.
    assert stored == {p.id: "Accepted" for p in charger.profiles.installed} == {31: "Accepted"}


# -- connection loss ------------------------------------------------------------------------------


async def test_dropped_connection_mid_transaction(csms: CentralSystem, waiter: EventWaiter, tags: None) -> None:
    async with running(base_url(csms), "SIM-N") as charger:
        tx = await start_transaction(charger)
        await until(lambda: _count_samples(csms, tx, 2), what="meter values before the drop")
        assert charger.disconnect()
        await until(lambda: charger.summary.reconnects == 1 and charger.ready, what="reconnected")
        await until(lambda: _count_samples(csms, tx, 6), what="meter values after the drop")
        charger.request_stop(1)
        await until(lambda: charger.summary.sessions == 1, what="StopTransaction answered")

    connects = [e for e in waiter.events if isinstance(e, evs.ChargerConnected)]
    boots = [e for e in waiter.events if isinstance(e, evs.ChargerBooted)]
    assert len(connects) == 2 and len(boots) == 1  # an Accepted charger need not boot again
    rows = await csms.store.transactions("SIM-N")
    assert len(rows) == 1 and rows[0]["energy_wh"] == rows[0]["meter_stop"] - rows[0]["meter_start"] > 0
    samples = await csms.store.meter_values_of("SIM-N")
    assert all(s["transaction_id"] == tx and not s["unknown_transaction"] for s in samples)


async def _count_samples(csms: CentralSystem, tx: int, n: int) -> bool:
    rows = await csms.store.meter_values_for(tx)
    return sum(1 for r in rows if r["measurand"] == "Energy.Active.Import.Register" and r["source"] == "MeterValues") >= n


async def test_central_system_restart_delivers_queued_messages(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(port=free_port())
    url = f"ws://127.0.0.1:{settings.port}"
    first = CentralSystem(settings)
    await first.start()
    for tag in ("TAG1", "TAG2"):
        await first.store.upsert_id_tag(tag)
    charger = SimulatedCharger("SIM-Q", url, connectors=2, speed=SPEED, seed=3, options=fast_options())
    task = asyncio.create_task(charger.run())
    second: CentralSystem | None = None
    rows_after: dict[int, dict[str, Any]] = {}
    try:
        await charger.wait_ready(TIMEOUT)
        # TAG2 goes on the local list, so it can start a session while the central system is down.
        local = [{"idTag": "TAG2", "idTagInfo": {"status": "Accepted"}}]
        assert (await first.commands.send_local_list("SIM-Q", 1, UpdateType.full, local)).status == UpdateStatus.accepted
        tx1 = await start_transaction(charger, 1, "TAG1")
        await until(lambda: _count_samples(first, tx1, 2), what="meter values while online")
        await first.stop()
        down_since = iso(utcnow())
        await until(lambda: not charger.connected, what="the charger noticing")

        def queued(action: str, connector: int | None = None) -> int:
            return sum(
                1 for item in charger.outbox
                if item.action == action and (connector is None or (item.tx and item.tx.connector_id == connector))
            )

        await until(lambda: queued("MeterValues", 1) >= 3, what="meter values queued offline")
        charger.plug_in(2, "TAG2", ev=big_ev())
        offline_tx = await until(lambda: charger.connectors[2].transaction, what="an offline transaction")
        assert offline_tx.transaction_id is None
        await until(lambda: queued("MeterValues", 2) >= 2, what="its meter values queued")
        charger.request_stop(1)
        await until(lambda: queued("StopTransaction") == 1, what="StopTransaction queued")
        assert queued("StartTransaction") == 1 and charger.summary.sessions == 0
        up_again = iso(utcnow())

        second = CentralSystem(settings)
        await second.start()
        await until(lambda: not charger.outbox.transactional(), timeout=15, what="the queue delivered")
        tx2 = offline_tx.transaction_id
        assert tx2 is not None and tx2 != tx1  # reconciled with the id given after reconnecting

        rows = {r["id"]: r for r in await second.store.transactions("SIM-Q")}
        assert set(rows) == {tx1, tx2}  # nothing lost, nothing twice
        stopped = rows[tx1]
        assert stopped["stop_reason"] == "Local" and stopped["stopped_at"] is not None
        assert stopped["energy_wh"] == stopped["meter_stop"] - stopped["meter_start"] > 0
        assert rows[tx2]["stopped_at"] is None and rows[tx2]["meter_start"] == offline_tx.meter_start
        assert rows[tx2]["start_timestamp"] == offline_tx.timestamp  # its offline time, kept
        assert await second.store.unknown_stops("SIM-Q") == []

        samples = await second.store.meter_values_of("SIM-Q", limit=10_000)
        assert not any(s["unknown_transaction"] for s in samples)
        assert all(s["transaction_id"] in (tx1, tx2) for s in samples)
        mv2 = [s for s in samples if s["connector_id"] == 2 and s["source"] == "MeterValues"]
        assert len(mv2) >= 2 and all(s["transaction_id"] == tx2 for s in mv2)
        energy1 = [
            s["value_num"] for s in reversed(samples)
            if s["transaction_id"] == tx1 and s["source"] == "MeterValues" and s["measurand"] == "Energy.Active.Import.Register"
        ]
        assert energy1 == sorted(energy1)  # delivered in order
        offline_stamps = [
            s["timestamp"] for s in samples
            if s["transaction_id"] == tx1 and s["source"] == "MeterValues" and down_since < s["timestamp"] < up_again
        ]
        assert len(offline_stamps) >= 3  # taken while offline, delivered later
        assert charger.summary.reconnects >= 1 and charger.summary.sessions == 1
    finally:
        await charger.stop()
        await asyncio.wait_for(task, TIMEOUT)
        if second is not None:
            rows_after = {r["id"]: r for r in await second.store.transactions("SIM-Q")}
            await second.stop()
        else:
            await first.stop()
    assert len(rows_after) == 2 and all(r["stopped_at"] is not None for r in rows_after.values())  # stop() ended both


async def test_remote_start_with_a_charging_profile(csms: CentralSystem, waiter: EventWaiter, tags: None) -> None:
    async with running(base_url(csms), "SIM-RP") as charger:
        started = fresh(waiter)
        with_profile = profile(5, "TxProfile", 2000)
        result = await csms.commands.remote_start_transaction("SIM-RP", "TAG1", 1, charging_profile=with_profile)
        assert result.status == RemoteStartStopStatus.accepted
        tx = (await started(lambda e: isinstance(e, evs.TransactionStarted))).transaction_id

        async def limited() -> bool:
            values = power_samples(await csms.store.meter_values_for(tx), "")
            return len(values) >= 3 and all(0 < v <= 2000 for v in values)

        await until(limited, what="power held at 2 kW from the start")
        assert [p.id for p in charger.profiles.installed] == [5]
        not_tx = profile(6, "TxDefaultProfile", 2000)
        charger.request_stop(1)
        await until(lambda: charger.connectors[1].session is None, what="session over")
        assert charger.profiles.installed == []  # a TxProfile ends with its transaction
        refused = await csms.commands.remote_start_transaction("SIM-RP", "TAG1", 1, charging_profile=not_tx)
        assert refused.status == RemoteStartStopStatus.rejected


async def test_clock_aligned_meter_values(csms: CentralSystem, tags: None) -> None:
    options = fast_options(config={"MeterValueSampleInterval": "0", "ClockAlignedDataInterval": "60"})
    async with running(base_url(csms), "SIM-CA", options=options) as charger:
        tx = await start_transaction(charger)

        async def clock_samples() -> list[dict[str, Any]]:
            return [s for s in await csms.store.meter_values_for(tx) if s["source"] == "MeterValues"]

        await until(lambda: _at_least_rows(clock_samples, 3), what="clock-aligned meter values")
        assert {s["context"] for s in await clock_samples()} == {"Sample.Clock"}  # periodic ones are off


async def _at_least_rows(fn: Callable[[], Awaitable[list[Any]]], n: int) -> bool:
    return len(await fn()) >= n


async def test_offline_start_refused_later_is_deauthorized(csms: CentralSystem, waiter: EventWaiter) -> None:
    """Offline, an unknown tag may start (AllowOfflineTxForUnknownId); once the central system
    answers Invalid, the charger stops the transaction itself with reason DeAuthorized."""
    options = fast_options(
        reconnect_initial_s=1.0, config={"MeterValueSampleInterval": "60", "AllowOfflineTxForUnknownId": "true"}
    )
    async with running(base_url(csms), "SIM-DA", options=options) as charger:
        assert charger.disconnect()
        await until(lambda: not charger.connected, what="offline")
        charger.plug_in(1, "STRANGER", ev=big_ev())
        tx = await until(lambda: charger.connectors[1].transaction, what="an offline transaction")
        stopped = await waiter.wait_for(lambda e: isinstance(e, evs.TransactionStopped) and e.charger_id == "SIM-DA")
        assert stopped.reason == "DeAuthorized" and tx.auth_status == "Invalid"
        await until(lambda: charger.summary.sessions == 1, what="StopTransaction answered")
    (row,) = await csms.store.transactions("SIM-DA")
    assert (row["auth_status"], row["stop_reason"], row["stop_id_tag"]) == ("Invalid", "DeAuthorized", None)


# -- a scripted central system, for answers ours never gives ---------------------------------------


class ScriptedCentralSystem:
    """Answers every call normally, except the CALLERRORs planned per action (in order)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = {action: list(codes) for action, codes in errors.items()}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def answer(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        now = iso(utcnow())
        return {
            "BootNotification": {"currentTime": now, "interval": 60, "status": "Accepted"},
            "Heartbeat": {"currentTime": now},
            "Authorize": {"idTagInfo": {"status": "Accepted"}},
            "StartTransaction": {"transactionId": 77, "idTagInfo": {"status": "Accepted"}},
        }.get(action, {})

    async def handler(self, ws: Any) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame[0] != 2:
                continue
            _, uid, action, payload = frame
            self.calls.append((action, payload))
            planned = self.errors.get(action)
            if planned:
                await ws.send(json.dumps([4, uid, planned.pop(0), "scripted failure", {}]))
            else:
                await ws.send(json.dumps([3, uid, self.answer(action, payload)]))

    def actions(self, action: str) -> list[dict[str, Any]]:
        return [payload for a, payload in self.calls if a == action]


async def test_callerrors_retry_transaction_messages_and_security_error_reboots() -> None:
    script = ScriptedCentralSystem({"StartTransaction": ["InternalError", "InternalError"], "StatusNotification": ["SecurityError"]})
    options = fast_options(config={
        "MeterValueSampleInterval": "60", "TransactionMessageAttempts": "3", "TransactionMessageRetryInterval": "0",
    })
    async with serve(script.handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:  # type: ignore[list-item]
        port = next(iter(server.sockets)).getsockname()[1]
        async with running(f"ws://127.0.0.1:{port}", "SIM-E", ready=False, options=options) as charger:
            # SecurityError: the central system does not take it for registered, so it boots again.
            await until(lambda: len(script.actions("BootNotification")) == 2, what="a second BootNotification")
            await charger.wait_ready(TIMEOUT)
            tx = await start_transaction(charger, 1, "T1")
            assert tx == 77
            await until(lambda: len(script.actions("MeterValues")) >= 2, what="meter values")
            charger.request_stop(1)
            await until(lambda: script.actions("StopTransaction"), what="StopTransaction")
            errors = charger.summary.errors
    starts = script.actions("StartTransaction")
    assert len(starts) == 3 and starts[0] == starts[1] == starts[2]  # resent unchanged: dedupable
    assert all(m["transactionId"] == 77 for m in script.actions("MeterValues"))
    assert script.actions("StopTransaction")[0]["transactionId"] == 77
    assert errors == 3  # two CALLERRORs for the start, one SecurityError


async def test_a_start_given_up_drops_its_stop_but_keeps_meter_values() -> None:
    script = ScriptedCentralSystem({"StartTransaction": ["InternalError"] * 2})
    options = fast_options(config={
        "MeterValueSampleInterval": "60", "TransactionMessageAttempts": "2", "TransactionMessageRetryInterval": "0",
    })
    async with serve(script.handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:  # type: ignore[list-item]
        port = next(iter(server.sockets)).getsockname()[1]
        async with running(f"ws://127.0.0.1:{port}", "SIM-G", options=options) as charger:
            charger.plug_in(1, "T1", ev=big_ev())
            await until(lambda: len(script.actions("MeterValues")) >= 2, what="meter values")
            charger.request_stop(1)
            await until(lambda: charger.connectors[1].session is None and not charger.outbox.transactional(),
                        what="the queue emptied")
    assert len(script.actions("StartTransaction")) == 2  # TransactionMessageAttempts
    assert all("transactionId" not in m for m in script.actions("MeterValues"))  # no id was ever given
    assert script.actions("StopTransaction") == []  # nothing to name it by
