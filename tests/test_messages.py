"""Every charge-point-initiated 1.6 message: answered per the schema, and stored."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from ocpp.v16 import call
from ocpp.v16.enums import AuthorizationStatus, ChargePointErrorCode, ChargePointStatus, DataTransferStatus

from ocpp_console.csms import CentralSystem
from tests.clients import TS
from tests.conftest import charger, raw_socket
from tests.schemas import assert_valid_response


async def raw_call(ws: Any, action: str, payload: dict[str, Any]) -> list[Any]:
    uid = str(uuid.uuid4())
    await ws.send(json.dumps([2, uid, action, payload]))
    answer = json.loads(await ws.recv())
    assert answer[1] == uid
    return answer


BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("BootNotification", {**BOOT, "firmwareVersion": "9.9", "meterSerialNumber": "MS"}),
        ("Heartbeat", {}),
        ("StatusNotification", {"connectorId": 0, "errorCode": "NoError", "status": "Available"}),
        ("Authorize", {"idTag": "NOPE"}),
        ("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": TS}),
        ("StopTransaction", {"transactionId": 424242, "meterStop": 10, "timestamp": TS}),
        ("MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": "1"}]}]}),
        ("DataTransfer", {"vendorId": "com.example", "messageId": "x", "data": "y"}),
        ("DiagnosticsStatusNotification", {"status": "Uploaded"}),
        ("FirmwareStatusNotification", {"status": "Installed"}),
        ("SecurityEventNotification", {"type": "SettingSystemTime", "timestamp": TS, "techInfo": "ntp"}),
        ("SignedFirmwareStatusNotification", {"status": "Downloading", "requestId": 3}),
        ("LogStatusNotification", {"status": "Uploaded", "requestId": 4}),
        ("SignCertificate", {"csr": "-----BEGIN CERTIFICATE REQUEST-----"}),
    ],
)
async def test_every_charger_message_gets_a_schema_valid_answer(
    csms: CentralSystem, action: str, payload: dict[str, Any]
) -> None:
    async with raw_socket(csms, "CPX") as ws:
        assert (await raw_call(ws, "BootNotification", BOOT))[0] == 3
        answer = await raw_call(ws, action, payload)
        assert answer[0] == 3, answer
        assert_valid_response(action, answer[2])


async def test_messages_are_stored(csms: CentralSystem) -> None:
    async with raw_socket(csms, "CP2") as ws:
        await raw_call(ws, "BootNotification", BOOT)
        await raw_call(ws, "StatusNotification", {
            "connectorId": 2, "errorCode": "GroundFailure", "status": "Faulted", "info": "RCD tripped",
            "vendorId": "acme", "vendorErrorCode": "E42", "timestamp": "2026-11-25T09:00:00+01:00",
        })
        dt = await raw_call(ws, "DataTransfer", {"vendorId": "com.example", "messageId": "hello", "data": "{\"a\":1}"})
        assert dt[2] == {"status": DataTransferStatus.unknown_vendor_id}
        await raw_call(ws, "DiagnosticsStatusNotification", {"status": "Uploading"})
        await raw_call(ws, "FirmwareStatusNotification", {"status": "Downloaded"})
        await raw_call(ws, "SecurityEventNotification", {"type": "FirmwareUpdated", "timestamp": TS})
        await raw_call(ws, "LogStatusNotification", {"status": "Uploading", "requestId": 9})
        await raw_call(ws, "SignedFirmwareStatusNotification", {"status": "SignatureVerified", "requestId": 8})

    conn = {c["connector_id"]: c for c in await csms.store.connectors("CP2")}
    assert conn[2]["status"] == "Faulted" and conn[2]["error_code"] == "GroundFailure"
    assert (conn[2]["info"], conn[2]["vendor_id"], conn[2]["vendor_error_code"]) == ("RCD tripped", "acme", "E42")
    assert conn[2]["status_timestamp"] == "2026-11-25T08:00:00.000Z"  # stored in UTC
    transfers = await csms.store.data_transfers("CP2")
    assert [(t["vendor_id"], t["message_id"], t["data"], t["status"]) for t in transfers] == [
        ("com.example", "hello", "{\"a\":1}", "UnknownVendorId")
    ]
    notes = [(n["action"], n["status"]) for n in await csms.store.notifications("CP2")]
    assert notes == [
        ("DiagnosticsStatusNotification", "Uploading"),
        ("FirmwareStatusNotification", "Downloaded"),
        ("SecurityEventNotification", "FirmwareUpdated"),
        ("LogStatusNotification", "Uploading"),
        ("SignedFirmwareStatusNotification", "SignatureVerified"),
    ]
    row = await csms.store.charger("CP2")
    assert row["firmware_status"] == "SignatureVerified" and row["diagnostics_status"] == "Uploading"


async def test_data_transfer_handler_answers(csms: CentralSystem) -> None:
    async def echo(charger_id: str, message_id: str | None, data: str | None) -> tuple[str, str | None]:
        return DataTransferStatus.accepted, f"{charger_id}:{data}"

    csms.data_transfer_handlers["echo.vendor"] = echo
    async with raw_socket(csms, "CP3") as ws:
        await raw_call(ws, "BootNotification", BOOT)
        answer = await raw_call(ws, "DataTransfer", {"vendorId": "echo.vendor", "data": "hi"})
    assert answer[2] == {"status": "Accepted", "data": "CP3:hi"}


async def test_authorization_answers_follow_the_id_tag_table(csms: CentralSystem) -> None:
    store = csms.store
    await store.upsert_id_tag("PARENT")
    await store.upsert_id_tag("OK", expiry_date="2099-01-01T00:00:00Z", parent_id_tag="PARENT")
    await store.upsert_id_tag("BLOCKED", status="Blocked")
    await store.upsert_id_tag("OLD", expiry_date="2020-01-01T00:00:00Z")
    await store.upsert_id_tag("BUSY")
    async with charger(csms, "CPA") as cp:
        await cp.boot()

        async def status_of(tag: str) -> dict[str, Any]:
            return (await cp.call(call.Authorize(id_tag=tag))).id_tag_info

        ok = await status_of("OK")
        assert ok == {"status": "Accepted", "expiry_date": "2099-01-01T00:00:00Z", "parent_id_tag": "PARENT"}
        assert (await status_of("BLOCKED"))["status"] == AuthorizationStatus.blocked
        assert (await status_of("OLD"))["status"] == AuthorizationStatus.expired
        assert (await status_of("UNKNOWN"))["status"] == AuthorizationStatus.invalid
        start = await cp.call(call.StartTransaction(connector_id=1, id_tag="BUSY", meter_start=0, timestamp=TS))
        assert start.id_tag_info["status"] == AuthorizationStatus.accepted
        # Authorize answers the tag's own status: ConcurrentTx is only for StartTransaction (OCPP 1.6, 7.2).
        assert (await status_of("BUSY"))["status"] == AuthorizationStatus.accepted
        # A second start with the same tag elsewhere is answered ConcurrentTx but still gets an id.
        other = await cp.call(call.StartTransaction(connector_id=2, id_tag="BUSY", meter_start=5, timestamp=TS))
        assert other.transaction_id > start.transaction_id
        assert other.id_tag_info["status"] == AuthorizationStatus.concurrent_tx


async def test_unknown_id_tags_accept_setting(settings_factory: Any) -> None:
    system = CentralSystem(settings_factory(unknown_id_tags="accept"))
    async with system:
        async with charger(system, "CPD") as cp:
            await cp.boot()
            auth = await cp.call(call.Authorize(id_tag="ANYONE"))
            assert auth.id_tag_info["status"] == AuthorizationStatus.accepted


async def test_start_with_unknown_tag_is_stored_and_tag_recorded(csms: CentralSystem) -> None:
    async with charger(csms, "CPE") as cp:
        await cp.boot()
        start = await cp.call(call.StartTransaction(connector_id=1, id_tag="STRANGER", meter_start=0, timestamp=TS))
    assert start.transaction_id > 0 and start.id_tag_info["status"] == AuthorizationStatus.invalid
    row = await csms.store.transaction(start.transaction_id)
    assert row is not None and "unknown_id_tag" in row["flags"] and row["auth_status"] == "Invalid"
    tag = await csms.store.id_tag("STRANGER")
    assert tag is not None and tag["status"] == "Invalid" and "first seen" in tag["note"]


async def test_status_of_every_connector_including_zero(csms: CentralSystem) -> None:
    async with charger(csms, "CPF") as cp:
        await cp.boot()
        await cp.status(0, ChargePointStatus.unavailable)
        await cp.status(1, ChargePointStatus.faulted, error_code=ChargePointErrorCode.over_voltage)
        await cp.status(1, ChargePointStatus.available)
    history = [(h["connector_id"], h["status"], h["error_code"]) for h in await csms.store.status_history("CPF")]
    assert history == [(0, "Unavailable", "NoError"), (1, "Faulted", "OverVoltage"), (1, "Available", "NoError")]


def test_payloads_are_built_as_the_ocpp_package_builds_them() -> None:
    """protocol.as_payload skips the package's deep copy; what it makes must not differ."""
    from decimal import Decimal

    from ocpp.charge_point import remove_nones, serialize_as_dict
    from ocpp.v16 import call, call_result, datatypes
    from ocpp.v16.enums import AuthorizationStatus, ChargingProfilePurposeType, RegistrationStatus

    from ocpp_console.csms import protocol

    objects = [
        call_result.MeterValues(),
        call_result.Heartbeat(current_time="2026-11-29T12:00:00.000Z"),
        call_result.BootNotification(current_time="t", interval=60, status=RegistrationStatus.accepted),
        call_result.StartTransaction(transaction_id=7, id_tag_info=datatypes.IdTagInfo(
            status=AuthorizationStatus.accepted, expiry_date=None, parent_id_tag="P")),
        call_result.StopTransaction(id_tag_info=None),
        call_result.DataTransfer(status="Accepted", data=None),
        call.SetChargingProfile(connector_id=1, cs_charging_profiles={
            "chargingProfileId": 3, "stackLevel": 0, "chargingProfilePurpose": ChargingProfilePurposeType.tx_profile,
            "chargingProfileKind": "Absolute", "validTo": None,
            "chargingSchedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": Decimal("7400.5"), "numberPhases": None}]}}),
        call.SendLocalList(list_version=2, update_type="Full", local_authorization_list=[
            datatypes.AuthorizationData(id_tag="A", id_tag_info=datatypes.IdTagInfo(status=AuthorizationStatus.blocked)),
            datatypes.AuthorizationData(id_tag="B")]),
        call.GetConfiguration(key=["A", "B"]),
        call.GetConfiguration(),
    ]
    for obj in objects:
        expected = protocol.to_camel(remove_nones(serialize_as_dict(obj)))
        assert protocol.as_payload(obj) == expected, obj
        assert protocol.dumps(protocol.as_payload(obj)) == protocol.dumps(expected)
