"""Operator commands: every central-system-initiated 1.6 operation, its answer and its stored effect."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import (
    Action,
    AvailabilityType,
    ChargingProfilePurposeType,
    MessageTrigger,
    ResetType,
    UpdateType,
)

from ocpp_console.csms import (
    CallErrorReceived,
    CentralSystem,
    ChargerOffline,
    CommandTimeout,
    InvalidAnswer,
    InvalidCommand,
    UnknownCharger,
)
from ocpp_console.csms import events as ev
from tests.clients import TestCharger
from tests.conftest import EventWaiter, charger

PROFILE = {
    "chargingProfileId": 5,
    "stackLevel": 1,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 3700.0}],
    },
}


async def test_every_operation_reaches_the_charger(csms: CentralSystem) -> None:
    c = csms.commands
    async with charger(csms, "CP1") as cp:
        await cp.boot()
        expectations: list[tuple[str, Any, dict[str, Any]]] = [
            ("RemoteStartTransaction", c.remote_start_transaction("CP1", "TAG", connector_id=1), {"id_tag": "TAG", "connector_id": 1}),
            ("RemoteStopTransaction", c.remote_stop_transaction("CP1", 12), {"transaction_id": 12}),
            ("Reset", c.reset("CP1", ResetType.hard), {"type": "Hard"}),
            ("UnlockConnector", c.unlock_connector("CP1", 2), {"connector_id": 2}),
            ("ChangeAvailability", c.change_availability("CP1", 1, AvailabilityType.inoperative), {"connector_id": 1, "type": "Inoperative"}),
            ("ClearCache", c.clear_cache("CP1"), {}),
            ("TriggerMessage", c.trigger_message("CP1", MessageTrigger.status_notification, 1), {"requested_message": "StatusNotification", "connector_id": 1}),
            ("UpdateFirmware", c.update_firmware("CP1", "https://fw.example/sim-2.0.0.bin", "2026-11-25T10:00:00Z", retries=2), {"location": "https://fw.example/sim-2.0.0.bin", "retrieve_date": "2026-11-25T10:00:00Z", "retries": 2}),
            ("GetDiagnostics", c.get_diagnostics("CP1", "ftp://diag.example/up"), {"location": "ftp://diag.example/up"}),
            ("DataTransfer", c.data_transfer("CP1", "com.example", "ping", "hello"), {"vendor_id": "com.example", "message_id": "ping", "data": "hello"}),
            ("ClearChargingProfile", c.clear_charging_profile("CP1", id=5), {"id": 5}),
            ("GetCompositeSchedule", c.get_composite_schedule("CP1", 1, 3600), {"connector_id": 1, "duration": 3600}),
        ]
        for action, coro, expected in expectations:
            cp.got_call.clear()
            result = await coro
            assert result is not None
            got_action, got = cp.received[-1]
            assert got_action == action
            for key, value in expected.items():
                assert got[key] == value, (action, key, got)
    commands = await csms.store.commands("CP1")
    assert [cmd["action"] for cmd in commands] == [e[0] for e in expectations]
    assert all(cmd["outcome"] == "ok" for cmd in commands)
    transfers = await csms.store.data_transfers("CP1")
    assert transfers[-1]["direction"] == "out" and transfers[-1]["response_data"] == "pong"


async def test_configuration_is_fetched_cached_and_changed(csms: CentralSystem) -> None:
    async with charger(csms, "CP1") as cp:
        await cp.boot()
        conf = await csms.commands.get_configuration("CP1")
        assert {k["key"] for k in conf.configuration_key} == {"HeartbeatInterval", "NumberOfConnectors"}
        partial = await csms.commands.get_configuration("CP1", ["HeartbeatInterval", "Bogus"])
        assert partial.unknown_key == ["Bogus"]
        assert (await csms.commands.change_configuration("CP1", "HeartbeatInterval", "120")).status == "Accepted"
        assert (await csms.commands.change_configuration("CP1", "NumberOfConnectors", "9")).status == "Rejected"
        assert (await csms.commands.change_configuration("CP1", "Nope", "1")).status == "NotSupported"
    cached = {r["key"]: r for r in await csms.store.configuration("CP1")}
    assert cached["HeartbeatInterval"]["value"] == "120"
    assert cached["NumberOfConnectors"]["value"] == "2" and cached["NumberOfConnectors"]["readonly"] == 1
    assert cached["Bogus"]["known"] == 0
    assert (await csms.store.charger("CP1"))["config_fetched_at"] is not None


async def test_authorization_key_never_stored_in_clear(csms: CentralSystem) -> None:
    async with charger(csms, "CP1") as cp:
        cp.config["AuthorizationKey"] = ("", False)
        await cp.boot()
        await csms.commands.change_configuration("CP1", "AuthorizationKey", "0123456789abcdef0123")
        assert cp.received[-1][1]["value"] == "0123456789abcdef0123"  # the charger got the real key
    await csms.store.flush()
    dump = json.dumps(await csms.store.message_log("CP1")) + json.dumps(await csms.store.commands("CP1"))
    dump += json.dumps(await csms.store.configuration("CP1"))
    assert "0123456789abcdef0123" not in dump
    assert "********" in dump


async def test_reservations_local_list_and_profiles_are_stored(csms: CentralSystem) -> None:
    async with charger(csms, "CP1") as cp:
        await cp.boot()
        reserved = await csms.commands.reserve_now("CP1", 1, "TAG", "2099-01-01T00:00:00Z")
        assert reserved.status == "Accepted"
        second = await csms.commands.reserve_now("CP1", 2, "TAG2", "2099-01-01T00:00:00Z")
        assert second.reservation_id == reserved.reservation_id + 1
        assert (await csms.commands.cancel_reservation("CP1", reserved.reservation_id)).status == "Accepted"
        listing = [{"idTag": "TAG", "idTagInfo": {"status": "Accepted"}}]
        assert (await csms.commands.send_local_list("CP1", 3, UpdateType.full, listing)).status == "Accepted"
        assert cp.received[-1][1]["local_authorization_list"] == [{"id_tag": "TAG", "id_tag_info": {"status": "Accepted"}}]
        assert (await csms.store.charger("CP1"))["local_list_version"] == 3
        assert (await csms.commands.get_local_list_version("CP1")).list_version == 7
        assert (await csms.commands.set_charging_profile("CP1", 1, PROFILE)).status == "Accepted"
        profiles = await csms.store.charging_profiles("CP1")
        assert [(p["profile_id"], p["purpose"], p["status"]) for p in profiles] == [(5, "TxDefaultProfile", "Accepted")]
        await csms.commands.clear_charging_profile("CP1", charging_profile_purpose=ChargingProfilePurposeType.tx_default_profile)
        assert await csms.store.charging_profiles("CP1") == []
    reservations = {r["id"]: r["status"] for r in await csms.store.reservations("CP1")}
    assert reservations == {reserved.reservation_id: "Cancelled", second.reservation_id: "Accepted"}
    assert (await csms.store.charger("CP1"))["local_list_version"] == 7


async def test_reservation_cancelled_when_connector_faults(csms: CentralSystem) -> None:
    async with charger(csms, "CP1") as cp:
        await cp.boot()
        reserved = await csms.commands.reserve_now("CP1", 1, "TAG", "2099-01-01T00:00:00Z")
        await cp.status(1, "Faulted", error_code="GroundFailure")
    assert {r["id"]: r["status"] for r in await csms.store.reservations("CP1")} == {reserved.reservation_id: "Cancelled"}


async def test_offline_charger(csms: CentralSystem, waiter: EventWaiter) -> None:
    """A known charger not connected is offline; one never seen is unknown (the same words in the
    log, the API's answer and `ocpp-console call`: tests/test_readme_commands.py)."""
    await csms.store.add_charger("GONE")
    with pytest.raises(ChargerOffline, match="GONE is offline"):
        await csms.commands.reset("GONE")
    event = await waiter.wait_for(lambda e: isinstance(e, ev.CommandFinished))
    assert event.outcome == "offline"
    assert [c["outcome"] for c in await csms.store.commands("GONE")] == ["offline"]
    with pytest.raises(UnknownCharger, match="NEVER is an unknown charger"):
        await csms.commands.reset("NEVER")
    event = await waiter.wait_for(lambda e: isinstance(e, ev.CommandFinished) and e.charger_id == "NEVER")
    assert event.outcome == "unknown_charger"


class SilentCharger(TestCharger):
    """Drops Reset requests on the floor, as a charger with a stuck firmware task would."""

    async def route_message(self, raw_msg: str) -> None:
        if '"Reset"' in raw_msg:
            return
        await super().route_message(raw_msg)


class GrumpyCharger(TestCharger):
    @on(Action.clear_cache)
    def _clear_cache(self, **kw: Any) -> Any:
        raise ValueError("boom")  # the ocpp library answers InternalError

    @on(Action.unlock_connector, skip_schema_validation=True)
    def _unlock(self, **kw: Any) -> Any:
        return call_result.UnlockConnector(status="Wobbly")  # not a 1.6 value


async def test_timeout_frees_the_charger_for_the_next_command(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(call_timeout=0.3)) as system:
        async with charger(system, "SLOW", SilentCharger) as cp:
            await cp.boot()
            with pytest.raises(CommandTimeout, match="did not answer Reset"):
                await system.commands.reset("SLOW")
            assert (await system.commands.clear_cache("SLOW")).status == "Accepted"
        assert [c["outcome"] for c in await system.store.commands("SLOW")] == ["timeout", "ok"]


async def test_callerror_and_invalid_answers(csms: CentralSystem) -> None:
    async with charger(csms, "GRUMPY", GrumpyCharger) as cp:
        await cp.boot()
        with pytest.raises(CallErrorReceived) as info:
            await csms.commands.clear_cache("GRUMPY")
        assert info.value.code == "InternalError"
        with pytest.raises(InvalidAnswer):
            await csms.commands.unlock_connector("GRUMPY", 1)
        with pytest.raises(InvalidCommand):
            await csms.commands.remote_start_transaction("GRUMPY", "X" * 30)  # idTag max 20
        assert (await csms.commands.reset("GRUMPY")).status == "Accepted"  # still usable
    outcomes = [c["outcome"] for c in await csms.store.commands("GRUMPY")]
    assert outcomes == ["callerror", "invalid_answer", "invalid", "ok"]


async def test_commands_to_one_charger_are_serialised(csms: CentralSystem) -> None:
    async with charger(csms, "CP1") as cp:
        await cp.boot()
        results = await asyncio.gather(*(csms.commands.trigger_message("CP1", MessageTrigger.heartbeat) for _ in range(10)))
        assert all(r.status == "Accepted" for r in results)
        assert len([r for r in cp.received if r[0] == "TriggerMessage"]) == 10


async def test_command_fails_fast_when_the_charger_disconnects(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(call_timeout=30)) as system:
        async with charger(system, "DROP", SilentCharger) as cp:
            await cp.boot()
            pending = asyncio.create_task(system.commands.reset("DROP"))
            await asyncio.wait_for(_sent(system, "DROP", "Reset"), 5)
            await cp._connection.close()
            with pytest.raises(ChargerOffline, match="disconnected before answering Reset"):
                await asyncio.wait_for(pending, 5)  # not the 30 s call timeout
        assert [c["outcome"] for c in await system.store.commands("DROP")] == ["offline"]


async def _sent(system: CentralSystem, charger_id: str, action: str) -> None:
    waiter = EventWaiter(system)  # subscribed before the command task first runs
    await waiter.wait_for(lambda e: isinstance(e, ev.MessageLogged) and e.direction == "out" and e.action == action)


async def test_stored_profiles_follow_what_the_charger_holds(csms: CentralSystem) -> None:
    from ocpp.v16 import call as ocpp_call

    async with charger(csms, "CP1") as cp:
        await cp.boot()
        await csms.commands.set_charging_profile("CP1", 1, PROFILE)
        await csms.commands.set_charging_profile("CP1", 1, {**PROFILE, "chargingProfileId": 6})  # same purpose+level
        tx = (await cp.call(ocpp_call.StartTransaction(connector_id=1, id_tag="T", meter_start=0,
                                                       timestamp="2026-11-25T08:00:00Z"))).transaction_id
        await csms.commands.set_charging_profile(
            "CP1", 1, {**PROFILE, "chargingProfileId": 9, "chargingProfilePurpose": "TxProfile", "transactionId": tx}
        )
        assert {p["profile_id"] for p in await csms.store.charging_profiles("CP1")} == {6, 9}
        await cp.call(ocpp_call.StopTransaction(meter_stop=5, timestamp="2026-11-25T09:00:00Z", transaction_id=tx))
    assert [p["profile_id"] for p in await csms.store.charging_profiles("CP1")] == [6]


class ResetAndVanish(TestCharger):
    """Answers Reset and closes its connection in the same breath, as real chargers do."""

    async def route_message(self, raw_msg: str) -> None:
        if '"Reset"' in raw_msg:
            uid = json.loads(raw_msg)[1]
            await self._connection.send(f'[3,"{uid}",{{"status":"Accepted"}}]')
            await self._connection.close()
            return
        await super().route_message(raw_msg)


async def test_answer_followed_by_disconnect_still_counts(csms: CentralSystem) -> None:
    async with charger(csms, "VANISH", ResetAndVanish) as cp:
        await cp.boot()
        assert (await csms.commands.reset("VANISH", ResetType.hard)).status == "Accepted"
    assert [c["outcome"] for c in await csms.store.commands("VANISH")] == ["ok"]
