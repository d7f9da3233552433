"""Test chargers: the `ocpp` library's own ChargePoint, answering every central-system call."""

from __future__ import annotations

import asyncio
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import (
    Action,
    AvailabilityStatus,
    CancelReservationStatus,
    ChargePointErrorCode,
    ChargePointStatus,
    ChargingProfileStatus,
    ClearCacheStatus,
    ClearChargingProfileStatus,
    ConfigurationStatus,
    DataTransferStatus,
    GetCompositeScheduleStatus,
    RemoteStartStopStatus,
    ReservationStatus,
    ResetStatus,
    TriggerMessageStatus,
    UnlockStatus,
    UpdateStatus,
)

TS = "2026-11-25T08:00:00Z"


class TestCharger(ChargePoint):
    __test__ = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.got_call = asyncio.Event()
        self.config = {"HeartbeatInterval": ("60", False), "NumberOfConnectors": ("2", True)}

    def _got(self, action: str, **kw: Any) -> None:
        self.received.append((action, kw))
        self.got_call.set()

    async def boot(self) -> Any:
        return await self.call(
            call.BootNotification(
                charge_point_model="TestModel",
                charge_point_vendor="TestVendor",
                charge_point_serial_number="CPS-1",
                charge_box_serial_number="CBS-1",
                firmware_version="1.2.3",
                iccid="8931",
                imsi="2620",
                meter_type="TestMeter",
                meter_serial_number="M-1",
            )
        )

    async def status(self, connector_id: int, status: ChargePointStatus, **kw: Any) -> Any:
        return await self.call(
            call.StatusNotification(
                connector_id=connector_id, error_code=kw.pop("error_code", ChargePointErrorCode.no_error),
                status=status, timestamp=TS, **kw,
            )
        )

    @on(Action.remote_start_transaction)
    def _remote_start(self, **kw: Any) -> Any:
        self._got("RemoteStartTransaction", **kw)
        return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.accepted)

    @on(Action.remote_stop_transaction)
    def _remote_stop(self, **kw: Any) -> Any:
        self._got("RemoteStopTransaction", **kw)
        return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.accepted)

    @on(Action.change_configuration)
    def _change_configuration(self, key: str, value: str, **kw: Any) -> Any:
        self._got("ChangeConfiguration", key=key, value=value)
        if key not in self.config:
            return call_result.ChangeConfiguration(status=ConfigurationStatus.not_supported)
        if self.config[key][1]:
            return call_result.ChangeConfiguration(status=ConfigurationStatus.rejected)
        self.config[key] = (value, False)
        return call_result.ChangeConfiguration(status=ConfigurationStatus.accepted)

    @on(Action.get_configuration)
    def _get_configuration(self, key: list[str] | None = None, **kw: Any) -> Any:
        self._got("GetConfiguration", key=key)
        keys = key or list(self.config)
        known = [{"key": k, "value": self.config[k][0], "readonly": self.config[k][1]} for k in keys if k in self.config]
        unknown = [k for k in keys if k not in self.config]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action.reset)
    def _reset(self, **kw: Any) -> Any:
        self._got("Reset", **kw)
        return call_result.Reset(status=ResetStatus.accepted)

    @on(Action.unlock_connector)
    def _unlock(self, **kw: Any) -> Any:
        self._got("UnlockConnector", **kw)
        return call_result.UnlockConnector(status=UnlockStatus.unlocked)

    @on(Action.change_availability)
    def _availability(self, **kw: Any) -> Any:
        self._got("ChangeAvailability", **kw)
        return call_result.ChangeAvailability(status=AvailabilityStatus.accepted)

    @on(Action.clear_cache)
    def _clear_cache(self, **kw: Any) -> Any:
        self._got("ClearCache", **kw)
        return call_result.ClearCache(status=ClearCacheStatus.accepted)

    @on(Action.trigger_message)
    def _trigger(self, **kw: Any) -> Any:
        self._got("TriggerMessage", **kw)
        return call_result.TriggerMessage(status=TriggerMessageStatus.accepted)

    @on(Action.update_firmware)
    def _update_firmware(self, **kw: Any) -> Any:
        self._got("UpdateFirmware", **kw)
        return call_result.UpdateFirmware()

    @on(Action.get_diagnostics)
    def _get_diagnostics(self, **kw: Any) -> Any:
        self._got("GetDiagnostics", **kw)
        return call_result.GetDiagnostics(file_name="diag.log")

    @on(Action.data_transfer)
    def _data_transfer(self, **kw: Any) -> Any:
        self._got("DataTransfer", **kw)
        return call_result.DataTransfer(status=DataTransferStatus.accepted, data="pong")

    @on(Action.reserve_now)
    def _reserve(self, **kw: Any) -> Any:
        self._got("ReserveNow", **kw)
        return call_result.ReserveNow(status=ReservationStatus.accepted)

    @on(Action.cancel_reservation)
    def _cancel(self, **kw: Any) -> Any:
        self._got("CancelReservation", **kw)
        return call_result.CancelReservation(status=CancelReservationStatus.accepted)

    @on(Action.send_local_list)
    def _send_local_list(self, **kw: Any) -> Any:
        self._got("SendLocalList", **kw)
        return call_result.SendLocalList(status=UpdateStatus.accepted)

    @on(Action.get_local_list_version)
    def _get_local_list_version(self, **kw: Any) -> Any:
        self._got("GetLocalListVersion", **kw)
        return call_result.GetLocalListVersion(list_version=7)

    @on(Action.set_charging_profile)
    def _set_profile(self, **kw: Any) -> Any:
        self._got("SetChargingProfile", **kw)
        return call_result.SetChargingProfile(status=ChargingProfileStatus.accepted)

    @on(Action.clear_charging_profile)
    def _clear_profile(self, **kw: Any) -> Any:
        self._got("ClearChargingProfile", **kw)
        return call_result.ClearChargingProfile(status=ClearChargingProfileStatus.accepted)

    @on(Action.get_composite_schedule)
    def _composite(self, connector_id: int, duration: int, **kw: Any) -> Any:
        self._got("GetCompositeSchedule", connector_id=connector_id, duration=duration)
        return call_result.GetCompositeSchedule(
            status=GetCompositeScheduleStatus.accepted,
            connector_id=connector_id,
            schedule_start=TS,
            charging_schedule={
                "duration": duration,
                "charging_rate_unit": "W",
                "charging_schedule_period": [{"start_period": 0, "limit": 7400.0}],
            },
        )
