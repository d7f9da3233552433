"""A full charging session from a real OCPP client over a real socket, checked in the database."""

from __future__ import annotations

from datetime import datetime

from ocpp.v16 import call
from ocpp.v16.enums import AuthorizationStatus, ChargePointStatus, RegistrationStatus

from ocpp_console.csms import CentralSystem
from tests.conftest import EventWaiter, charger
from tests.clients import TS


async def test_full_session_is_stored(csms: CentralSystem, waiter: EventWaiter) -> None:
    await csms.store.upsert_id_tag("TAG1")
    async with charger(csms, "CP1") as cp:
        boot = await cp.boot()
        assert boot.status == RegistrationStatus.accepted
        assert boot.interval == 60
        assert datetime.fromisoformat(boot.current_time).utcoffset().total_seconds() == 0
        hb = await cp.call(call.Heartbeat())
        assert hb.current_time.endswith("Z")
        await cp.status(0, ChargePointStatus.available)
        await cp.status(1, ChargePointStatus.preparing)
        auth = await cp.call(call.Authorize(id_tag="TAG1"))
        assert auth.id_tag_info["status"] == AuthorizationStatus.accepted
        start = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="TAG1", meter_start=1000, timestamp=TS)
        )
        tx = start.transaction_id
        assert tx > 0 and start.id_tag_info["status"] == AuthorizationStatus.accepted
        await cp.status(1, ChargePointStatus.charging)
        await cp.call(
            call.MeterValues(
                connector_id=1,
                transaction_id=tx,
                meter_value=[
                    {
                        "timestamp": "2026-11-25T08:01:00Z",
                        "sampledValue": [
                            {"value": "1.5", "unit": "kWh", "measurand": "Energy.Active.Import.Register"},
                            {"value": "7.2", "unit": "kW", "measurand": "Power.Active.Import"},
                            {"value": "10.5", "unit": "A", "measurand": "Current.Import", "phase": "L1"},
                            {"value": "230", "unit": "V", "measurand": "Voltage", "phase": "L1-N"},
                            {"value": "55", "unit": "Percent", "measurand": "SoC", "location": "EV"},
                        ],
                    }
                ],
            )
        )
        stop = await cp.call(
            call.StopTransaction(
                meter_stop=4500,
                timestamp="2026-11-25T08:30:00Z",
                transaction_id=tx,
                reason="EVDisconnected",
                id_tag="TAG1",
                transaction_data=[
                    {"timestamp": "2026-11-25T08:30:00Z", "sampledValue": [{"value": "4500", "context": "Transaction.End"}]}
                ],
            )
        )
        assert stop.id_tag_info["status"] == AuthorizationStatus.accepted
        await waiter.wait_for(lambda e: type(e).__name__ == "TransactionStopped")
    await waiter.wait_for(lambda e: type(e).__name__ == "ChargerDisconnected")

    charger_row = await csms.store.charger("CP1")
    assert charger_row is not None
    assert charger_row["registration"] == "Accepted"
    assert (charger_row["vendor"], charger_row["model"], charger_row["firmware_version"]) == ("TestVendor", "TestModel", "1.2.3")
    assert (charger_row["iccid"], charger_row["imsi"], charger_row["meter_type"]) == ("8931", "2620", "TestMeter")
    assert (charger_row["charge_point_serial"], charger_row["charge_box_serial"], charger_row["meter_serial"]) == ("CPS-1", "CBS-1", "M-1")
    connectors = {c["connector_id"]: c["status"] for c in await csms.store.connectors("CP1")}
    assert connectors == {0: "Available", 1: "Charging"}
    row = await csms.store.transaction(tx)
    assert row is not None
    assert (row["meter_start"], row["meter_stop"], row["energy_wh"]) == (1000, 4500, 3500)
    assert row["stop_reason"] == "EVDisconnected" and row["stop_timestamp"] == "2026-11-25T08:30:00.000Z"
    samples = await csms.store.meter_values_for(tx)
    assert len(samples) == 6  # five sampled values and the transactionData one: none dropped
    energy = next(s for s in samples if s["measurand"] == "Energy.Active.Import.Register" and s["source"] == "MeterValues")
    assert energy["value"] == "1.5" and energy["unit"] == "kWh" and energy["value_num"] == 1500.0
    power = next(s for s in samples if s["measurand"] == "Power.Active.Import")
    assert power["value_num"] == 7200.0
    soc = next(s for s in samples if s["measurand"] == "SoC")
    assert soc["location"] == "EV" and soc["context"] == "Sample.Periodic" and soc["format"] == "Raw"
    current = next(s for s in samples if s["measurand"] == "Current.Import")
    assert current["phase"] == "L1"
    end = next(s for s in samples if s["source"] == "StopTransaction")
    assert end["context"] == "Transaction.End" and end["unit"] == "Wh"
    log = await csms.store.message_log("CP1")
    actions = {(r["direction"], r["action"]) for r in log}
    assert ("in", "StartTransaction") in actions and ("out", "StartTransaction") in actions
    assert (await csms.store.charger("CP1"))["connected"] == 0


async def test_domain_events_follow_the_session(csms: CentralSystem, waiter: EventWaiter) -> None:
    from ocpp_console.csms import events as ev

    async with charger(csms, "EV1") as cp:
        await cp.boot()
        await cp.status(1, ChargePointStatus.charging)
        tx = (await cp.call(call.StartTransaction(connector_id=1, id_tag="X", meter_start=0, timestamp=TS))).transaction_id
        await cp.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{"timestamp": TS, "sampledValue": [
            {"value": "11", "unit": "kW", "measurand": "Power.Active.Import"},
            {"value": "3.6", "unit": "kW", "measurand": "Power.Active.Import", "phase": "L1"},
            {"value": "80", "unit": "Percent", "measurand": "SoC"},
        ]}]))
        await cp.call(call.StopTransaction(meter_stop=10, timestamp=TS, transaction_id=tx))
    await waiter.wait_for(lambda e: isinstance(e, ev.ChargerDisconnected))
    kinds = [type(e).__name__ for e in waiter.events if not isinstance(e, ev.MessageLogged)]
    # X is not provisioned: answered Invalid, the transaction is kept and the refusal published
    assert kinds == ["ChargerConnected", "ChargerBooted", "StatusChanged", "TransactionStarted", "IdTagRefused",
                     "MeterSample", "TransactionStopped", "ChargerDisconnected"]
    sample = next(e for e in waiter.events if isinstance(e, ev.MeterSample))
    assert sample.values == {"Power.Active.Import": 11000.0, "SoC": 80.0}  # the whole-charger power, not L1's
    stopped = next(e for e in waiter.events if isinstance(e, ev.TransactionStopped))
    assert (stopped.transaction_id, stopped.energy_wh, stopped.known) == (tx, 10, True)
    logged = [e for e in waiter.events if isinstance(e, ev.MessageLogged)]
    assert len(logged) == 10 and {e.direction for e in logged} == {"in", "out"}


async def test_a_session_keeps_within_the_attributes_whose_key_table_is_shared(csms: CentralSystem) -> None:
    """CPython shares one key table among the instance dicts of a class up to 30 attributes; past
    that every session carries its own (~1.7 KiB more per charger, measured when issue 12 took a
    session to 33). A new attribute belongs to a part of the session, not to the session itself."""
    async with charger(csms, "CP-ATTRS") as cp:
        await cp.boot()
        session = csms.sessions["CP-ATTRS"]
        assert len(vars(session)) <= 30, sorted(vars(session))
